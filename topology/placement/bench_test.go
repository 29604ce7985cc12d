package placement_test

import (
	"testing"

	"github.com/topolane/topolane/topology/placement"
	"github.com/topolane/topolane/topology/topologytest"
)

// BenchmarkFitsAndScore is the per-node work of a filter plus a score on a kept summary: the
// extender repeats it for every candidate node.
func BenchmarkFitsAndScore(b *testing.B) {
	dgx := topologytest.DGXH100().Node()
	s := summarize(dgx, placement.Usage{GPUsInUse: 2, Allocations: []placement.Allocation{vf("ns/a", dgxNICs[0], dgxVF0, dgxGPUs[0])}})
	shape := placement.ShapeOf(auto(2))
	b.ReportAllocs()
	for b.Loop() {
		if fits, score := s.Lookup(shape); !fits || score == 0 {
			b.Fatal("the pod should fit")
		}
	}
}

// BenchmarkPlan is the bind's work: the devices for a pod on one node.
func BenchmarkPlan(b *testing.B) {
	dgx := topologytest.DGXH100().Node()
	s := summarize(dgx, placement.Usage{GPUsInUse: 2, Allocations: []placement.Allocation{vf("ns/a", dgxNICs[0], dgxVF0, dgxGPUs[0])}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Plan(auto(8), placement.NeedVF, nil); err == nil {
			b.Fatal("8 GPUs cannot be planned on 6 free")
		}
		if _, err := s.Plan(auto(2), placement.NeedVF, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSummarize is the cost of folding a node's usage in and answering every pod shape,
// paid when a pod lands or leaves.
func BenchmarkSummarize(b *testing.B) {
	dgx := topologytest.DGXH100().Node()
	var held []placement.Allocation
	for i := 4; i < 8; i++ {
		held = append(held, pf("ns/a", dgxNICs[i], dgxGPUs[i]))
	}
	u := placement.Usage{GPUsInUse: 4, Allocations: held}
	b.ReportAllocs()
	for b.Loop() {
		summarize(dgx, u)
	}
}
