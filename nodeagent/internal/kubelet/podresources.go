// Package kubelet asks kubelet's PodResources API which GPUs each pod on the node was given.
package kubelet

import (
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// DefaultSocket is kubelet's PodResources socket (mount /var/lib/kubelet/pod-resources).
const DefaultSocket = "/var/lib/kubelet/pod-resources/kubelet.sock"

// PodResources reads GPU assignments from kubelet.
type PodResources struct {
	Socket    string
	Resources []string // the extended resources that are GPUs, e.g. nvidia.com/gpu
}

// Allocated returns every pod's GPU device ids (the device plugin's: UUIDs for NVIDIA's), by
// namespace/name.
func (p PodResources) Allocated(ctx context.Context) (map[string][]string, error) {
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
				if slices.Contains(p.Resources, d.GetResourceName()) {
					out[key] = append(out[key], d.GetDeviceIds()...)
				}
			}
		}
	}
	return out, nil
}
