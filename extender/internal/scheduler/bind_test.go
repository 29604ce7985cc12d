package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	k8stesting "k8s.io/client-go/testing"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/extender/internal/scheduler"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
)

func TestBindReservesEveryRail(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	pod := c.add(extendertest.Pod("ns", "train", 8))
	if err := c.bind(pod, "dgx-a"); err != nil {
		t.Fatal(err)
	}
	a := allocation(t, c, pod)
	if a.Node != "dgx-a" || a.PodUID != pod.UID || len(a.Devices) != 8 {
		t.Fatalf("allocation = %+v, want 8 devices on dgx-a for the pod's UID", a)
	}
	for i, d := range a.Devices {
		if d.Kind != placement.KindPF || d.Rail != i || d.NIC != dgxNICs[i] || len(d.GPUs) != 1 || d.GPUs[0] != dgxGPUs[i] {
			t.Errorf("device %d = %+v, want the PF of rail %d serving GPU %d", i, d, i, i)
		}
	}
	current, _ := c.client.CoreV1().Pods("ns").Get(context.Background(), "train", metav1.GetOptions{})
	if current.Spec.NodeName != "dgx-a" {
		t.Errorf("pod bound to %q", current.Spec.NodeName)
	}
	second := c.add(extendertest.Pod("ns", "train-2", 8))
	if why := c.filter(second, "dgx-a").FailedNodes["dgx-a"]; !strings.Contains(why, "needs 8 GPUs: only 0 of 8 free") {
		t.Errorf("after the bind dgx-a should be full: %q", why)
	}
}

func TestBindSharesOnTheRailsOfPartOfTheGPUs(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	pod := c.add(extendertest.Pod("ns", "two", 2))
	if err := c.bind(pod, "dgx-a"); err != nil {
		t.Fatal(err)
	}
	a := allocation(t, c, pod)
	if len(a.Devices) != 2 || a.Devices[0].Kind != placement.KindVF || a.Devices[0].Rail != 0 || a.Devices[1].Kind != placement.KindMacvlan || a.Devices[1].Rail != 1 {
		t.Errorf("allocation = %+v, want a VF on rail 0 and a macvlan on rail 1", a)
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
	first := allocation(t, c, pod).String()
	if err := c.bind(pod, "dgx-a"); err != nil {
		t.Errorf("repeating a bind that went through: %v", err)
	}
	if err := c.bind(pod, "dgx-b"); !errors.Is(err, scheduler.ErrConflict) {
		t.Errorf("binding elsewhere a pod already bound: %v", err)
	}
	if allocation(t, c, pod).String() != first {
		t.Error("a repeated bind changed the allocation")
	}
}

func pfAllocation(node string, pod *corev1.Pod, rails ...int) v1alpha1.Allocation {
	a := v1alpha1.Allocation{Node: node, PodUID: pod.UID}
	for _, r := range rails {
		a.Devices = append(a.Devices, v1alpha1.Device{Rail: r, Kind: placement.KindPF, NIC: dgxNICs[r], Device: dgxNICs[r], GPUs: []string{dgxGPUs[r]}})
	}
	return a
}

// TestBindReplacesALeftoverReservation: an allocation the pod carries from an earlier version's
// failed release (for another node) gives way to the one the Binding writes.
func TestBindReplacesALeftoverReservation(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	pod := extendertest.Pod("ns", "train", 8)
	leftover := pfAllocation("dgx-a", pod, 0, 1, 2, 3, 4, 5, 6, 7)
	pod = c.add(extendertest.Pod("ns", "train", 8, v1alpha1.AnnotationAllocation, leftover.String()))
	if err := c.bind(pod, "dgx-b"); err != nil {
		t.Fatal(err)
	}
	if got := allocation(t, c, pod); got.Node != "dgx-b" || len(got.Devices) != 8 {
		t.Errorf("allocation = %s, want dgx-b's 8 PFs", got)
	}
	if d, _ := c.store.DebugNode("dgx-a"); d.PFsFree != 8 {
		t.Errorf("dgx-a keeps %d PFs held for a pod bound to dgx-b", 8-d.PFsFree)
	}
}

// TestBindIsOneWrite: the reservation travels on the Binding, which the API server copies onto
// the pod as it binds it; the bind writes nothing else (one write per pod, as the scheduler's
// own binder).
func TestBindIsOneWrite(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	pod := c.add(extendertest.Pod("ns", "train", 2))
	c.client.ClearActions()
	if err := c.bind(pod, "dgx-a"); err != nil {
		t.Fatal(err)
	}
	var writes []string
	for _, a := range c.client.Actions() {
		if a.GetVerb() != "get" && a.GetVerb() != "list" && a.GetVerb() != "watch" {
			writes = append(writes, strings.TrimSuffix(a.GetVerb()+" "+a.GetResource().Resource+"/"+a.GetSubresource(), "/"))
		}
	}
	if len(writes) != 1 || writes[0] != "create pods/binding" {
		t.Errorf("writes = %q, want only the Binding", writes)
	}
	if a := allocation(t, c, pod); a.Node != "dgx-a" || len(a.Devices) != 2 {
		t.Errorf("the bound pod's allocation = %s, want two devices on dgx-a", a)
	}
}

// TestBindDoesNotReuseAForgedReservation: an allocation of another pod's UID is replaced.
func TestBindDoesNotReuseAForgedReservation(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	other := extendertest.Pod("ns", "running", 1)
	forged := pfAllocation("dgx-a", other, 3)
	pod := c.add(extendertest.Pod("ns", "copy", 1, v1alpha1.AnnotationAllocation, forged.String()))
	if err := c.bind(pod, "dgx-a"); err != nil {
		t.Fatal(err)
	}
	if a := allocation(t, c, pod); a.PodUID != pod.UID || a.Devices[0].Kind == placement.KindPF {
		t.Errorf("allocation = %s, want the pod's own share", a)
	}
}

// failBindings makes every Binding fail with err.
func (c *cluster) failBindings(err error) {
	c.client.PrependReactor("create", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() == "binding" {
			return true, nil, err
		}
		return false, nil, nil
	})
}

