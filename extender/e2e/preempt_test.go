package e2e

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
	"github.com/topolane/topolane/topology/topologytest"
)

// holder creates a pod already running on node with the devices of its allocation.
func (h *harness) holder(name, node string, gpus int, prio int32, devices ...v1alpha1.Device) {
	h.t.Helper()
	pod := extendertest.Pod(ns, name, gpus)
	pod.Spec.NodeName, pod.Spec.Priority = node, &prio
	pod.Annotations[v1alpha1.AnnotationAllocation] = v1alpha1.Allocation{Node: node, PodUID: pod.UID, Devices: devices}.String()
	if _, err := h.client.CoreV1().Pods(ns).Create(h.ctx, pod, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

// preemptionNode is a DGX where two low-priority 1-GPU pods hold shares: low-0 (priority 0)
// a macvlan on rail 1 for GPU 1, low-1 (priority 1) a VF of rail 0's NIC for GPU 2 (its own
// rail's share was taken when it landed).
func (h *harness) preemptionNode() {
	h.addNode(extendertest.Topology("dgx", topologytest.DGXH100()))
	h.holder("low-0", "dgx", 1, 0, v1alpha1.Device{Rail: 1, Kind: placement.KindMacvlan, NIC: "0000:42:00.0", Device: "0000:42:00.0", GPUs: []string{"0000:43:00.0"}})
	h.holder("low-1", "dgx", 1, 1, v1alpha1.Device{Rail: 2, Kind: placement.KindVF, NIC: "0000:1a:00.0", Device: "0000:1a:00.2", GPUs: []string{"0000:52:00.0"}})
}

func (h *harness) exists(name string) bool {
	p, err := h.client.CoreV1().Pods(ns).Get(h.ctx, name, metav1.GetOptions{})
	return err == nil && p.DeletionTimestamp == nil
}

// TestPreemptionFreesTheRailsThePodNeeds: a 7-GPU pod of high priority needs one GPU freed; the
// scheduler would evict low-0 alone, but the 7 GPUs then free are those of every rail but 2, and
// rail 0's PF has low-1's VF: the extender adds low-1 to the victims.
func TestPreemptionFreesTheRailsThePodNeeds(t *testing.T) {
	h := newHarness(t, defaults())
	h.preemptionNode()
	h.startExtender()
	h.startScheduler(schedA)
	pod := extendertest.Pod(ns, "high", 7)
	prio := int32(100)
	pod.Spec.Priority = &prio
	if _, err := h.client.CoreV1().Pods(ns).Create(h.ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	node, a := h.waitBound("high", timeout)
	if node != "dgx" || len(a.Devices) != 7 {
		t.Errorf("high bound to %s with %v", node, a)
	}
	if h.exists("low-0") || h.exists("low-1") {
		t.Errorf("both low pods should be evicted: low-0 %v, low-1 %v", h.exists("low-0"), h.exists("low-1"))
	}
}

// TestEqualPriorityEvictsNothing: the VF on rail 0 belongs to a pod of the same priority as
// the newcomer: no set of lower-priority pods frees what it needs, so nothing is evicted.
func TestEqualPriorityEvictsNothing(t *testing.T) {
	h := newHarness(t, defaults())
	h.preemptionNode()
	h.startExtender()
	h.startScheduler(schedA)
	pod := extendertest.Pod(ns, "peer", 7)
	prio := int32(1)
	pod.Spec.Priority = &prio
	if _, err := h.client.CoreV1().Pods(ns).Create(h.ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	events := h.staysPending("peer", 4*time.Second)
	if !h.exists("low-0") || !h.exists("low-1") {
		t.Errorf("a pod was evicted for nothing: low-0 %v, low-1 %v\n%s", h.exists("low-0"), h.exists("low-1"), events)
	}
	if !strings.Contains(events, "FailedScheduling") {
		t.Errorf("events:\n%s", events)
	}
}
