// Package nri gives a pod's containers the RDMA character devices of the devices topolane
// attached to the pod, through the container runtime's Node Resource Interface (containerd
// 1.7+ with NRI enabled, CRI-O 1.26+): at CreateContainer it adds /dev/infiniband/uverbsN of
// each attached RDMA device and /dev/infiniband/rdma_cm; the runtime adds the matching device
// cgroup rules. Without them NCCL cannot open the device and falls back to TCP.
package nri

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/containerd/nri/pkg/api"
	nrilog "github.com/containerd/nri/pkg/log"
	"github.com/containerd/nri/pkg/stub"
	"k8s.io/klog/v2"
)

// DefaultSocket is the runtime's NRI socket.
const DefaultSocket = "/var/run/nri/nri.sock"

// Plugin adjusts containers as they are created.
type Plugin struct {
	// Attached returns the RDMA device names (mlx5_0) attached to the pod with this UID.
	Attached func(podUID string) []string
	Devices  Devices
}

// CreateContainer adds the char devices of the pod's attached RDMA devices to the container.
// A pod with no attached RDMA device is left as it is. An attached device whose uverbs cannot
// be found fails the container's creation, naming it (the kubelet retries): a container
// without it would run NCCL over TCP unnoticed.
func (p *Plugin) CreateContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	rdma := p.Attached(pod.GetUid())
	if len(rdma) == 0 {
		return nil, nil, nil
	}
	devices, err := p.charDevices(rdma)
	if err != nil {
		return nil, nil, fmt.Errorf("topolane: pod %s/%s: %w", pod.GetNamespace(), pod.GetName(), err)
	}
	adjust := &api.ContainerAdjustment{}
	for _, d := range devices {
		adjust.AddDevice(&api.LinuxDevice{Path: d.Path, Type: "c", Major: d.Major, Minor: d.Minor, FileMode: api.FileMode(os.FileMode(0o666))})
	}
	klog.FromContext(ctx).V(2).Info("Adding RDMA devices to a container", "pod", pod.GetNamespace()+"/"+pod.GetName(), "container", ctr.GetName(), "devices", devices)
	return adjust, nil, nil
}

// charDevices are the uverbs of each RDMA device, then rdma_cm when the host has it (NCCL
// does not need it; librdmacm users do).
func (p *Plugin) charDevices(rdma []string) ([]CharDevice, error) {
	var out []CharDevice
	var errs []error
	for _, r := range rdma {
		d, err := p.Devices.Verbs(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, d)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cm, err := p.Devices.CM(); err == nil {
		out = append(out, cm)
	} else {
		klog.V(2).Info("No rdma_cm device to add (is rdma_ucm loaded?)", "err", err)
	}
	return out, nil
}

// Run connects the plugin to the runtime's NRI socket and keeps it connected until ctx ends:
// a runtime that restarts, or whose socket is not there yet, is tried again every retry.
func Run(ctx context.Context, socket string, p *Plugin, retry time.Duration) {
	logger := klog.FromContext(ctx).WithValues("socket", socket)
	last := ""
	for ctx.Err() == nil {
		err := runOnce(ctx, socket, p)
		if ctx.Err() != nil {
			return
		}
		if err.Error() != last { // the same failure again is logged at V(2) only
			logger.Error(err, "NRI connection ended; reconnecting (is NRI enabled in the runtime? containerd 1.7+: [plugins.\"io.containerd.nri.v1.nri\"] disable = false; CRI-O 1.26+: [crio.nri] enable_nri = true)", "retry", retry)
		} else {
			logger.V(2).Info("NRI still not connected", "err", err)
		}
		last = err.Error()
		select {
		case <-ctx.Done():
		case <-time.After(retry):
		}
	}
}

func runOnce(ctx context.Context, socket string, p *Plugin) error {
	s, err := stub.New(p, stub.WithSocketPath(socket), stub.WithPluginName("topolane"), stub.WithPluginIdx("50"),
		stub.WithLogger(klogger{}))
	if err != nil {
		return err
	}
	err = s.Run(ctx)
	if err == nil {
		err = errors.New("the runtime closed the connection")
	}
	return err
}

// NRI's own lines (its connection multiplexer, its runtime side) go to klog, not logrus. Its
// logger is a package variable read without a lock: set it before any NRI goroutine runs.
func init() { nrilog.Set(klogger{}) }

// klogger sends NRI's own log lines to klog.
type klogger struct{}

func (klogger) Debugf(_ context.Context, f string, a ...any) { klog.V(4).Infof("nri: "+f, a...) }
func (klogger) Infof(_ context.Context, f string, a ...any)  { klog.V(2).Infof("nri: "+f, a...) }
func (klogger) Warnf(_ context.Context, f string, a ...any)  { klog.Warningf("nri: "+f, a...) }
func (klogger) Errorf(_ context.Context, f string, a ...any) { klog.Errorf("nri: "+f, a...) }
