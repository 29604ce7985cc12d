package attach

import (
	"context"
	"fmt"

	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
)

// Pod is what the agent needs to know of a pod from the API.
type Pod struct {
	UID         string
	Annotations map[string]string
}

// Pods reads pods from the API server.
type Pods interface {
	Get(ctx context.Context, namespace, name string) (Pod, error)
}

// GPUs says which GPUs kubelet gave each pod on the node (kubelet's PodResources API), by
// "namespace/name", as GPU UUIDs or PCI addresses.
type GPUs interface {
	Allocated(ctx context.Context) (map[string][]string, error)
}

// decision is what a pod gets.
type decision struct {
	choices []placement.Choice // one per distinct rail of its GPUs, in GPU order
	gpus    []string           // the pod's GPUs, PCI addresses
}

// decide picks the pod's devices: of the kind the extender reserved (topolane.io/allocation),
// or by the rule itself when the pod was placed by another scheduler; on the rail of each GPU
// kubelet gave the pod, else the nearest free one of that kind. held is what other attachments
// on the node hold.
func decide(node *topology.Node, pod Pod, key string, allocated map[string][]string, held []placement.Allocation) (decision, error) {
	gpus, err := gpuAddrs(node, allocated[key])
	if err != nil {
		return decision{}, fmt.Errorf("pod %s: %w", key, err)
	}
	sum := placement.Summarize(node, othersUsage(node, key, allocated, held), placement.DefaultWeights)
	req, err := v1alpha1.ParseRequest(pod.Annotations, len(gpus))
	if err != nil {
		return decision{}, fmt.Errorf("pod %s: %w", key, err)
	}
	need, err := needOf(pod, req, sum.GPUsFree)
	if err != nil {
		return decision{}, fmt.Errorf("pod %s: %w", key, err)
	}
	if need == placement.NeedNothing || len(gpus) == 0 { // a reservation does not stand in for GPUs
		return decision{}, fmt.Errorf("pod %s has no GPUs from kubelet (or says topolane.io/nic: none): topolane gives NICs only to GPU pods; do not attach this network to it", key)
	}
	choices, err := sum.Plan(req, need, gpus)
	if err != nil {
		return decision{}, fmt.Errorf("pod %s: %w (are the devices reserved for it held by another pod?)", key, err)
	}
	return decision{choices: choices, gpus: gpus}, nil
}

// othersUsage is what the node's other pods hold: their GPUs as kubelet gave them, their devices
// as the journal has them.
func othersUsage(node *topology.Node, key string, allocated map[string][]string, held []placement.Allocation) placement.Usage {
	u := placement.Usage{Allocations: held}
	seen := map[string]bool{}
	for other, ids := range allocated {
		if other == key {
			continue
		}
		for _, id := range ids {
			if g := node.GPU(id); g != nil && !seen[g.PCIAddress] {
				seen[g.PCIAddress] = true
				u.BusyGPUs = append(u.BusyGPUs, g.PCIAddress)
			}
		}
	}
	u.GPUsInUse = len(seen)
	return u
}

// needOf reads what the pod needs: the extender's reservation says the kind; without one the
// pod's own annotations and the rule decide.
func needOf(pod Pod, req placement.Request, free int) (placement.Need, error) {
	if v, ok := pod.Annotations[v1alpha1.AnnotationAllocation]; ok {
		a, err := v1alpha1.ParseAllocation(v)
		if err != nil {
			return 0, err
		}
		if a.PodUID != "" && string(a.PodUID) != pod.UID {
			return 0, fmt.Errorf("its %s names pod UID %s, not its own: copied from another pod? remove it and let the scheduler place the pod", v1alpha1.AnnotationAllocation, a.PodUID)
		}
		return placement.NeedOf(a.Devices[0].Kind), nil
	}
	return placement.Decide(req, free), nil
}

// gpuAddrs maps kubelet's GPU ids (UUIDs or PCI addresses) to PCI addresses.
func gpuAddrs(node *topology.Node, ids []string) ([]string, error) {
	addrs := make([]string, 0, len(ids))
	seen := map[string]bool{}
	for _, id := range ids {
		g := node.GPU(id)
		if g == nil {
			return nil, fmt.Errorf("kubelet gave it GPU %s, which discovery did not find on this node", id)
		}
		if !seen[g.PCIAddress] {
			seen[g.PCIAddress] = true
			addrs = append(addrs, g.PCIAddress)
		}
	}
	return addrs, nil
}
