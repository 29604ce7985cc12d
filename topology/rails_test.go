package topology_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/topologytest"
)

// railMap is a node's rails as GPU → NIC, the way a person checks them.
func railMap(n *topology.Node) map[string]string {
	out := map[string]string{}
	for _, r := range n.Rails {
		for _, g := range r.GPUs {
			out[g] = r.NIC
		}
	}
	return out
}

// fourGPUsTwoNICs has one PCIe switch with four GPUs and two RDMA NICs below it: every GPU is
// PIX to both NICs.
func fourGPUsTwoNICs() topologytest.Machine {
	tt := topologytest.H100
	cx := func(addr, dev, rdma string) topologytest.Fn {
		return topologytest.ConnectX(addr, dev, rdma, 400000, 0, 0)
	}
	sw := topologytest.Switch("0000:11:00.0", "0000:12",
		topologytest.Under(tt("0000:13:00.0")), topologytest.Under(tt("0000:14:00.0")),
		topologytest.Under(cx("0000:15:00.0", "enp21s0np0", "mlx5_0")),
		topologytest.Under(tt("0000:16:00.0")), topologytest.Under(tt("0000:17:00.0")),
		topologytest.Under(cx("0000:18:00.0", "enp24s0np0", "mlx5_1")))
	return topologytest.Machine{Name: "switch", NUMANodes: 1, Roots: []topologytest.Root{
		{Bus: "0000:10", NUMA: 0, Fns: []topologytest.Fn{topologytest.Bridge("0000:10:01.0", sw)}}}}
}

// oneNICPerSocket is the PCIe server with each NIC's second port kept by the host.
func oneNICPerSocket() *topology.Node {
	n := topologytest.PCIeServer().Node()
	n.NIC("0000:18:00.1").Excluded = "carries the default route"
	n.NIC("0000:b2:00.1").Excluded = "member of bond0"
	if err := topology.AssignRails(n, nil); err != nil {
		panic(err)
	}
	return n
}

