package placement_test

import (
	"testing"

	"github.com/topolane/topolane/topology/placement"
	"github.com/topolane/topolane/topology/topologytest"
)

// BenchmarkCheckAndChoose is the per-node work of a filter plus a score on a kept summary:
// the extender repeats it for every candidate node.
func BenchmarkCheckAndChoose(b *testing.B) {
	dgx := topologytest.DGXH100().Node()
	s, err := placement.Summarize(dgx, placement.Usage{GPUsInUse: 2, Allocations: []placement.Allocation{
		{Pod: "ns/a", Kind: placement.KindVF, NIC: dgxNIC0, Device: dgxVF0}}})
	if err != nil {
		b.Fatal(err)
	}
	req := placement.Request{GPUs: 2, Mode: placement.ModeAuto}
	b.ReportAllocs()
	for b.Loop() {
		v := s.Check(req)
		if _, err := s.Choose(v.Need, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSummarize is the cost of folding a node's usage in, paid when a pod lands or leaves.
func BenchmarkSummarize(b *testing.B) {
	dgx := topologytest.DGXH100().Node()
	u := placement.Usage{GPUsInUse: 4, Allocations: allPFs(dgx, "ns/a")[4:]}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := placement.Summarize(dgx, u); err != nil {
			b.Fatal(err)
		}
	}
}