// errDenied is an admission webhook's refusal: the API server wrote nothing.
var errDenied = apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "train", errors.New(`admission webhook "quota.example.com" denied the request`))

func TestBindFailureReleasesTheReservation(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	c.failBindings(errDenied)
	pod := c.add(extendertest.Pod("ns", "train", 8))
	// The scheduler gives up on the request: the store must still forget the reservation.
	ctx, cancel := context.WithCancel(context.Background())
	c.client.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		cancel()
		return false, nil, nil
	})
	err := c.ext.Bind(ctx, &extenderv1.ExtenderBindingArgs{PodName: "train", PodNamespace: "ns", PodUID: pod.UID, Node: "dgx-a"})
	if err == nil || !strings.Contains(err.Error(), "quota.example.com") {
		t.Fatalf("err = %v", err)
	}
	c.sync(pod)
	cur, _ := c.client.CoreV1().Pods("ns").Get(context.Background(), "train", metav1.GetOptions{})
	if _, has := cur.Annotations[v1alpha1.AnnotationAllocation]; has {
		t.Error("a failed bind left an allocation on the pod")
	}
	if d, _ := c.store.DebugNode("dgx-a"); d.PFsFree != 8 || d.GPUsFree != 8 || len(d.Assumed) != 0 {
		t.Errorf("store after a refused bind: %d PFs, %d GPUs free, assumed %v; want 8, 8, none", d.PFsFree, d.GPUsFree, d.Assumed)
	}
}

// TestBindWithoutAnAnswerHoldsWhileItMayLand: the Binding got no answer (the connection
// dropped) and the pod, read again, is unbound, but the API server may still be writing the
// Binding: the devices stay taken until no Binding can still be in flight, then are freed.
func TestBindWithoutAnAnswerHoldsWhileItMayLand(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	c.ext = scheduler.New(c.store, c.client, scheduler.Config{BindingInFlight: 100 * time.Millisecond}, nil)
	c.failBindings(io.ErrUnexpectedEOF)
	pod := c.add(extendertest.Pod("ns", "train", 8))
	if err := c.bind(pod, "dgx-a"); err == nil {
		t.Fatal("the bind should fail")
	}
	if d, _ := c.store.DebugNode("dgx-a"); d.PFsFree != 0 || len(d.Assumed) != 1 {
		t.Errorf("right after a Binding without an answer: %d PFs free, assumed %v; want 0, [ns/train]", d.PFsFree, d.Assumed)
	}
	err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		d, _ := c.store.DebugNode("dgx-a")
		return d.PFsFree == 8 && len(d.Assumed) == 0, nil
	})
	if err != nil {
		d, _ := c.store.DebugNode("dgx-a")
		t.Errorf("once no Binding can be in flight: %d PFs free, assumed %v; want 8, none", d.PFsFree, d.Assumed)
	}
}

