package nri

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// host is a sysfs and /dev of a node with two RDMA devices: mlx5_0 is found through the
// infiniband_verbs class (its numbers in sysfs), mlx5_1 only under its device in the
// infiniband class with its numbers in the device node, mlx5_2 has no uverbs.
func host(t *testing.T) Devices {
	sys, dev := t.TempDir(), t.TempDir()
	write := func(path, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(sys, "class/infiniband_verbs/uverbs0/ibdev"), "mlx5_0\n")
	write(filepath.Join(sys, "class/infiniband_verbs/uverbs0/dev"), "231:192\n")
	write(filepath.Join(sys, "class/infiniband/mlx5_1/device/infiniband_verbs/uverbs3/dev"), "")
	write(filepath.Join(sys, "class/infiniband/mlx5_2/device/vendor"), "0x15b3\n")
	write(filepath.Join(sys, "class/misc/rdma_cm/dev"), "10:58\n")
	if err := os.MkdirAll(filepath.Join(dev, "infiniband"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(dev, "infiniband", "uverbs3"), unix.S_IFCHR|0o666, int(unix.Mkdev(231, 195))); err != nil {
		t.Fatal(err)
	}
	return Devices{Sys: sys, Dev: dev}
}

func TestVerbs(t *testing.T) {
	d := host(t)
	tests := []struct {
		rdma string
		want CharDevice
		err  string
	}{
		{"mlx5_0", CharDevice{"/dev/infiniband/uverbs0", 231, 192}, ""},
		{"mlx5_1", CharDevice{"/dev/infiniband/uverbs3", 231, 195}, ""},
		{"mlx5_2", CharDevice{}, "no uverbs device"},
		{"mlx5_9", CharDevice{}, "no uverbs device"},
		{"../../../etc", CharDevice{}, "not an RDMA device name"},
	}
	for _, tt := range tests {
		got, err := d.Verbs(tt.rdma)
		if tt.err == "" && (err != nil || got != tt.want) {
			t.Errorf("Verbs(%s) = %+v, %v; want %+v", tt.rdma, got, err, tt.want)
		}
		if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("Verbs(%s) = %v, want an error saying %q", tt.rdma, err, tt.err)
		}
	}
	if cm, err := d.CM(); err != nil || cm != (CharDevice{"/dev/infiniband/rdma_cm", 10, 58}) {
		t.Errorf("CM() = %+v, %v", cm, err)
	}
}

// runtime is NRI's own runtime side, in-process, on a socket of its own, as containerd runs it.
func runtime(t *testing.T) (*adaptation.Adaptation, string) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "nri.sock")
	sync := func(ctx context.Context, cb adaptation.SyncCB) error { _, err := cb(ctx, nil, nil); return err }
	update := func(context.Context, []*adaptation.ContainerUpdate) ([]*adaptation.ContainerUpdate, error) {
		return nil, nil
	}
	r, err := adaptation.New("test-runtime", "v0.0.1", sync, update, adaptation.WithSocketPath(socket),
		adaptation.WithPluginPath(filepath.Join(dir, "plugins")), adaptation.WithPluginConfigPath(filepath.Join(dir, "conf")))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r, socket
}

func create(r *adaptation.Adaptation, uid string) (*api.ContainerAdjustment, error) {
	pod := &api.PodSandbox{Id: "sandbox-" + uid, Name: "worker-" + uid, Uid: uid, Namespace: "train"}
	ctr := &api.Container{Id: "ctr-" + uid, PodSandboxId: pod.Id, Name: "pytorch", State: api.ContainerState_CONTAINER_CREATED,
		Linux: &api.LinuxContainer{Resources: &api.LinuxResources{}}}
	resp, err := r.CreateContainer(context.Background(), &api.CreateContainerRequest{Pod: pod, Container: ctr})
	if err != nil {
		return nil, err
	}
	return resp.GetAdjust(), nil
}

// TestCreateContainer connects the plugin to NRI's runtime side and creates containers as a
// runtime would: a pod with two RDMA devices gets their uverbs and rdma_cm, a pod without gets
// nothing, a pod whose device has no uverbs is refused naming it.
func TestCreateContainer(t *testing.T) {
	attached := map[string][]string{"uid-a": {"mlx5_0", "mlx5_1"}, "uid-broken": {"mlx5_2"}}
	p := &Plugin{Attached: func(uid string) []string { return attached[uid] }, Devices: host(t)}
	r, socket := runtime(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Run(ctx, socket, p, 50*time.Millisecond); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	var adjust *api.ContainerAdjustment
	var err error
	for range 200 { // until the plugin has registered
		if adjust, err = create(r, "uid-a"); err == nil && len(adjust.GetLinux().GetDevices()) > 0 {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	mode := os.FileMode(0o666)
	want := []*api.LinuxDevice{
		{Path: "/dev/infiniband/uverbs0", Type: "c", Major: 231, Minor: 192, FileMode: api.FileMode(&mode)},
		{Path: "/dev/infiniband/uverbs3", Type: "c", Major: 231, Minor: 195, FileMode: api.FileMode(&mode)},
		{Path: "/dev/infiniband/rdma_cm", Type: "c", Major: 10, Minor: 58, FileMode: api.FileMode(&mode)},
	}
	if diff := cmp.Diff(want, adjust.GetLinux().GetDevices(), cmp.Comparer(func(a, b *api.LinuxDevice) bool {
		return a.Path == b.Path && a.Type == b.Type && a.Major == b.Major && a.Minor == b.Minor && *a.FileMode.Get() == *b.FileMode.Get()
	})); diff != "" {
		t.Errorf("devices added (-want +got):\n%s", diff)
	}
	if adjust, err := create(r, "uid-other"); err != nil || len(adjust.GetLinux().GetDevices()) > 0 {
		t.Errorf("a pod without RDMA devices: %v, %v; want no devices", adjust.GetLinux().GetDevices(), err)
	}
	if _, err := create(r, "uid-broken"); err == nil || !strings.Contains(err.Error(), "mlx5_2") {
		t.Errorf("a pod whose device has no uverbs: %v; want an error naming mlx5_2", err)
	}
}

// TestReconnect: the plugin waits for a runtime that is not there yet, and serves it once up.
func TestReconnect(t *testing.T) {
	dir := t.TempDir()
	p := &Plugin{Attached: func(string) []string { return []string{"mlx5_0"} }, Devices: host(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	socket := filepath.Join(dir, "nri.sock")
	go func() { Run(ctx, socket, p, 50*time.Millisecond); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(150 * time.Millisecond) // a few failed tries
	r, err := adaptation.New("late-runtime", "v0.0.1",
		func(ctx context.Context, cb adaptation.SyncCB) error { _, err := cb(ctx, nil, nil); return err },
		func(context.Context, []*adaptation.ContainerUpdate) ([]*adaptation.ContainerUpdate, error) {
			return nil, nil
		},
		adaptation.WithSocketPath(socket), adaptation.WithPluginPath(filepath.Join(dir, "plugins")), adaptation.WithPluginConfigPath(filepath.Join(dir, "conf")))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	for range 200 {
		if adjust, err := create(r, "uid"); err == nil && len(adjust.GetLinux().GetDevices()) == 2 {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Error("the plugin never served the runtime that came up late")
}
