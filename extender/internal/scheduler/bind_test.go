package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/extender/internal/scheduler"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
)

func TestBindReservesThenBinds(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	pod := c.add(extendertest.Pod("ns", "train", 8))
	if err := c.bind(pod, "dgx-a"); err != nil {
		t.Fatal(err)
	}
	a := allocation(t, c, pod)
	if a.Node != "dgx-a" || a.Kind != placement.KindPF {
		t.Errorf("allocation = %+v, want a PF on dgx-a", a)
	}
	current, _ := c.client.CoreV1().Pods("ns").Get(context.Background(), "train", metav1.GetOptions{})
	if current.Spec.NodeName != "dgx-a" {
		t.Errorf("pod bound to %q", current.Spec.NodeName)
	}
	// The node is now full: another full-node pod is turned away with the reason.
	second := c.add(extendertest.Pod("ns", "train-2", 8))
	res := c.filter(second, "dgx-a")
	if why := res.FailedNodes["dgx-a"]; !strings.Contains(why, "needs 8 GPUs: only 0 of 8 free") {
		t.Errorf("after the bind dgx-a should be full: %q", why)
	}
}

func TestBindRace(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	a, b := c.add(extendertest.Pod("ns", "a", 8)), c.add(extendertest.Pod("ns", "b", 8))
	// Both passed the filter before either was bound; the binds then race for dgx-b's PFs.
	for _, p := range []*corev1.Pod{a, b} {
		if res := c.filter(p, "dgx-b"); len(*res.NodeNames) != 1 {
			t.Fatalf("%s should pass the filter", p.Name)
		}
	}
	errs := make(chan error, 2)
	for _, p := range []*corev1.Pod{a, b} {
		go func() {
			errs <- c.ext.Bind(context.Background(), &extenderv1.ExtenderBindingArgs{PodName: p.Name, PodNamespace: "ns", PodUID: p.UID, Node: "dgx-b"})
		}()
	}
	var failures []error
	for range 2 {
		if err := <-errs; err != nil {
			failures = append(failures, err)
		}
	}
	if len(failures) != 1 || !errors.Is(failures[0], scheduler.ErrConflict) || !strings.Contains(failures[0].Error(), "can no longer take the pod: needs 8 GPUs: only 0 of 8 free") {
		t.Fatalf("want exactly one conflict with its reason, got %v", failures)
	}
	bound := 0
	for _, p := range []*corev1.Pod{a, b} {
		cur, _ := c.client.CoreV1().Pods("ns").Get(context.Background(), p.Name, metav1.GetOptions{})
		if cur.Spec.NodeName == "dgx-b" {
			bound++
		} else if _, has := cur.Annotations[v1alpha1.AnnotationAllocation]; has {
			t.Errorf("the loser %s keeps a reservation", p.Name)
		}
	}
	if bound != 1 {
		t.Errorf("%d pods bound, want 1", bound)
	}
}

func TestBindIsIdempotent(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	pod := c.add(extendertest.Pod("ns", "train", 2))
	if err := c.bind(pod, "dgx-a"); err != nil {
		t.Fatal(err)
	}
	first := allocation(t, c, pod)
	if err := c.bind(pod, "dgx-a"); err != nil {
		t.Errorf("repeating a bind that went through: %v", err)
	}
	if err := c.bind(pod, "dgx-b"); !errors.Is(err, scheduler.ErrConflict) {
		t.Errorf("binding elsewhere a pod already bound: %v", err)
	}
	if allocation(t, c, pod) != first {
		t.Error("a repeated bind changed the allocation")
	}
}

func TestBindReusesAReservationWhoseBindingWasLost(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	alloc := v1alpha1.Allocation{Node: "dgx-a", Kind: placement.KindPF, NIC: "0000:42:00.0", Device: "0000:42:00.0"}
	pod := c.add(extendertest.Pod("ns", "train", 8, v1alpha1.AnnotationAllocation, alloc.String()))
	if err := c.bind(pod, "dgx-a"); err != nil {
		t.Fatal(err)
	}
	if got := allocation(t, c, pod); got != alloc {
		t.Errorf("allocation = %+v, want the one already recorded %+v", got, alloc)
	}
}

func TestBindFailureReleasesTheReservation(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	c.client.PrependReactor("create", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() == "binding" {
			return true, nil, fmt.Errorf("etcd is having a bad day")
		}
		return false, nil, nil
	})
	pod := c.add(extendertest.Pod("ns", "train", 8))
	err := c.bind(pod, "dgx-a")
	if err == nil || !strings.Contains(err.Error(), "etcd is having a bad day") {
		t.Fatalf("err = %v", err)
	}
	cur, _ := c.client.CoreV1().Pods("ns").Get(context.Background(), "train", metav1.GetOptions{})
	if _, has := cur.Annotations[v1alpha1.AnnotationAllocation]; has {
		t.Error("the reservation annotation should be removed when binding fails")
	}
	if d, _ := c.store.DebugNode("dgx-a"); d.PFsFree != 8 || d.GPUsFree != 8 {
		t.Errorf("store after a failed bind: %d PFs, %d GPUs free; want 8 and 8", d.PFsFree, d.GPUsFree)
	}
}

func TestBindUnknownPod(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	err := c.ext.Bind(context.Background(), &extenderv1.ExtenderBindingArgs{PodName: "ghost", PodNamespace: "ns", Node: "dgx-a"})
	if !errors.Is(err, scheduler.ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound", err)
	}
	pod := c.add(extendertest.Pod("ns", "p", 1))
	err = c.ext.Bind(context.Background(), &extenderv1.ExtenderBindingArgs{PodName: "p", PodNamespace: "ns", PodUID: "other-incarnation", Node: "dgx-a"})
	if !errors.Is(err, scheduler.ErrNotFound) {
		t.Errorf("wrong UID: err = %v, want ErrNotFound", err)
	}
	_ = pod
}

// TestRestartRebuildsTheLedger: a new store fed the same pods (as informers would after a
// restart) holds the same reservations, so no device is given twice.
func TestRestartRebuildsTheLedger(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	for i := range 7 {
		pod := c.add(extendertest.Pod("ns", fmt.Sprintf("one-%d", i), 1))
		if err := c.bind(pod, "dgx-a"); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := c.store.DebugNode("dgx-a")
	restarted := newCluster(t, scheduler.Config{})
	pods, _ := c.client.CoreV1().Pods("ns").List(context.Background(), metav1.ListOptions{})
	for i := range pods.Items {
		restarted.store.SetPod(&pods.Items[i])
	}
	after, _ := restarted.store.DebugNode("dgx-a")
	if before.GPUsFree != 1 || after.GPUsFree != before.GPUsFree || after.VFsFree != before.VFsFree || len(after.Reserved) != 7 {
		t.Errorf("before restart %d GPUs and %d VFs free, %d held; after %d, %d, %d",
			before.GPUsFree, before.VFsFree, len(before.Reserved), after.GPUsFree, after.VFsFree, len(after.Reserved))
	}
}

func TestBindOnANodeWhoseTopologyWentAway(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	pod := c.add(extendertest.Pod("ns", "train", 8))
	c.store.DeleteTopology("dgx-a")
	err := c.bind(pod, "dgx-a")
	if !errors.Is(err, scheduler.ErrConflict) || !strings.Contains(err.Error(), "no NodeTopology") {
		t.Errorf("err = %v, want a conflict saying the node has no NodeTopology", err)
	}
}
