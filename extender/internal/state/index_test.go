package state

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/topolane/topolane/topology/placement"
	"github.com/topolane/topolane/topology/topologytest"
)

// TestIndexFollowsAMap drives the index with random adds, changes and removals (its table
// grows, entries move back on removal, ordinals are reused, names compacted) and checks it
// against a plain map after every few hundred steps: every node's view, and every column's
// answer as the node's summary gives it.
func TestIndexFollowsAMap(t *testing.T) {
	dgx := topologytest.DGXH100().Node()
	views := []View{
		{},
		{Known: true, Problem: "no NodeTopology"},
		{Known: true, Summary: placement.Summarize(dgx, placement.Usage{}, placement.DefaultWeights)},
		{Known: true, Summary: placement.Summarize(dgx, placement.Usage{GPUsInUse: 7}, placement.DefaultWeights)},
		{Known: false, Summary: placement.Summarize(dgx, placement.Usage{}, placement.DefaultWeights)},
	}
	shapes := []placement.Shape{
		placement.ShapeOf(placement.Request{GPUs: 2}),
		placement.ShapeOf(placement.Request{GPUs: 8}),
		placement.ShapeOf(placement.Request{GPUs: 1, Mode: placement.ModeVF}),
	}
	x, want := newIndex(), map[string]View{}
	x.column(shapes[0]) // kept in step from the start; the others are built half way
	rng := rand.New(rand.NewPCG(1, 2))
	const names, steps = 3000, 40000
	for step := range steps {
		name := fmt.Sprintf("node-%d", rng.IntN(names))
		if rng.IntN(3) == 0 {
			x.remove(name)
			delete(want, name)
		} else {
			v := views[rng.IntN(len(views))]
			x.set(name, v)
			want[name] = v
		}
		if step == steps/2 {
			x.column(shapes[1])
			x.column(shapes[2])
		}
		if step%499 != 0 {
			continue
		}
		if x.live != len(want) {
			t.Fatalf("step %d: %d live nodes, want %d", step, x.live, len(want))
		}
		for i := range names {
			name := fmt.Sprintf("node-%d", i)
			if got := x.view(name); got != want[name] {
				t.Fatalf("step %d: %s is %+v, want %+v", step, name, got, want[name])
			}
			_, ord := x.find(name)
			if _, ok := want[name]; ok != (ord >= 0) {
				t.Fatalf("step %d: %s found %v, want %v", step, name, ord >= 0, ok)
			}
			for _, c := range *x.columns.Load() {
				if ord >= 0 && c.fits[ord] != answerOf(want[name], c.shape) {
					t.Fatalf("step %d: %s answers %+v with %d, want %d", step, name, c.shape.Request, c.fits[ord], answerOf(want[name], c.shape))
				}
			}
		}
	}
	if x.garbage > len(x.names)/2+4096 {
		t.Errorf("names hold %d bytes, %d of them removed nodes': not compacted (%d live nodes)", len(x.names), x.garbage, x.live)
	}
}

// TestIndexForgetsAReasonWhenTheNodeChanges: a kept rejection must not outlive the view it
// was worded from, nor pass to a new node given the removed one's ordinal.
func TestIndexForgetsAReasonWhenTheNodeChanges(t *testing.T) {
	x := newIndex()
	c := x.column(placement.ShapeOf(placement.Request{GPUs: 2}))
	x.set("a", View{Known: true, Problem: "no topology"})
	_, ord := x.find("a")
	c.rejected[ord].Store(&Rejection{Reason: "no topology"})
	x.set("a", View{Known: true, Problem: "still none"})
	if r := c.rejected[ord].Load(); r != nil {
		t.Errorf("after a change, the old reason %q is kept", r.Reason)
	}
	c.rejected[ord].Store(&Rejection{Reason: "still none"})
	x.remove("a")
	x.set("b", View{Known: true, Problem: "another"})
	if _, reused := x.find("b"); reused != ord {
		t.Fatalf("b got ordinal %d, want the removed a's %d", reused, ord)
	}
	if r := c.rejected[ord].Load(); r != nil {
		t.Errorf("a new node inherits the removed one's reason %q", r.Reason)
	}
}

// TestIndexKeepsTheColumnsInUse: past maxColumns shapes the least used lately is dropped; a
// shape asked again and again keeps its column (and the reasons kept in it).
func TestIndexKeepsTheColumnsInUse(t *testing.T) {
	x := newIndex()
	x.set("a", View{Known: true, Problem: "no topology"})
	shape := func(gpus int) placement.Shape { return placement.ShapeOf(placement.Request{GPUs: gpus}) }
	hot, cold := x.column(shape(1)), x.column(shape(2))
	for gpus := 3; gpus < 3+2*maxColumns; gpus++ {
		x.column(shape(gpus))
		if got := x.column(shape(1)); got != hot {
			t.Fatalf("after %d other shapes, the shape asked every time was built again", gpus-2)
		}
	}
	if got := x.column(shape(2)); got == cold {
		t.Error("a shape not asked since 64 others kept its column")
	}
	if n := len(*x.columns.Load()); n != maxColumns {
		t.Errorf("%d columns kept, want %d", n, maxColumns)
	}
}
