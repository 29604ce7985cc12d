package scheduler_test

import (
	"io"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/extender/internal/scheduler"
	"github.com/topolane/topolane/extender/internal/state"
)

// TestFailedBindKeepsANewerBindsReservation: the scheduler gave up on a bind to dgx-a (its
// httpTimeout) and bound the pod again, to dgx-b; the bind to dgx-b reserved dgx-b's devices
// while the first bind's Binding was failing. The first bind must drop only its own
// reservation, not the pod's newer one, or dgx-b's PFs look free until the pod informer shows
// the pod and another pod can be given them.
func TestFailedBindKeepsANewerBindsReservation(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	pod := c.add(extendertest.Pod("ns", "train", 8))
	newer := pfAllocation("dgx-b", pod, 0, 1, 2, 3, 4, 5, 6, 7)
	c.client.PrependReactor("create", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() != "binding" {
			return false, nil, nil
		}
		c.store.Reserve(state.Reservation{UID: pod.UID, Pod: "ns/train", GPUs: 8, Allocation: newer, ResourceVersion: pod.ResourceVersion})
		return true, nil, errDenied
	})
	if err := c.ext.Bind(t.Context(), &extenderv1.ExtenderBindingArgs{PodName: "train", PodNamespace: "ns", PodUID: pod.UID, Node: "dgx-a"}); err == nil {
		t.Fatal("the bind to dgx-a should fail")
	}
	if d, _ := c.store.DebugNode("dgx-b"); d.PFsFree != 0 || len(d.Assumed) != 1 {
		t.Errorf("dgx-b after the failed bind to dgx-a: %d PFs free, assumed %v; want 0 (the bind to dgx-b reserved them all), [ns/train]", d.PFsFree, d.Assumed)
	}
	if d, _ := c.store.DebugNode("dgx-a"); d.PFsFree != 8 || len(d.Assumed) != 0 {
		t.Errorf("dgx-a after its failed bind: %d PFs free, assumed %v; want 8, none", d.PFsFree, d.Assumed)
	}
}

// TestOverlappingBindsOfOnePodKeepBothNodesTaken: a bind to dgx-b reserved and sent its
// Binding; the scheduler, its request timed out, bound the pod again, to dgx-a. Until one of
// the Bindings lands, each node's devices stay taken: when dgx-b's lands (and its bind answers,
// freeing dgx-b for other binds), dgx-b's PFs must not look free because dgx-a's reservation
// replaced dgx-b's.
func TestOverlappingBindsOfOnePodKeepBothNodesTaken(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	pod := c.add(extendertest.Pod("ns", "train", 8))
	toB := pfAllocation("dgx-b", pod, 0, 1, 2, 3, 4, 5, 6, 7)
	c.store.Reserve(state.Reservation{UID: pod.UID, Pod: "ns/train", GPUs: 8, Allocation: toB, ResourceVersion: pod.ResourceVersion})
	pfsFreeOnB := -1
	c.client.PrependReactor("create", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() != "binding" {
			return false, nil, nil
		}
		// dgx-b's Binding lands first; then dgx-a's is refused.
		if err := extendertest.ApplyBinding(c.client, extendertest.Binding("ns", "train", pod.UID, "dgx-b", toB.String())); err != nil {
			return true, nil, err
		}
		d, _ := c.store.DebugNode("dgx-b")
		pfsFreeOnB = d.PFsFree
		return true, nil, extendertest.ApplyBinding(c.client, action.(k8stesting.CreateAction).GetObject().(*corev1.Binding))
	})
	if err := c.ext.Bind(t.Context(), &extenderv1.ExtenderBindingArgs{PodName: "train", PodNamespace: "ns", PodUID: pod.UID, Node: "dgx-a"}); err == nil {
		t.Fatal("the bind to dgx-a of a pod bound to dgx-b should fail")
	}
	if pfsFreeOnB != 0 {
		t.Errorf("while dgx-b's Binding landed, %d of dgx-b's PFs looked free; want 0", pfsFreeOnB)
	}
	if a := allocation(t, c, pod); a.String() != toB.String() {
		t.Errorf("the pod's allocation = %s, want dgx-b's %s", a, toB)
	}
	if d, _ := c.store.DebugNode("dgx-a"); d.PFsFree != 8 || len(d.Assumed) != 0 {
		t.Errorf("dgx-a after its bind failed: %d PFs free, assumed %v; want 8, none", d.PFsFree, d.Assumed)
	}
	if d, _ := c.store.DebugNode("dgx-b"); d.PFsFree != 0 {
		t.Errorf("dgx-b after its Binding landed: %d PFs free, want 0", d.PFsFree)
	}
}

// TestLateReleaseKeepsANewerBindOfTheSameDevices: a bind's Binding got no answer, so its
// reservation is to go once no Binding can be in flight; meanwhile the scheduler bound the pod
// again, to the same node, which gives it the same devices. When the first bind's time is up,
// the second's reservation must stay until the pod informer shows the pod.
func TestLateReleaseKeepsANewerBindOfTheSameDevices(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	const inFlight = 20 * time.Millisecond
	c.ext = scheduler.New(c.store, c.client, scheduler.Config{BindingInFlight: inFlight}, nil)
	pod := c.add(extendertest.Pod("ns", "train", 8))
	first := true
	c.client.PrependReactor("create", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() != "binding" || !first {
			return false, nil, nil
		}
		first = false
		return true, nil, io.ErrUnexpectedEOF // no answer; it never landed
	})
	args := &extenderv1.ExtenderBindingArgs{PodName: "train", PodNamespace: "ns", PodUID: pod.UID, Node: "dgx-a"}
	if err := c.ext.Bind(t.Context(), args); err == nil {
		t.Fatal("the first bind should fail")
	}
	if err := c.ext.Bind(t.Context(), args); err != nil {
		t.Fatalf("the second bind: %v", err)
	}
	time.Sleep(10 * inFlight) // the first bind's release is due
	if d, _ := c.store.DebugNode("dgx-a"); d.PFsFree != 0 || len(d.Assumed) != 1 {
		t.Errorf("after the first bind's release was due: %d PFs free, assumed %v; want 0, [ns/train] (the pod is bound there)", d.PFsFree, d.Assumed)
	}
}
