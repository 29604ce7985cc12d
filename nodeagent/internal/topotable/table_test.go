package topotable_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/topolane/topolane/nodeagent/internal/topotable"
	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/topologytest"
)

// TestRealNodeFacts: the RDMA netns mode heads the table; an InfiniBand NIC says so; an
// excluded NIC carries its reason in the legend, its VFs say they go with it, and a plain NIC
// its reason at the end of its line.
func TestRealNodeFacts(t *testing.T) {
	n := topologytest.NoGPU().Node()
	n.RDMANetnsMode = topology.RDMANetnsExclusive
	n.NICs[0].LinkLayer = topology.LinkLayerInfiniBand
	n.NICs[0].Excluded = "in --exclude-nics (enp1s0np0)"
	n.NICs[1].Excluded = "carries the default route; has the host address 10.0.0.5"
	var b bytes.Buffer
	if err := topotable.Write(&b, n, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Node cpu-node\n\nRDMA netns mode: exclusive (an RDMA device moves into its pod with its netdev)\n\n",
		"  NIC0:  mlx5_0      enp1s0np0    0000:01:00.0  PF, 4 of 8 VFs, InfiniBand; excluded: in --exclude-nics (enp1s0np0)\n",
		"  NIC1:  mlx5_0_vf0  enp1s0np0v0  0000:01:00.2  VF 0 of 0000:01:00.0; excluded with its PF\n",
		"  eno1  0000:02:00.0  igb  NUMA 0  10 Gb/s  excluded: carries the default route; has the host address 10.0.0.5\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
	n.RDMANetnsMode = topology.RDMANetnsShared
	b.Reset()
	_ = topotable.Write(&b, n, nil)
	if want := "Node cpu-node\n\nRDMA netns mode: shared (RDMA devices stay in the host namespace; every pod sees them all)\n\n"; !strings.HasPrefix(b.String(), want) {
		t.Errorf("shared mode: want the table to start with %q:\n%s", want, b.String())
	}
}
