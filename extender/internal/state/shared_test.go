package state

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/topologytest"
)

// published is a node's NodeTopology as the agent publishes it, its GPUs given UUIDs of their own
// (as real GPUs have), through the informer's transform.
func published(t *testing.T, name string, m topologytest.Machine) (*TopologyInfo, *topology.Node) {
	t.Helper()
	n := m.Node().WithoutPaths()
	n.Name = name
	for i := range n.GPUs {
		n.GPUs[i].UUID = fmt.Sprintf("GPU-%s-%d", name, i)
	}
	return transformed(t, n), n
}

// transformed is the node's NodeTopology as the informer's transform keeps it.
func transformed(t *testing.T, n *topology.Node) *TopologyInfo {
	t.Helper()
	u, err := v1alpha1.ToUnstructured(v1alpha1.NodeTopologyOf(n, nil))
	if err != nil {
		t.Fatal(err)
	}
	info, err := TransformTopology(u)
	if err != nil {
		t.Fatal(err)
	}
	return info.(*TopologyInfo)
}

func TestTopologiesShareWhatTheyHaveAlike(t *testing.T) {
	a, wantA := published(t, "dgx-a", topologytest.DGXH100())
	b, wantB := published(t, "dgx-b", topologytest.DGXH100())
	c, wantC := published(t, "pcie-c", topologytest.PCIeServer())
	for _, tt := range []struct {
		got, want *topology.Node
	}{{a.Topology, wantA}, {b.Topology, wantB}, {c.Topology, wantC}} {
		if diff := cmp.Diff(tt.want, tt.got, cmp.Comparer(levelsEqual), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s decoded (-published +decoded):\n%s", tt.want.Name, diff)
		}
	}
	if &a.Topology.NICs[0] != &b.Topology.NICs[0] || &a.Topology.Rails[0] != &b.Topology.Rails[0] {
		t.Error("two DGX H100s keep a copy each of their NICs and rails")
	}
	if &a.Topology.GPUs[0] == &b.Topology.GPUs[0] {
		t.Error("GPUs with UUIDs of their own are shared")
	}
	if &a.Topology.NICs[0] == &c.Topology.NICs[0] {
		t.Error("a PCIe server shares a DGX's NICs")
	}
}

func levelsEqual(a, b topology.Levels) bool {
	ja, _ := a.MarshalJSON()
	jb, _ := b.MarshalJSON()
	return string(ja) == string(jb)
}

// TestSharedPartsAreForgotten: a part no topology uses any more leaves the table.
func TestSharedPartsAreForgotten(t *testing.T) {
	n := topologytest.DGXH100().Node().WithoutPaths()
	n.NICs[0].Name = "only-here" // a machine of its own
	info := transformed(t, n)
	parts := info.shared.machine
	key := keyOf(parts)
	if !holds(machines, key) {
		t.Fatal("the table does not hold the new machine's parts")
	}
	info, parts = nil, nil
	deadline := time.Now().Add(10 * time.Second)
	for holds(machines, key) && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if holds(machines, key) {
		t.Error("the table still holds a machine no topology uses")
	}
	runtime.KeepAlive(info)
	runtime.KeepAlive(parts)
}

func keyOf[T any](v *T) [sha256.Size]byte {
	data, _ := json.Marshal(v)
	return sha256.Sum256(data)
}

func holds[T any](t *interned[T], key [sha256.Size]byte) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.m[key]
	return ok
}
