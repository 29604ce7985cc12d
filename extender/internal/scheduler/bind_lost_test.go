package scheduler_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/extender/internal/scheduler"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
)

// landAndLoseTheAnswer makes the next Binding go through while its caller sees an error, and
// the caller's next read of the pod fail: the scheduler gave up on the bind request (its
// httpTimeout) while the API server was writing the Binding, which it finished anyway.
func (c *cluster) landAndLoseTheAnswer(cancel context.CancelFunc) {
	landed, done := false, false
	c.client.PrependReactor("get", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if landed {
			landed = false
			return true, nil, context.Canceled
		}
		return false, nil, nil
	})
	c.client.PrependReactor("create", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() != "binding" || done {
			return false, nil, nil
		}
		if err := extendertest.ApplyBinding(c.client, action.(k8stesting.CreateAction).GetObject().(*corev1.Binding)); err != nil {
			return true, nil, err
		}
		landed, done = true, true
		cancel()
		return true, nil, context.Canceled
	})
}

// TestBindingThatLandedKeepsItsReservation: found by the load test on the real API server (pods
// bound without topolane.io/allocation after the scheduler's bind requests timed out). When the
// Binding's answer is lost but the pod was bound, the release must neither remove the pod's
// allocation (its device would look free to the next bind, and the agent would have nothing to
// attach) nor drop the reservation before the pod informer shows the bound pod. Now the
// allocation travels on the Binding, and a reservation whose outcome is unknown stays assumed.
func TestBindingThatLandedKeepsItsReservation(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	pod := c.add(extendertest.Pod("ns", "train", 8))
	ctx, cancel := context.WithCancel(context.Background())
	c.landAndLoseTheAnswer(cancel)
	if err := c.ext.Bind(ctx, &extenderv1.ExtenderBindingArgs{PodName: "train", PodNamespace: "ns", PodUID: pod.UID, Node: "dgx-a"}); err == nil {
		t.Log("the bind saw the pod bound after all")
	}
	cur, err := c.client.CoreV1().Pods("ns").Get(context.Background(), "train", metav1.GetOptions{})
	if err != nil || cur.Spec.NodeName != "dgx-a" {
		t.Fatalf("the Binding should have landed: %v, %v", cur, err)
	}
	if _, err := v1alpha1.ParseAllocation(cur.Annotations[v1alpha1.AnnotationAllocation]); err != nil {
		t.Errorf("the pod is bound to dgx-a without its allocation: %v", err)
	}
	// Before the pod informer shows the bound pod, its devices stay taken.
	if d, _ := c.store.DebugNode("dgx-a"); d.PFsFree != 0 || d.GPUsFree != 0 {
		t.Errorf("dgx-a before the informer catches up: %d PFs, %d GPUs free; want 0, 0 (the pod holds them)", d.PFsFree, d.GPUsFree)
	}
	if other := c.add(extendertest.Pod("ns", "other", 8)); c.bind(other, "dgx-a") == nil {
		t.Error("a second 8-GPU pod was bound to dgx-a: its PFs given twice")
	}
}
