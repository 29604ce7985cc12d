package discovery_test

import (
	"testing"

	"github.com/topolane/topolane/topology/topologytest"
)

// BenchmarkDiscoverDGX measures one full discovery of the DGX H100 fixture (62 PCI functions)
// from a sysfs tree on disk: the agent's cost per re-discovery period.
func BenchmarkDiscoverDGX(b *testing.B) {
	root := writeMachine(b, topologytest.DGXH100())
	b.ReportAllocs()
	for b.Loop() {
		discover(b, root, "dgx")
	}
}
