package state_test

import (
	"context"
	"fmt"
	"testing"
	"time"

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
