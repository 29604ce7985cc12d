package state_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/extender/internal/state"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
	"github.com/topolane/topolane/topology/topologytest"
)

// TestSyncedMeansFoldedIn: once Watch says synced, every listed NodeTopology is in its node's
// summary. (The informers' own HasSynced says only that their caches are filled; the handlers
// that fold objects into summaries may still be behind.)
func TestSyncedMeansFoldedIn(t *testing.T) {
	const n = 500
	var nodes []runtime.Object
	dyn := extendertest.DynamicClient()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range n {
		name := fmt.Sprintf("dgx-%04d", i)
		nodes = append(nodes, extendertest.Node(name, 8))
		u, err := v1alpha1.ToUnstructured(extendertest.Topology(name, topologytest.DGXH100()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dyn.Resource(v1alpha1.GroupVersionResource).Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	s := state.New(state.DefaultGPUResources, placement.DefaultWeights, nil)
	synced, err := state.Watch(ctx, s, fake.NewClientset(nodes...), dyn)
	if err != nil {
		t.Fatal(err)
	}
	if !state.WaitForSync(ctx, synced, time.Minute) {
		t.Fatal("never synced")
	}
	for i := range n {
		name := fmt.Sprintf("dgx-%04d", i)
		if v := s.Node(name); !v.Known || v.Summary == nil {
			t.Fatalf("synced, but %s is not in: %+v", name, v)
		}
	}
}

// TestTransformNodeKeepsWhatTheStoreReads: the Node informer caches the name and the GPUs
// allocatable, and the store reads the same from it as from the whole Node.
func TestTransformNodeKeepsWhatTheStoreReads(t *testing.T) {
	resources := []corev1.ResourceName{"nvidia.com/gpu", "example.com/gpu"}
	full := extendertest.Node("dgx", 8)
	full.ResourceVersion = "42"
	full.Labels["nvidia.com/gpu.product"] = "NVIDIA-H100-80GB-HBM3"
	full.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate}}
	full.Status.Images = []corev1.ContainerImage{{Names: []string{"nvcr.io/nvidia/pytorch:24.01-py3"}, SizeBytes: 9 << 30}}
	full.Status.Allocatable["example.com/gpu"] = resource.MustParse("2")
	noGPU := extendertest.Node("cpu-only", 0)
	delete(noGPU.Status.Allocatable, "nvidia.com/gpu")
	for _, tt := range []struct {
		node *corev1.Node
		want *state.NodeInfo
	}{
		{full, &state.NodeInfo{ObjectMeta: metav1.ObjectMeta{Name: "dgx", UID: full.UID, ResourceVersion: "42"}, AllocatableGPUs: 10}},
		{noGPU, &state.NodeInfo{ObjectMeta: metav1.ObjectMeta{Name: "cpu-only", UID: noGPU.UID}, AllocatableGPUs: -1}},
	} {
		whole := state.New(resources, placement.DefaultWeights, nil)
		kept := state.New(resources, placement.DefaultWeights, nil)
		got, err := kept.TransformNode(tt.node.DeepCopy())
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s kept (-want +got):\n%s", tt.node.Name, diff)
		}
		whole.SetNode(tt.node)
		kept.SetNodeInfo(got.(*state.NodeInfo))
		w, _ := whole.DebugNode(tt.node.Name)
		k, _ := kept.DebugNode(tt.node.Name)
		if diff := cmp.Diff(w, k); diff != "" || w.AllocatableGPUs != tt.want.AllocatableGPUs {
			t.Errorf("%s: the store reads the kept Node differently (-whole +kept):\n%s", tt.node.Name, diff)
		}
	}
	if obj, _ := state.New(resources, placement.DefaultWeights, nil).TransformNode("not a node"); obj != "not a node" {
		t.Errorf("a non-Node came back as %v", obj)
	}
}
