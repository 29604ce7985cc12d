package placement

import (
	"testing"

	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/topologytest"
)

// TestTableAnswersAsWorkedOut: what a summary looks up for every pod shape is what it works out
// for that shape alone, on every fixture and a few usages: the table's rows and the plans shared
// between its entries must not mix shapes up.
func TestTableAnswersAsWorkedOut(t *testing.T) {
	dgx := topologytest.DGXH100().Node()
	usages := []Usage{{}, {GPUsInUse: 6}, {GPUsInUse: 1, Allocations: []Allocation{
		{Pod: "ns/a", Kind: KindVF, NIC: "0000:1a:00.0", Device: "0000:1a:00.2", GPUs: []string{dgx.GPUs[3].PCIAddress}}}}}
	weights := []Weights{DefaultWeights, {Whole: 1}, {Fit: 3, NIC: 1, GDR: 2}}
	for _, m := range topologytest.All() {
		node := m.Node()
		for _, u := range usages {
			for _, w := range weights {
				checkTable(t, node, Summarize(node, u, w))
			}
		}
	}
}

func checkTable(t *testing.T, node *topology.Node, s *Summary) {
	t.Helper()
	for _, mode := range []Mode{ModeAuto, ModePF, ModeVF, ModeNone} {
		for _, nics := range tableNICs {
			for _, gdr := range tableGDRs {
				for gpus := -1; gpus <= s.GPUsTotal+2; gpus++ {
					req := Request{GPUs: gpus, Mode: mode, NICs: nics, GDR: gdr}
					want := s.answerFor(req.normal(), nil)
					if got := s.answer(req); got != want {
						t.Fatalf("%s %+v: table %+v, worked out %+v", node.Name, req, got, want)
					}
					if fits, score := s.Lookup(ShapeOf(req)); fits != want.fits() || (fits && score != int(want.score)) {
						t.Fatalf("%s %+v: Lookup %v %d, worked out %+v", node.Name, req, fits, score, want)
					}
				}
			}
		}
	}
}
