// Package topology is the shared model of a GPU node: its GPUs, its NICs with their SR-IOV
// virtual functions, where each sits on the PCIe tree, and how near every pair is.
// It is pure data and pure functions; discovery and publishing live elsewhere.
package topology

import "slices"

// NoNUMA is the NUMA node of a device whose platform did not say (sysfs numa_node -1).
const NoNUMA = -1

// Node is the topology of one Kubernetes node.
type Node struct {
	Name string `json:"name"`
	// NUMANodes lists the node's NUMA node ids; empty when the platform exposes none.
	NUMANodes []int `json:"numaNodes,omitempty"`
	GPUs      []GPU `json:"gpus"`
	// NICs are physical network functions: SR-IOV PFs and plain NICs. VFs hang below their PF.
	NICs []NIC `json:"nics"`
	// Levels holds the connection of every pair of GPUs, NICs and VFs, by PCI address. Fill it
	// with Connect.
	Levels Levels `json:"levels,omitzero"`
	// Rails give each GPU the NIC it drives (AssignRails); empty without an eligible NIC.
	Rails []Rail `json:"rails,omitempty"`
	// RDMANetnsMode is the RDMA subsystem's network namespace mode (`rdma system`):
	// RDMANetnsShared or RDMANetnsExclusive; empty when unknown (no RDMA subsystem, or a fixture).
	RDMANetnsMode string `json:"rdmaNetnsMode,omitempty"`
}

// RDMA network namespace modes. In shared mode every namespace sees every RDMA device; in
// exclusive mode an RDMA device belongs to one namespace and must move into a pod with its netdev.
const (
	RDMANetnsShared    = "shared"
	RDMANetnsExclusive = "exclusive"
)

// Link layers of a NIC: what its ports speak.
const (
	LinkLayerEthernet   = "ethernet"
	LinkLayerInfiniBand = "infiniband"
)

// PCIePath is where a PCI function sits: the host bridge ("pci0000:17") followed by every PCI
// function from the root port down to the function itself, as in its canonical sysfs path.
type PCIePath []string

// GPU is one NVIDIA GPU.
type GPU struct {
	// Index numbers GPUs by increasing PCI address, as nvidia-smi does.
	Index       int      `json:"index"`
	UUID        string   `json:"uuid,omitempty"`
	Model       string   `json:"model,omitempty"`
	PCIAddress  string   `json:"pciAddress"`
	NUMANode    int      `json:"numaNode"`
	MemoryBytes uint64   `json:"memoryBytes,omitempty"`
	Path        PCIePath `json:"pciePath,omitempty"`
}

// NIC is a physical network function: an SR-IOV PF or a NIC without SR-IOV.
type NIC struct {
	Name       string   `json:"name,omitempty"` // netdev name in the host namespace
	PCIAddress string   `json:"pciAddress"`
	Model      string   `json:"model,omitempty"`
	NUMANode   int      `json:"numaNode"`
	Driver     string   `json:"driver,omitempty"`
	SpeedMbps  int      `json:"speedMbps,omitempty"`
	RDMADevice string   `json:"rdmaDevice,omitempty"`
	Path       PCIePath `json:"pciePath,omitempty"`
	// SRIOV is nil when the function cannot create VFs.
	SRIOV *SRIOV `json:"sriov,omitempty"`
	// LinkLayer is LinkLayerEthernet or LinkLayerInfiniBand (PCI class 0x0207, or the RDMA
	// port's link_layer); its VFs share it. Empty for other network controllers.
	LinkLayer string `json:"linkLayer,omitempty"`
	// Excluded is why the NIC, its VFs and macvlans on it are never handed out, as a person reads
	// it ("carries the default route", "not in --nics"); empty for a candidate.
	Excluded string `json:"excluded,omitempty"`
}

// SRIOV describes a PF's virtual functions.
type SRIOV struct {
	TotalVFs int  `json:"totalVFs"`
	NumVFs   int  `json:"numVFs"`
	VFs      []VF `json:"vfs,omitempty"`
}

// VF is one virtual function of a PF.
type VF struct {
	Index      int      `json:"index"`
	PCIAddress string   `json:"pciAddress"`
	Name       string   `json:"name,omitempty"` // empty when not bound to a netdev driver
	Driver     string   `json:"driver,omitempty"`
	RDMADevice string   `json:"rdmaDevice,omitempty"`
	Path       PCIePath `json:"pciePath,omitempty"`
}

// Virtualised reports whether the NIC has VFs configured (the patent's "virtualisation
// marker"): its shares are VFs. A NIC that is not virtualised is shared through macvlan.
func (n *NIC) Virtualised() bool { return n.SRIOV != nil && n.SRIOV.NumVFs > 0 }

// RDMA reports whether NCCL can use the NIC for RDMA, which is what makes it a candidate for
// pods: a NIC without RDMA (the node's management port, a virtio NIC) is never handed out.
func (n *NIC) RDMA() bool { return n.RDMADevice != "" }

// GPU returns the GPU with the PCI address or UUID, or nil.
func (n *Node) GPU(id string) *GPU {
	for i := range n.GPUs {
		if n.GPUs[i].PCIAddress == id || n.GPUs[i].UUID == id {
			return &n.GPUs[i]
		}
	}
	return nil
}

// NIC returns the NIC with the PCI address, or nil.
func (n *Node) NIC(addr string) *NIC {
	for i := range n.NICs {
		if n.NICs[i].PCIAddress == addr {
			return &n.NICs[i]
		}
	}
	return nil
}

// Level returns the connection between two devices by PCI address (Unknown if not recorded).
func (n *Node) Level(a, b string) Level { return n.Levels.Get(a, b) }

// singleNUMA reports whether the node has at most one NUMA node, so that a device whose
// platform did not say its NUMA node is still known to share it with every other device.
func (n *Node) singleNUMA() bool { return len(n.NUMANodes) <= 1 }

// Sort puts GPUs and NICs in PCI address order and renumbers the GPUs to match.
func (n *Node) Sort() {
	slices.SortFunc(n.GPUs, func(a, b GPU) int { return compareAddr(a.PCIAddress, b.PCIAddress) })
	for i := range n.GPUs {
		n.GPUs[i].Index = i
	}
	slices.SortFunc(n.NICs, func(a, b NIC) int { return compareAddr(a.PCIAddress, b.PCIAddress) })
	for i := range n.NICs {
		if s := n.NICs[i].SRIOV; s != nil {
			slices.SortFunc(s.VFs, func(a, b VF) int { return a.Index - b.Index })
		}
	}
}
