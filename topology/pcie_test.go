package topology_test

import (
	"testing"

	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/topologytest"
)

func TestConnectLevels(t *testing.T) {
	tests := []struct {
		machine topologytest.Machine
		a, b    string
		want    topology.Level
	}{
		// DGX H100: GPU and its NIC on two downstream ports of one switch.
		{topologytest.DGXH100(), "0000:1b:00.0", "0000:1a:00.0", topology.PIX},
		{topologytest.DGXH100(), "0000:1b:00.0", "0000:1a:00.2", topology.PIX}, // a VF of that NIC
		{topologytest.DGXH100(), "0000:1a:00.0", "0000:1a:00.3", topology.PIX}, // PF and its VF
		{topologytest.DGXH100(), "0000:1b:00.0", "0000:43:00.0", topology.NODE},
		{topologytest.DGXH100(), "0000:1b:00.0", "0000:60:00.0", topology.NODE},
		{topologytest.DGXH100(), "0000:1b:00.0", "0000:9c:00.0", topology.SYS},
		{topologytest.DGXH100(), "0000:1b:00.0", "0000:1b:00.0", topology.Self},
		// Two-socket PCIe server: every device on its own root port.
		{topologytest.PCIeServer(), "0000:17:00.0", "0000:18:00.0", topology.PHB},
		{topologytest.PCIeServer(), "0000:18:00.0", "0000:18:00.1", topology.PIX}, // two ports of one NIC
		{topologytest.PCIeServer(), "0000:31:00.0", "0000:18:00.1", topology.NODE},
		{topologytest.PCIeServer(), "0000:b1:00.0", "0000:18:00.0", topology.SYS},
		{topologytest.PCIeServer(), "0000:b1:00.0", "0000:b2:00.1", topology.PHB},
		// Cascaded switches, numa_node -1 on a one-node machine.
		{topologytest.SingleSocket(), "0000:05:00.0", "0000:06:00.0", topology.PIX},
		{topologytest.SingleSocket(), "0000:05:00.0", "0000:07:00.0", topology.PXB},
		{topologytest.SingleSocket(), "0000:05:00.0", "0000:0a:00.0", topology.PXB},
		{topologytest.SingleSocket(), "0000:0b:00.0", "0000:07:00.0", topology.PXB},
		{topologytest.NoSRIOV(), "0000:43:00.0", "0000:45:00.0", topology.PIX},
	}
	for _, tt := range tests {
		n := tt.machine.Node()
		if got := n.Level(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: level(%s, %s) = %v, want %v", tt.machine.Name, tt.a, tt.b, got, tt.want)
		}
		if got := n.Level(tt.b, tt.a); got != tt.want {
			t.Errorf("%s: level(%s, %s) = %v, want %v (asymmetric)", tt.machine.Name, tt.b, tt.a, got, tt.want)
		}
	}
}

func TestConnectUnknownNUMA(t *testing.T) {
	n := &topology.Node{NUMANodes: []int{0, 1},
		GPUs: []topology.GPU{{PCIAddress: "0000:01:00.0", NUMANode: topology.NoNUMA, Path: topology.PCIePath{"pci0000:00", "0000:00:01.0", "0000:01:00.0"}}},
		NICs: []topology.NIC{
			{PCIAddress: "0000:81:00.0", NUMANode: 0, Path: topology.PCIePath{"pci0000:80", "0000:80:01.0", "0000:81:00.0"}},
			{PCIAddress: "0000:91:00.0", NUMANode: 0}, // no path known
		}}
	topology.Connect(n)
	if got := n.Level("0000:01:00.0", "0000:81:00.0"); got != topology.SYS {
		t.Errorf("unknown NUMA on a two-node machine: got %v, want SYS (cannot prove same node)", got)
	}
	if got := n.Level("0000:01:00.0", "0000:91:00.0"); got != topology.Unknown {
		t.Errorf("device without a PCIe path: got %v, want Unknown", got)
	}
	n.NUMANodes = []int{0}
	topology.Connect(n)
	if got := n.Level("0000:01:00.0", "0000:81:00.0"); got != topology.NODE {
		t.Errorf("unknown NUMA on a one-node machine: got %v, want NODE", got)
	}
}
