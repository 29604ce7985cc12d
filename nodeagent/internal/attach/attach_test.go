package attach_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/topolane/topolane/nodeagent/internal/attach"
	"github.com/topolane/topolane/nodeagent/internal/attach/attachtest"
)

var ctx = context.Background()

// TestAddCheckDel round-trips a PF (a pod with every GPU), a VF and a macvlan through ADD, CHECK
// and DEL on the kernel.
func TestAddCheckDel(t *testing.T) {
	tests := []struct {
		pod         string
		gpus        []int
		annotations map[string]string
		kind        string
		hostName    string
	}{
		{"full", []int{0, 1, 2, 3, 4, 5, 6, 7}, nil, "pf", ""},
		{"small", []int{0}, map[string]string{"topolane.io/allocation": `{"node":"dgx","kind":"vf","nic":"0000:1a:00.0","device":"0000:1a:00.2"}`}, "vf", "enp26s0np0v0"},
		{"share", []int{1}, map[string]string{"topolane.io/nic": "vf"}, "macvlan", ""},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			e := newEnv(t)
			e.AddPod(tt.pod, tt.gpus, tt.annotations)
			podNS := e.NewPodNS()
			before := e.Links(e.Fx.HostNS)
			q := e.Request(tt.pod, podNS)
			res, err := e.Att.Add(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.IPs) != 1 || !strings.HasPrefix(res.IPs[0].Address.String(), "10.77.0.") || res.Interfaces[0].Name != "net1" {
				t.Errorf("result %+v", res)
			}
			h := e.Handle(podNS.Path())
			l, err := h.LinkByName("net1")
			h.Close()
			if err != nil || l.Attrs().Flags&1 == 0 {
				t.Fatalf("net1 in the pod: %v %v", l, err)
			}
			if tt.kind == "vf" {
				if mac := l.Attrs().HardwareAddr; mac[0] != 0x02 || mac[5] != res.IPs[0].Address.IP.To4()[3] {
					t.Errorf("VF MAC %s is not derived from %s", mac, res.IPs[0].Address.IP)
				}
			}
			if tt.hostName != "" && slices.ContainsFunc(e.Links(e.Fx.HostNS), func(s string) bool { return strings.HasPrefix(s, tt.hostName+" ") }) {
				t.Errorf("%s is still on the host", tt.hostName)
			}
			env, err := os.ReadFile(filepath.Join(e.Fx.Dir, "pods", "uid-"+tt.pod, "accel.env"))
			if err != nil || !strings.Contains(string(env), "NCCL_SOCKET_IFNAME==net1\n") || !strings.Contains(string(env), "TOPOLANE_MODE="+tt.kind+"\n") || !strings.Contains(string(env), "NCCL_IB_HCA==mlx5_") {
				t.Errorf("accel.env (%v):\n%s", err, env)
			}
			if err := e.Att.Check(ctx, q); err != nil {
				t.Errorf("CHECK after ADD: %v", err)
			}
			again, err := e.Att.Add(ctx, q)
			if err != nil || again.IPs[0].Address.String() != res.IPs[0].Address.String() {
				t.Errorf("a repeated ADD: %v %v", again, err)
			}
			if err := e.Att.Del(ctx, q); err != nil {
				t.Fatal(err)
			}
			if err := e.Att.Del(ctx, q); err != nil {
				t.Errorf("a repeated DEL: %v", err)
			}
			if after := e.Links(e.Fx.HostNS); !slices.Equal(before, after) {
				t.Errorf("host links after DEL:\nbefore %v\nafter  %v", before, after)
			}
			if left := e.Leftovers(); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

// TestCheckReportsDifferences breaks the attachment in two ways and expects CHECK to say both.
func TestCheckReportsDifferences(t *testing.T) {
	e := newEnv(t)
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
	podNS := e.NewPodNS()
	q := e.Request("p", podNS)
	res, err := e.Att.Add(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	h := e.Handle(podNS.Path())
	l, _ := h.LinkByName("net1")
	_ = h.LinkSetDown(l)
	_ = h.AddrDel(l, &netlink.Addr{IPNet: &res.IPs[0].Address})
	h.Close()
	err = e.Att.Check(ctx, q)
	if err == nil || !strings.Contains(err.Error(), "net1 is down") || !strings.Contains(err.Error(), "address "+res.IPs[0].Address.String()+" is missing") {
		t.Errorf("CHECK: %v", err)
	}
	if err := e.Att.Del(ctx, q); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentAdds sends ADDs for several pods at once: each gets its own device.
func TestConcurrentAdds(t *testing.T) {
	e := newEnv(t)
	const n = 4
	requests := make([]attach.Request, n)
	for i := range n {
		name := string(rune('a' + i))
		e.AddPod(name, []int{0}, map[string]string{"topolane.io/nic": "vf"}) // all want the VFs near GPU0
		requests[i] = e.Request(name, e.NewPodNS())
	}
	var wg sync.WaitGroup
	devices := make([]string, n)
	for i, q := range requests {
		wg.Go(func() {
			res, err := e.Att.Add(ctx, q)
			if err != nil {
				t.Error(err)
				return
			}
			devices[i] = res.Interfaces[0].PciID
		})
	}
	wg.Wait()
	slices.Sort(devices)
	if len(slices.Compact(slices.Clone(devices))) != n {
		t.Errorf("devices handed out: %v, want %d different", devices, n)
	}
}

// TestBadInput: every refusal says why and changes nothing.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
	e.AddPod("bad-annotation", []int{0}, map[string]string{"topolane.io/nic": "fast"})
	podNS := e.NewPodNS()
	before := e.Links(e.Fx.HostNS)
	ok := e.Request("p", podNS)
	tests := []struct {
		name string
		edit func(q *attach.Request)
		want string
	}{
		{"malformed config", func(q *attach.Request) { q.NetConf = []byte("{") }, "not JSON"},
		{"no IPAM", func(q *attach.Request) { q.NetConf = []byte(`{"name":"x"}`) }, `no "ipam"`},
		{"no pod name", func(q *attach.Request) { q.PodName = "" }, "K8S_POD_NAME"},
		{"unknown pod", func(q *attach.Request) { q.PodName = "ghost" }, "not found"},
		{"bad annotation", func(q *attach.Request) { q.PodName = "bad-annotation" }, "fast"},
		{"IPAM failure", func(q *attach.Request) {
			q.NetConf = []byte(`{"cniVersion":"1.0.0","name":"x","ipam":{"type":"host-local","subnet":"not-a-subnet"}}`)
		}, "IPAM plugin host-local"},
		{"IPAM plugin missing", func(q *attach.Request) { q.CNIPath = []string{t.TempDir()} }, `IPAM plugin "host-local"`},
		{"name taken in the pod", func(q *attach.Request) { q.IfName = "lo" }, "renamed"},
	}
	for _, tt := range tests {
		q := ok
		tt.edit(&q)
		_, err := e.Att.Add(ctx, q)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error saying %q", tt.name, err, tt.want)
		}
		if after := e.Links(e.Fx.HostNS); !slices.Equal(before, after) {
			t.Errorf("%s changed the host: %v", tt.name, after)
		}
		if left := e.Leftovers(); len(left) > 0 {
			t.Errorf("%s left: %v", tt.name, left)
		}
	}
	// A device someone else took: the VF is no longer on the host.
	h := e.Handle(e.Fx.HostNS)
	l, _ := h.LinkByName("enp26s0np0v0")
	_ = h.LinkSetName(l, "stolen0")
	h.Close()
	if _, err := e.Att.Add(ctx, ok); err == nil || !strings.Contains(err.Error(), "not in the host namespace") {
		t.Errorf("taken device: %v", err)
	}
}

// TestNamespaceGone: the pod's namespace is deleted before DEL (its veth goes with it); DEL and
// reconcile succeed and release the rest.
func TestNamespaceGone(t *testing.T) {
	e := newEnv(t)
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
	podNS := e.NewPodNS()
	q := e.Request("p", podNS)
	if _, err := e.Att.Add(ctx, q); err != nil {
		t.Fatal(err)
	}
	podNS.Close()
	if err := attachtest.Unmount(podNS.Path()); err != nil {
		t.Fatal(err)
	}
	undone, err := e.Fx.Attacher(e.Node).Reconcile(ctx)
	if err != nil || len(undone) != 1 {
		t.Fatalf("reconcile: %v %v", undone, err)
	}
	if err := e.Att.Del(ctx, q); err != nil {
		t.Errorf("DEL after the namespace went: %v", err)
	}
	if left := e.Leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestThousandCycles runs 1,000 ADD/DEL cycles: no link, file descriptor or goroutine may leak.
func TestThousandCycles(t *testing.T) {
	e := newEnv(t)
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
	podNS := e.NewPodNS()
	q := e.Request("p", podNS)
	cycle := func() {
		if _, err := e.Att.Add(ctx, q); err != nil {
			t.Fatal(err)
		}
		if err := e.Att.Del(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	cycle() // warm up: lazily opened descriptors and started goroutines are not leaks
	links, fds, goroutines := e.Links(e.Fx.HostNS), openFDs(t), runtime.NumGoroutine()
	for range 1000 {
		cycle()
	}
	time.Sleep(100 * time.Millisecond) // let exited plugin processes' reapers finish
	if after := e.Links(e.Fx.HostNS); !slices.Equal(links, after) {
		t.Errorf("links: %v, then %v", links, after)
	}
	if after := openFDs(t); after > fds {
		t.Errorf("open file descriptors: %d, then %d", fds, after)
	}
	if after := runtime.NumGoroutine(); after > goroutines {
		t.Errorf("goroutines: %d, then %d", goroutines, after)
	}
	if left := e.Leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}