// TestBindOfADeletedPod: the pod was deleted after the bind read it (its informer event may
// have come before the bind reserved): the reservation goes at once, or it would hold the
// devices with nothing left to end it.
func TestBindOfADeletedPod(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	pod := c.add(extendertest.Pod("ns", "train", 8))
	c.client.PrependReactor("create", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() != "binding" {
			return false, nil, nil
		}
		c.store.DeletePod(pod.UID)
		gvr := corev1.SchemeGroupVersion.WithResource("pods")
		return true, nil, errors.Join(c.client.Tracker().Delete(gvr, "ns", "train"), apierrors.NewNotFound(gvr.GroupResource(), "train"))
	})
	if err := c.ext.Bind(t.Context(), &extenderv1.ExtenderBindingArgs{PodName: "train", PodNamespace: "ns", PodUID: pod.UID, Node: "dgx-a"}); err == nil {
		t.Fatal("the bind of a deleted pod should fail")
	}
	if d, _ := c.store.DebugNode("dgx-a"); d.PFsFree != 8 || len(d.Assumed) != 0 {
		t.Errorf("after the bind of a deleted pod: %d PFs free, assumed %v; want 8, none", d.PFsFree, d.Assumed)
	}
}

// TestBindWhoseAnswerWasLost: the API server binds the pod, but the scheduler's request ends
// (its extender timeout) before the answer comes back. The pod is bound, so the bind succeeded:
// its reservation stays, on the pod and in the store, or its devices could go to another pod.
func TestBindWhoseAnswerWasLost(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	c.ext = scheduler.New(c.store, ctxClient{c.client}, scheduler.Config{}, nil)
	pod := c.add(extendertest.Pod("ns", "train", 8))
	ctx, cancel := context.WithCancel(context.Background())
	c.client.PrependReactor("create", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() != "binding" {
			return false, nil, nil
		}
		err := extendertest.ApplyBinding(c.client, action.(k8stesting.CreateAction).GetObject().(*corev1.Binding))
		cancel()
		return true, nil, errors.Join(err, context.Canceled)
	})
	err := c.ext.Bind(ctx, &extenderv1.ExtenderBindingArgs{PodName: "train", PodNamespace: "ns", PodUID: pod.UID, Node: "dgx-a"})
	if err != nil {
		t.Errorf("bind of a pod the API server bound: %v", err)
	}
	if d, _ := c.store.DebugNode("dgx-a"); d.PFsFree != 0 {
		t.Errorf("before the pod informer shows the pod, %d PFs of dgx-a free while the pod bound there holds them all", d.PFsFree)
	}
	c.sync(pod)
	if a := allocation(t, c, pod); a.Node != "dgx-a" || len(a.Devices) != 8 {
		t.Errorf("allocation %s, want the 8 PFs of dgx-a", a)
	}
	if d, _ := c.store.DebugNode("dgx-a"); d.PFsFree != 0 {
		t.Errorf("%d PFs of dgx-a free while the pod bound there holds them all", d.PFsFree)
	}
}

// ctxClient is the fake clientset whose pod reads and writes fail once their context is done,
// as a real client's do.
type ctxClient struct{ *fake.Clientset }

func (c ctxClient) CoreV1() typedcorev1.CoreV1Interface { return ctxCoreV1{c.Clientset.CoreV1()} }

type ctxCoreV1 struct{ typedcorev1.CoreV1Interface }

func (c ctxCoreV1) Pods(namespace string) typedcorev1.PodInterface {
	return ctxPods{c.CoreV1Interface.Pods(namespace)}
}

type ctxPods struct{ typedcorev1.PodInterface }

func (p ctxPods) Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Pod, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return p.PodInterface.Get(ctx, name, opts)
}

// TestOwnLeftoverReservationNeverStrandsThePod: a reservation left on the pod (its release
// failed) never counts against the pod itself, in filter, score or bind.
func TestOwnLeftoverReservationNeverStrandsThePod(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	pod := extendertest.Pod("ns", "train", 8)
	pod = c.add(extendertest.Pod("ns", "train", 8, v1alpha1.AnnotationAllocation, pfAllocation("dgx-a", pod, 0, 1, 2, 3, 4, 5, 6, 7).String()))
	if d, _ := c.store.DebugNode("dgx-a"); d.GPUsFree != 0 {
		t.Fatalf("the leftover reservation should hold dgx-a for others: %d GPUs free", d.GPUsFree)
	}
	if res := c.filter(pod, "dgx-a"); len(*res.NodeNames) != 1 {
		t.Errorf("the pod's own reservation rejects it: %v", res.FailedNodes)
	}
	if s := c.scores(pod, "dgx-a")["dgx-a"]; s == 0 {
		t.Error("the pod's own reservation scores its node 0")
	}
	if other := c.add(extendertest.Pod("ns", "other", 8)); len(*c.filter(other, "dgx-a").NodeNames) != 0 {
		t.Error("another pod passes a node the leftover reservation holds")
	}
	if err := c.bind(pod, "dgx-a"); err != nil {
		t.Errorf("bind on the node of its own reservation: %v", err)
	}
}

