package scheduler_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/extender/internal/scheduler"
	"github.com/topolane/topolane/extender/internal/state"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
)

// TestReleaseKeepsANewerBindsReservation: the scheduler gave up on a bind to dgx-a (its
// httpTimeout) and bound the pod again, to dgx-b, while the first bind was releasing: the second
// bind reserved dgx-b's devices just after the first one's release patch went through. The first
// bind must drop only its own reservation, not the pod's newer one, or dgx-b's PFs look free
// until the pod informer shows the annotation and another pod can be given them.
func TestReleaseKeepsANewerBindsReservation(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	c.failBindings("etcd is having a bad day")
	pod := c.add(extendertest.Pod("ns", "train", 8))
	newer := pfAllocation("dgx-b", pod, 0, 1, 2, 3, 4, 5, 6, 7)
	c.client.PrependReactor("patch", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if action.(k8stesting.PatchAction).GetPatchType() != types.JSONPatchType {
			return false, nil, nil
		}
		// The release of dgx-a goes through; the bind to dgx-b annotates and reserves.
		gvr := corev1.SchemeGroupVersion.WithResource("pods")
		obj, err := c.client.Tracker().Get(gvr, "ns", "train")
		if err != nil {
			return true, nil, err
		}
		p := obj.(*corev1.Pod).DeepCopy()
		p.Annotations[v1alpha1.AnnotationAllocation] = newer.String()
		if err := c.client.Tracker().Update(gvr, p, "ns"); err != nil {
			return true, nil, err
		}
		c.store.Reserve(state.Reservation{UID: pod.UID, Pod: "ns/train", GPUs: 8, Allocation: newer, ResourceVersion: "999999"})
		released := p.DeepCopy()
		delete(released.Annotations, v1alpha1.AnnotationAllocation)
		return true, released, nil
	})
	if err := c.ext.Bind(t.Context(), &extenderv1.ExtenderBindingArgs{PodName: "train", PodNamespace: "ns", PodUID: pod.UID, Node: "dgx-a"}); err == nil {
		t.Fatal("the bind to dgx-a should fail")
	}
	if d, _ := c.store.DebugNode("dgx-b"); d.PFsFree != 0 || len(d.Assumed) != 1 {
		t.Errorf("dgx-b after the release of dgx-a: %d PFs free, assumed %v; want 0 (the bind to dgx-b reserved them all), [ns/train]", d.PFsFree, d.Assumed)
	}
	if d, _ := c.store.DebugNode("dgx-a"); d.PFsFree != 8 || len(d.Assumed) != 0 {
		t.Errorf("dgx-a after its release: %d PFs free, assumed %v; want 8, none", d.PFsFree, d.Assumed)
	}
}