func TestAssignRails(t *testing.T) {
	noRDMA := topologytest.DGXH100().Node()
	for i := range noRDMA.NICs {
		noRDMA.NICs[i].RDMADevice = ""
	}
	if err := topology.AssignRails(noRDMA, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		node *topology.Node
		want map[string]string
	}{
		{"DGX H100: every GPU the NIC under its own switch", topologytest.DGXH100().Node(), map[string]string{
			"0000:1b:00.0": "0000:1a:00.0", "0000:43:00.0": "0000:42:00.0", "0000:52:00.0": "0000:51:00.0", "0000:61:00.0": "0000:60:00.0",
			"0000:9d:00.0": "0000:9c:00.0", "0000:c3:00.0": "0000:c2:00.0", "0000:d1:00.0": "0000:d0:00.0", "0000:df:00.0": "0000:de:00.0"}},
		{"PCIe server: the two ports of a socket's NIC share its GPUs", topologytest.PCIeServer().Node(), map[string]string{
			"0000:17:00.0": "0000:18:00.0", "0000:31:00.0": "0000:18:00.1", "0000:b1:00.0": "0000:b2:00.0", "0000:cb:00.0": "0000:b2:00.1"}},
		{"one NIC per socket: two GPUs per rail", oneNICPerSocket(), map[string]string{
			"0000:17:00.0": "0000:18:00.0", "0000:31:00.0": "0000:18:00.0", "0000:b1:00.0": "0000:b2:00.0", "0000:cb:00.0": "0000:b2:00.0"}},
		{"four GPUs and two NICs under one switch: two each", fourGPUsTwoNICs().Node(), map[string]string{
			"0000:13:00.0": "0000:15:00.0", "0000:14:00.0": "0000:18:00.0", "0000:16:00.0": "0000:15:00.0", "0000:17:00.0": "0000:18:00.0"}},
		{"one NIC for four GPUs behind cascaded switches", topologytest.SingleSocket().Node(), map[string]string{
			"0000:05:00.0": "0000:07:00.0", "0000:06:00.0": "0000:07:00.0", "0000:0a:00.0": "0000:07:00.0", "0000:0b:00.0": "0000:07:00.0"}},
		{"no GPUs: no rails", topologytest.NoGPU().Node(), map[string]string{}},
		{"no RDMA NIC: no GPU has a rail", noRDMA, map[string]string{}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, railMap(tt.node)); diff != "" {
			t.Errorf("%s: rails (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestRailsNumberedByFirstGPU(t *testing.T) {
	n := topologytest.DGXH100().Node()
	for i, r := range n.Rails {
		if r.Index != i || r.GPUs[0] != n.GPUs[i].PCIAddress {
			t.Errorf("rail %d = %+v: want index %d, first GPU %s", i, r, i, n.GPUs[i].PCIAddress)
		}
	}
	if got := n.RailOf("0000:52:00.0"); got == nil || got.Index != 2 {
		t.Errorf("RailOf(GPU2) = %+v, want rail 2", got)
	}
	if n.Rail("0000:51:00.0") != n.RailOf("0000:52:00.0") {
		t.Error("Rail(NIC2) is not GPU2's rail")
	}
}

// TestFewerChoicesFirst: a GPU that can reach one NIC takes it before a GPU that could take
// either, so that the two end up on different NICs (in PCI order GPU0 would take A first).
func TestFewerChoicesFirst(t *testing.T) {
	const g0, g1, a, b = "0000:01:00.0", "0000:02:00.0", "0000:03:00.0", "0000:04:00.0"
	n := &topology.Node{Name: "hand-made", GPUs: []topology.GPU{{PCIAddress: g0}, {PCIAddress: g1}},
		NICs: []topology.NIC{{PCIAddress: a, RDMADevice: "mlx5_0"}, {PCIAddress: b, RDMADevice: "mlx5_1"}}}
	n.Levels.Set(g0, a, topology.PHB)
	n.Levels.Set(g0, b, topology.PHB)
	n.Levels.Set(g1, a, topology.PHB)
	n.Levels.Set(g1, b, topology.SYS)
	if err := topology.AssignRails(n, nil); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{g0: b, g1: a}, railMap(n)); diff != "" {
		t.Errorf("rails (-want +got):\n%s", diff)
	}
	if n.Rails[0].NIC != b || n.Rails[1].NIC != a {
		t.Errorf("rails %+v: want numbered by their first GPU (GPU0's rail first)", n.Rails)
	}
}

func TestPinnedRails(t *testing.T) {
	n := topologytest.DGXH100().Node()
	err := topology.AssignRails(n, map[string]string{"0000:1b:00.0": "0000:42:00.0"})
	if err != nil {
		t.Fatal(err)
	}
	got := railMap(n)
	if got["0000:1b:00.0"] != "0000:42:00.0" || got["0000:43:00.0"] != "0000:42:00.0" {
		t.Errorf("pinned GPU0 to NIC1: rails = %v", got)
	}
	if r := n.Rail("0000:42:00.0"); r == nil || !r.Pinned || len(r.GPUs) != 2 {
		t.Errorf("NIC1's rail = %+v: want pinned, GPU0 and GPU1", r)
	}
	if n.Rail("0000:1a:00.0") != nil {
		t.Error("NIC0 kept a rail although its only GPU was pinned elsewhere")
	}

	mgmt := topologytest.DGXH100().Node()
	mgmt.NIC("0000:42:00.0").Excluded = "holds 10.0.0.5, the Node's InternalIP"
	for _, tt := range []struct {
		name    string
		node    *topology.Node
		pins    map[string]string
		wantErr string
	}{
		{"unknown GPU", topologytest.DGXH100().Node(), map[string]string{"0000:ff:00.0": "0000:1a:00.0"}, "GPU 0000:ff:00.0, which node dgx-h100 does not have"},
		{"unknown NIC", topologytest.DGXH100().Node(), map[string]string{"0000:1b:00.0": "0000:ff:00.0"}, "NIC 0000:ff:00.0, which node dgx-h100 does not have"},
		{"NIC without RDMA", topologytest.DGXH100().Node(), map[string]string{"0000:1b:00.0": "0000:0c:00.0"}, "has no RDMA device"},
		{"excluded NIC", mgmt, map[string]string{"0000:1b:00.0": "0000:42:00.0"}, "excluded: holds 10.0.0.5"},
	} {
		err := topology.AssignRails(tt.node, tt.pins)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.wantErr)
		}
	}
}
