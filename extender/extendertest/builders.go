// Package extendertest builds the Kubernetes objects the extender's tests need: GPU nodes with
// their NodeTopology from topologytest machines, and GPU pods.
package extendertest

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
	"github.com/topolane/topolane/topology/topologytest"
)

// GPU is the GPU resource the tests count.
const GPU corev1.ResourceName = "nvidia.com/gpu"

// Node is a ready node offering gpus GPUs (and plenty of CPU and memory).
func Node(name string, gpus int) *corev1.Node {
	capacity := corev1.ResourceList{
		GPU:                   *resource.NewQuantity(int64(gpus), resource.DecimalSI),
		corev1.ResourceCPU:    resource.MustParse("128"),
		corev1.ResourceMemory: resource.MustParse("1Ti"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
}

// Topology is the NodeTopology an agent on m would publish for node name.
func Topology(name string, m topologytest.Machine, attachments ...v1alpha1.Attachment) *v1alpha1.NodeTopology {
	n := m.Node()
	n.Name = name
	return TopologyOf(n, attachments...)
}

// TopologyOf is the NodeTopology an agent would publish for the node, as NodeTopologyOf words it.
func TopologyOf(n *topology.Node, attachments ...v1alpha1.Attachment) *v1alpha1.NodeTopology {
	return v1alpha1.NodeTopologyOf(n, attachments)
}

// Pod is a pending pod asking for gpus GPUs, with the given annotations (key, value, ...).
func Pod(ns, name string, gpus int, annotations ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name), Annotations: map[string]string{}},
		Spec: corev1.PodSpec{SchedulerName: "topolane-scheduler", Containers: []corev1.Container{{
			Name: "worker", Image: "nccl-tests",
			// Requests as the API server defaults them from limits: the fake clientset does not,
			// and the scheduler counts requests.
			Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{GPU: *resource.NewQuantity(int64(gpus), resource.DecimalSI)},
				Requests: corev1.ResourceList{GPU: *resource.NewQuantity(int64(gpus), resource.DecimalSI)},
			},
		}}},
	}
	for i := 0; i+1 < len(annotations); i += 2 {
		p.Annotations[annotations[i]] = annotations[i+1]
	}
	return p
}

// EveryPFShared is a DGX H100 node whose every ConnectX PF already has a macvlan share in use
// by another pod: no PF can go whole, shares remain.
func EveryPFShared(name string) *v1alpha1.NodeTopology {
	n := topologytest.DGXH100().Node()
	n.Name = name
	var atts []v1alpha1.Attachment
	for _, nic := range n.NICs {
		if nic.RDMA() {
			atts = append(atts, v1alpha1.Attachment{Pod: "other/x", PodUID: types.UID("x-" + nic.PCIAddress),
				Kind: placement.KindMacvlan, NIC: nic.PCIAddress, Device: nic.PCIAddress, Rail: -1})
		}
	}
	return TopologyOf(n, atts...)
}

// DevicesHeldTwice checks the allocations of bound pods as the API server holds them: every PF
// and VF of a node has at most one holder, and no NIC is held whole and shared at once. It
// returns what it found wrong.
func DevicesHeldTwice(pods []corev1.Pod) []string {
	var wrong []string
	holder := map[string]string{}
	whole, shared := map[string]string{}, map[string]string{}
	for _, p := range pods {
		a, err := v1alpha1.ParseAllocation(p.Annotations[v1alpha1.AnnotationAllocation])
		if err != nil || p.Spec.NodeName == "" || p.DeletionTimestamp != nil {
			continue
		}
		for _, d := range a.Devices {
			key, nic := a.Node+"/"+d.Device, a.Node+"/"+d.NIC
			if prev, taken := holder[key]; taken && d.Kind != placement.KindMacvlan && prev != p.Name {
				wrong = append(wrong, fmt.Sprintf("%s given to both %s and %s", key, prev, p.Name))
			}
			holder[key] = p.Name
			if d.Kind == placement.KindPF {
				whole[nic] = p.Name
			} else {
				shared[nic] = p.Name
			}
		}
	}
	for nic, w := range whole {
		if s, ok := shared[nic]; ok {
			wrong = append(wrong, fmt.Sprintf("%s is held whole by %s and shared by %s", nic, w, s))
		}
	}
	return wrong
}
