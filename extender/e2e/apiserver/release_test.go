package apiserver

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/extender/embedded"
	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/topologytest"
)

// TestFailedBindingOnTheRealAPIServer: the reservation travels on the Binding, so a Binding
// that failed leaves the pod pending without one; a Binding that went through while its answer
// was lost (the request's time ran out) leaves the pod bound with it (the real API server copies
// the Binding's annotations onto the pod), and the bind answers success.
func TestFailedBindingOnTheRealAPIServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startAPIServer(t, ctx)
	installCRD(t, ctx, c.cfg)
	if err := createGPUNode(ctx, c, "dgx-a", extendertest.Topology("dgx-a", topologytest.DGXH100())); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		faults   *apiFaults
		wantNode string
		wantKept bool
	}{
		{"binding refused", &apiFaults{refuseBindings: true}, "", false},
		{"binding went through, its answer lost", &apiFaults{lostEvery: 1}, "dgx-a", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ext := extenderBehind(t, ctx, c, tt.faults)
			pod := extendertest.Pod(ns, fmt.Sprintf("release-%t", tt.wantKept), 8)
			pod.UID = ""
			pod, err := c.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			bindCtx, done := context.WithTimeout(ctx, 2*time.Second) // the scheduler's httpTimeout
			defer done()
			// A Binding that went through is found bound (asked with a context of the bind's
			// own): the bind succeeds; a refused one fails.
			err = ext.Bind(bindCtx, &extenderv1.ExtenderBindingArgs{PodName: pod.Name, PodNamespace: ns, PodUID: pod.UID, Node: "dgx-a"})
			if bound := tt.wantNode != ""; (err == nil) != bound {
				t.Fatalf("bind: %v; want it to succeed only if the Binding went through", err)
			}
			got, err := c.client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, kept := got.Annotations[v1alpha1.AnnotationAllocation]
			if got.Spec.NodeName != tt.wantNode || kept != tt.wantKept {
				t.Errorf("after the failed bind the pod is on %q, its reservation kept: %v; want %q, %v", got.Spec.NodeName, kept, tt.wantNode, tt.wantKept)
			}
		})
	}
}

// TestTwoBindsOfOnePod: the scheduler gave up on a bind (its timeout) and bound the pod again
// elsewhere while the first still ran. Here the other bind's Binding, to dgx-b with dgx-b's
// devices, lands just before this bind's to dgx-a: this one must fail and leave the pod as the
// other left it, or the pod would run on one node holding another node's devices, which that
// node's agent would never give it.
func TestTwoBindsOfOnePod(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, pod := pendingPodOn(t, ctx, "twice", "dgx-a", "dgx-b")
	other := v1alpha1.Allocation{Node: "dgx-b", PodUID: pod.UID, Devices: []v1alpha1.Device{{Kind: "pf", NIC: "0000:1a:00.0", Device: "0000:1a:00.0"}}}
	faults := &apiFaults{}
	faults.beforeBinding = func(string) {
		faults.beforeBinding = nil // the other bind's Binding, once
		binding := extendertest.Binding(ns, pod.Name, pod.UID, "dgx-b", other.String())
		if err := c.client.CoreV1().Pods(ns).Bind(ctx, binding, metav1.CreateOptions{}); err != nil {
			t.Error(err)
		}
	}
	ext := extenderBehind(t, ctx, c, faults)
	bindErr := ext.Bind(ctx, &extenderv1.ExtenderBindingArgs{PodName: pod.Name, PodNamespace: ns, PodUID: pod.UID, Node: "dgx-a"})
	got := podNow(t, ctx, c, pod.Name)
	if bindErr == nil || got.Spec.NodeName != "dgx-b" || got.Annotations[v1alpha1.AnnotationAllocation] != other.String() {
		t.Errorf("bind: %v; the pod on %q with the allocation %q; want the bind refused, the pod on dgx-b with the other bind's allocation",
			bindErr, got.Spec.NodeName, got.Annotations[v1alpha1.AnnotationAllocation])
	}
}

// TestBindAfterAnUnrelatedWrite: something else writes the pod (a label) between the bind's
// read and its Binding. The Binding is conditional on the pod's UID, not its version, so it
// goes through, with its reservation, and the label stays.
func TestBindAfterAnUnrelatedWrite(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, pod := pendingPodOn(t, ctx, "labelled", "dgx-a")
	faults := &apiFaults{}
	faults.beforeBinding = func(string) {
		faults.beforeBinding = nil
		patch := []byte(`{"metadata":{"labels":{"team":"vision"}}}`)
		if _, err := c.client.CoreV1().Pods(ns).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Error(err)
		}
	}
	ext := extenderBehind(t, ctx, c, faults)
	if err := ext.Bind(ctx, &extenderv1.ExtenderBindingArgs{PodName: pod.Name, PodNamespace: ns, PodUID: pod.UID, Node: "dgx-a"}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	got := podNow(t, ctx, c, pod.Name)
	a, err := v1alpha1.ParseAllocation(got.Annotations[v1alpha1.AnnotationAllocation])
	if got.Spec.NodeName != "dgx-a" || err != nil || a.Node != "dgx-a" || got.Labels["team"] != "vision" {
		t.Errorf("the pod on %q, its reservation for %q (%v), labels %v; want bound to dgx-a with its reservation and the label", got.Spec.NodeName, a.Node, err, got.Labels)
	}
}

// pendingPodOn starts an API server with DGX H100 nodes and creates an 8-GPU pod, pending.
func pendingPodOn(t *testing.T, ctx context.Context, name string, nodes ...string) (cluster, *corev1.Pod) {
	c := startAPIServer(t, ctx)
	installCRD(t, ctx, c.cfg)
	for _, node := range nodes {
		if err := createGPUNode(ctx, c, node, extendertest.Topology(node, topologytest.DGXH100())); err != nil {
			t.Fatal(err)
		}
	}
	pod := extendertest.Pod(ns, name, 8)
	pod.UID = ""
	pod, err := c.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c, pod
}

// extenderBehind runs the extender in-process, its clients meeting the faults, once synced.
func extenderBehind(t *testing.T, ctx context.Context, c cluster, faults *apiFaults) *embedded.Extender {
	client, dyn := faults.clients(c.cfg)
	ext := embedded.New(client, embedded.Config{})
	if err := ext.Watch(ctx, client, dyn, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return ext
}

func podNow(t *testing.T, ctx context.Context, c cluster, name string) *corev1.Pod {
	pod, err := c.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pod
}