func TestBindUnknownPod(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	err := c.ext.Bind(context.Background(), &extenderv1.ExtenderBindingArgs{PodName: "ghost", PodNamespace: "ns", Node: "dgx-a"})
	if !errors.Is(err, scheduler.ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound", err)
	}
	c.add(extendertest.Pod("ns", "p", 1))
	err = c.ext.Bind(context.Background(), &extenderv1.ExtenderBindingArgs{PodName: "p", PodNamespace: "ns", PodUID: "other-incarnation", Node: "dgx-a"})
	if !errors.Is(err, scheduler.ErrNotFound) {
		t.Errorf("wrong UID: err = %v, want ErrNotFound", err)
	}
}

// TestBindOnlyServedSchedulers: /bind is not a back door for pods of other schedulers.
func TestBindOnlyServedSchedulers(t *testing.T) {
	c := newCluster(t, scheduler.Config{SchedulerNames: []string{"topolane-scheduler", "topolane-batch"}})
	for name, want := range map[string]bool{"default-scheduler": false, "topolane-scheduler": true, "topolane-batch": true} {
		p := extendertest.Pod("ns", name, 1)
		p.Spec.SchedulerName = name
		p = c.add(p)
		err := c.bind(p, "dgx-a")
		if want != (err == nil) {
			t.Errorf("%s: bind err %v", name, err)
		}
		if !want && (!errors.Is(err, scheduler.ErrForbidden) || !strings.Contains(err.Error(), `is for scheduler "default-scheduler"`)) {
			t.Errorf("%s: err %v, want a refusal saying why", name, err)
		}
	}
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
	if before.GPUsFree != 1 || after.GPUsFree != before.GPUsFree || after.VFsFree != before.VFsFree || len(after.Held) != 7 {
		t.Errorf("before restart %d GPUs and %d VFs free, %d held; after %d, %d, %d",
			before.GPUsFree, before.VFsFree, len(before.Held), after.GPUsFree, after.VFsFree, len(after.Held))
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

// TestVerbsAgreeOnPodsTopolaneLeavesAlone: a nic: none pod passes a node without a
// NodeTopology, and binds there.
func TestVerbsAgreeOnPodsTopolaneLeavesAlone(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	pod := c.add(extendertest.Pod("ns", "none", 1, v1alpha1.AnnotationNIC, "none"))
	if res := c.filter(pod, "bare"); len(*res.NodeNames) != 1 {
		t.Fatalf("filter: %+v", res)
	}
	if err := c.bind(pod, "bare"); err != nil {
		t.Errorf("bind: %v", err)
	}
	cur, _ := c.client.CoreV1().Pods("ns").Get(context.Background(), "none", metav1.GetOptions{})
	if _, has := cur.Annotations[v1alpha1.AnnotationAllocation]; has || cur.Spec.NodeName != "bare" {
		t.Errorf("pod = %s with %v: want bound, nothing reserved", cur.Spec.NodeName, cur.Annotations)
	}
}

// TestStaleEventAfterBind: the informer delivers the pod as it was before the bind: the
// reserved devices stay taken for the next pod.
func TestStaleEventAfterBind(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	a := c.add(extendertest.Pod("ns", "a", 8))
	stale := a.DeepCopy()
	if err := c.ext.Bind(context.Background(), &extenderv1.ExtenderBindingArgs{PodName: "a", PodNamespace: "ns", PodUID: a.UID, Node: "dgx-a"}); err != nil {
		t.Fatal(err)
	}
	c.store.SetPod(stale) // the informer's late event of the pending pod
	b := c.add(extendertest.Pod("ns", "b", 8))
	if res := c.filter(b, "dgx-a"); len(*res.NodeNames) != 0 {
		t.Error("after a stale event dgx-a passes a second full-node pod: its PFs would be given twice")
	}
}
