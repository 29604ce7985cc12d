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

// decision is the device a pod gets.
type decision struct {
	choice placement.Choice
	gpus   []string // the pod's GPUs, PCI addresses
}

// decide picks the device for a pod: of the kind the extender reserved (topolane.io/allocation),
// or by the rule itself when the pod was placed by another scheduler; the free one nearest to
// the GPUs kubelet gave the pod. held is what other attachments on the node hold.
func decide(node *topology.Node, pod Pod, key string, allocated map[string][]string, held []placement.Allocation) (decision, error) {
	gpus, err := gpuAddrs(node, allocated[key])
	if err != nil {
		return decision{}, fmt.Errorf("pod %s: %w", key, err)
	}
	inUse := 0
	for other, ids := range allocated {
		if other != key {
			inUse += len(ids)
		}
	}
	sum := placement.Summarize(node, placement.Usage{GPUsInUse: inUse, Allocations: held}, placement.DefaultWeights)
	need, err := needOf(pod, len(gpus), sum.GPUsFree)
	if err != nil {
		return decision{}, fmt.Errorf("pod %s: %w", key, err)
	}
	if need == placement.NeedNothing {
		return decision{}, fmt.Errorf("pod %s has no GPUs from kubelet (or says topolane.io/nic: none): topolane gives a NIC only to GPU pods; do not attach this network to it", key)
	}
	cs, err := sum.Plan(placement.Request{GPUs: len(gpus), NICs: placement.NICsOne}, need, gpus)
	if err != nil {
		return decision{}, fmt.Errorf("pod %s: %w (the device reserved for it is taken: is another pod holding it?)", key, err)
	}
	return decision{choice: cs[0], gpus: gpus}, nil
}

// needOf reads what the pod needs: the extender's reservation says the kind; without one the
// pod's own annotation and the rule decide.
func needOf(pod Pod, gpus, free int) (placement.Need, error) {
	if v, ok := pod.Annotations[v1alpha1.AnnotationAllocation]; ok {
		a, err := v1alpha1.ParseAllocation(v)
		if err != nil {
			return 0, err
		}
		return placement.NeedOf(a.Devices[0].Kind), nil
	}
	mode, err := placement.ParseMode(pod.Annotations[v1alpha1.AnnotationNIC])
	if err != nil {
		return 0, err
	}
	return placement.Decide(placement.Request{GPUs: gpus, Mode: mode}, free), nil
}

// gpuAddrs maps kubelet's GPU ids (UUIDs or PCI addresses) to PCI addresses.
func gpuAddrs(node *topology.Node, ids []string) ([]string, error) {
	addrs := make([]string, 0, len(ids))
	for _, id := range ids {
		g := node.GPU(id)
		if g == nil {
			return nil, fmt.Errorf("kubelet gave it GPU %s, which discovery did not find on this node", id)
		}
		addrs = append(addrs, g.PCIAddress)
	}
	return addrs, nil
}
