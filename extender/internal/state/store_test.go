package state_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/extender/internal/state"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
	"github.com/topolane/topolane/topology/topologytest"
)

func dgxStore() *state.Store {
	s := state.New(state.DefaultGPUResources)
	s.SetNode(extendertest.Node("dgx", 8))
	s.SetTopology("dgx", extendertest.Topology("dgx", topologytest.DGXH100()), nil)
	return s
}

func bound(p *corev1.Pod, node string) *corev1.Pod {
	p.Spec.NodeName = node
	return p
}

func TestPodsCountWhereTheyAre(t *testing.T) {
	s := dgxStore()
	s.SetPod(bound(extendertest.Pod("ns", "a", 2), "dgx"))
	alloc := v1alpha1.Allocation{Node: "dgx", Kind: placement.KindPF, NIC: "0000:42:00.0", Device: "0000:42:00.0"}
	s.SetPod(extendertest.Pod("ns", "reserved", 1, v1alpha1.AnnotationAllocation, alloc.String())) // reserved, not yet bound
	s.SetPod(extendertest.Pod("ns", "pending", 4))                                                 // placed nowhere yet
	d, _ := s.DebugNode("dgx")
	if d.GPUsFree != 5 || d.PFsFree != 7 || len(d.Pods) != 2 {
		t.Errorf("free GPUs %d, PFs %d, pods %d; want 5, 7, 2", d.GPUsFree, d.PFsFree, len(d.Pods))
	}
	done := bound(extendertest.Pod("ns", "a", 2), "dgx")
	done.Status.Phase = corev1.PodSucceeded
	s.SetPod(done)
	s.DeletePod(extendertest.Pod("ns", "reserved", 1).UID)
	if d, _ := s.DebugNode("dgx"); d.GPUsFree != 8 || d.PFsFree != 8 {
		t.Errorf("after the pods finished or went: %d GPUs, %d PFs free", d.GPUsFree, d.PFsFree)
	}
}

func TestAgentReportOverridesReservation(t *testing.T) {
	s := dgxStore()
	alloc := v1alpha1.Allocation{Node: "dgx", Kind: placement.KindPF, NIC: "0000:42:00.0", Device: "0000:42:00.0"}
	pod := bound(extendertest.Pod("ns", "a", 1, v1alpha1.AnnotationAllocation, alloc.String()), "dgx")
	s.SetPod(pod)
	// The agent bound an equivalent PF nearer to the GPU kubelet gave: 0000:1a:00.0.
	att := v1alpha1.Attachment{Pod: "ns/a", PodUID: pod.UID, Kind: placement.KindPF, NIC: "0000:1a:00.0", Device: "0000:1a:00.0"}
	s.SetTopology("dgx", extendertest.Topology("dgx", topologytest.DGXH100(), att), nil)
	d, _ := s.DebugNode("dgx")
	if len(d.Reserved) != 1 || d.Reserved[0].NIC != "0000:1a:00.0" {
		t.Errorf("held = %+v, want only the agent's report", d.Reserved)
	}
}

func TestNodeOfferingFewerGPUsThanFound(t *testing.T) {
	s := dgxStore()
	s.SetNode(extendertest.Node("dgx", 6)) // two GPUs unhealthy: the device plugin offers 6
	if d, _ := s.DebugNode("dgx"); d.GPUsFree != 6 {
		t.Errorf("free GPUs = %d, want 6", d.GPUsFree)
	}
}

func TestTopologyProblems(t *testing.T) {
	s := state.New(state.DefaultGPUResources)
	s.SetNode(extendertest.Node("n", 8))
	if v := s.Node("n"); !v.Known || v.Summary != nil || v.Problem == "" {
		t.Errorf("a node without NodeTopology: %+v", v)
	}
	// A reservation for a NIC the topology lacks: the summary cannot be trusted.
	s.SetTopology("n", extendertest.Topology("n", topologytest.NoSRIOV()), nil)
	alloc := v1alpha1.Allocation{Node: "n", Kind: placement.KindPF, NIC: "0000:1a:00.0", Device: "0000:1a:00.0"}
	s.SetPod(bound(extendertest.Pod("ns", "a", 1, v1alpha1.AnnotationAllocation, alloc.String()), "n"))
	if v := s.Node("n"); v.Summary != nil || v.Problem == "" {
		t.Errorf("disagreeing ledger should leave no summary and a problem: %+v", v)
	}
	s.DeleteNode("n")
	if v := s.Node("n"); v.Known {
		t.Error("a deleted node should be unknown")
	}
}

func TestPodInfoKeepsWhatCounts(t *testing.T) {
	alloc := v1alpha1.Allocation{Node: "dgx", Kind: placement.KindVF, NIC: "0000:1a:00.0", Device: "0000:1a:00.2"}
	pod := bound(extendertest.Pod("ns", "a", 3, v1alpha1.AnnotationAllocation, alloc.String(), "other", "x"), "dgx")
	pod.Spec.InitContainers = []corev1.Container{{Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{extendertest.GPU: resource.MustParse("5")}}}}
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "sidecar", Image: "busybox"})
	pod.Status.Phase = corev1.PodRunning
	out, _ := state.New(state.DefaultGPUResources).TransformPod(pod)
	info := out.(*state.PodInfo)
	if info.GPUs != 5 || info.NodeName != "dgx" || info.UID != pod.UID || info.Finished ||
		info.Annotations[v1alpha1.AnnotationAllocation] != alloc.String() || len(info.Annotations) != 1 {
		t.Errorf("pod info lost or kept the wrong things: %+v", info)
	}
	if c := info.DeepCopyObject().(*state.PodInfo); c.Annotations[v1alpha1.AnnotationAllocation] != alloc.String() {
		t.Error("deep copy lost the annotation")
	}
}
