// Package kubelet asks kubelet's PodResources API which GPUs each pod on the node was given,
// and maps the device plugin's ids (MIG devices, time-sliced replicas) to the node's GPUs.
package kubelet

import (
	"context"
	"fmt"
	"path"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/klog/v2"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// DefaultSocket is kubelet's PodResources socket (mount /var/lib/kubelet/pod-resources).
const DefaultSocket = "/var/lib/kubelet/pod-resources/kubelet.sock"

// DefaultResources are the NVIDIA device plugin's GPU resources: whole or time-sliced GPUs,
// shared GPUs renamed by its sharing config, MIG devices of the mixed strategy.
var DefaultResources = []string{"nvidia.com/gpu", "nvidia.com/gpu.shared", "nvidia.com/mig-*"}

// PodResources reads GPU assignments from kubelet.
type PodResources struct {
	Socket string
	// Resources are the extended resources that are GPUs; a pattern as path.Match takes it
	// (nvidia.com/mig-*).
	Resources []string
	GPUs      Resolver
}

// Allocated returns every pod's GPUs by namespace/name, as the UUIDs of whole GPUs (a MIG
// device or a time-sliced replica counts as its GPU; each GPU once per pod). The ids of a pod
// that cannot all be mapped are logged with the reason and handed on as kubelet gave them:
// that pod's ADD is refused naming them, the node's other pods are served.
func (p PodResources) Allocated(ctx context.Context) (map[string][]string, error) {
	raw, err := p.list(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(raw))
	for pod, ids := range raw {
		gpus, unmapped, err := p.GPUs.resolve(ids)
		if err != nil {
			klog.FromContext(ctx).Error(err, "Mapping kubelet's device ids to GPUs", "pod", pod)
		}
		out[pod] = append(gpus, unmapped...)
	}
	return out, nil
}

// list returns every pod's device ids of the GPU resources, by namespace/name, in kubelet's
// order (init, sidecar and app containers; repeats included).
func (p PodResources) list(ctx context.Context) (map[string][]string, error) {
	conn, err := grpc.NewClient("unix://"+p.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("kubelet PodResources at %s: %w", p.Socket, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := podresourcesv1.NewPodResourcesListerClient(conn).List(ctx, &podresourcesv1.ListPodResourcesRequest{})
	if err != nil {
		return nil, fmt.Errorf("kubelet PodResources at %s (is /var/lib/kubelet/pod-resources mounted?): %w", p.Socket, err)
	}
	out := map[string][]string{}
	for _, pod := range resp.GetPodResources() {
		key := pod.GetNamespace() + "/" + pod.GetName()
		for _, c := range pod.GetContainers() {
			for _, d := range c.GetDevices() {
				if p.isGPU(d.GetResourceName()) {
					out[key] = append(out[key], d.GetDeviceIds()...)
				}
			}
		}
	}
	return out, nil
}

func (p PodResources) isGPU(resource string) bool {
	for _, pattern := range p.Resources {
		if ok, _ := path.Match(pattern, resource); ok {
			return true
		}
	}
	return false
}
