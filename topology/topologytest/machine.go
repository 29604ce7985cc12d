// Package topologytest describes whole servers as PCIe trees, for tests and benchmarks. One
// description gives both the topology.Node that discovery should find (Machine.Node) and, through
// nodeagent's sysfstest, the sysfs tree discovery reads it from.
package topologytest

import (
	"fmt"

	"github.com/topolane/topolane/topology"
)

// Machine is a server: its NUMA nodes and the PCIe tree under each host bridge.
type Machine struct {
	Name string
	// NUMANodes is how many NUMA nodes sys/devices/system/node shows.
	NUMANodes int
	Roots     []Root
}

// Root is one PCIe host bridge ("pci0000:17") and the functions on its root bus.
type Root struct {
	Bus  string // domain:bus, "0000:17"
	NUMA int    // numa_node of every function below; topology.NoNUMA when the platform is silent
	Fns  []Fn
}

// Kind says what a PCI function is.
type Kind int

const (
	KindBridge Kind = iota
	KindGPU
	KindAudio    // a GPU's HDMI audio function: NVIDIA vendor, but not a GPU
	KindNVSwitch // NVIDIA vendor, bridge class: not a GPU either
	KindNIC
)

// Fn is one PCI function and, for a bridge, what hangs below it.
type Fn struct {
	Addr     string
	Kind     Kind
	Vendor   uint16
	Device   uint16
	Class    uint32
	Driver   string
	Children []Fn

	// NICs only.
	Netdev    string
	RDMA      string
	SpeedMbps int
	TotalVFs  int // 0: no SR-IOV capability
	NumVFs    int
}

// LinkLayer is what a NIC's class says its ports speak: InfiniBand for 0x0207, else Ethernet.
func (f Fn) LinkLayer() string {
	if f.Class>>8 == ClassInfiniBand>>8 {
		return topology.LinkLayerInfiniBand
	}
	return topology.LinkLayerEthernet
}

// HostBridge is the sysfs name of the root's host bridge.
func (r Root) HostBridge() string { return "pci" + r.Bus }

// VF is one virtual function generated for a PF.
type VF struct {
	Index  int
	Addr   string
	Netdev string
	RDMA   string
}

// VFs returns the PF's virtual functions as the kernel lays out ConnectX VFs: routing IDs
// following the PF's (offset 2, stride 1) on the same bus, netdevs named after the PF.
func (f Fn) VFs() []VF {
	var bus, dev, fn, domain int
	if _, err := fmt.Sscanf(f.Addr, "%x:%x:%x.%x", &domain, &bus, &dev, &fn); err != nil {
		panic(fmt.Sprintf("topologytest: bad address %q", f.Addr))
	}
	vfs := make([]VF, f.NumVFs)
	for i := range vfs {
		rid := bus<<8 | dev<<3 | fn + 2 + i
		vfs[i] = VF{
			Index:  i,
			Addr:   fmt.Sprintf("%04x:%02x:%02x.%x", domain, rid>>8, rid>>3&0x1f, rid&7),
			Netdev: fmt.Sprintf("%sv%d", f.Netdev, i),
		}
		if f.RDMA != "" {
			vfs[i].RDMA = fmt.Sprintf("%s_vf%d", f.RDMA, i)
		}
	}
	return vfs
}

// Walk calls visit for every function, depth first, with its PCIe path and NUMA node.
func (m Machine) Walk(visit func(f Fn, path topology.PCIePath, numa int)) {
	var walk func(fns []Fn, parent topology.PCIePath, numa int)
	walk = func(fns []Fn, parent topology.PCIePath, numa int) {
		for _, f := range fns {
			path := append(parent[:len(parent):len(parent)], f.Addr)
			visit(f, path, numa)
			walk(f.Children, path, numa)
		}
	}
	for _, r := range m.Roots {
		walk(r.Fns, topology.PCIePath{r.HostBridge()}, r.NUMA)
	}
}

// Node returns the topology that discovery from sysfs alone (no NVML, no PCI name database)
// should find on this machine.
func (m Machine) Node() *topology.Node {
	n := &topology.Node{Name: m.Name, GPUs: []topology.GPU{}, NICs: []topology.NIC{}}
	for i := range m.NUMANodes {
		n.NUMANodes = append(n.NUMANodes, i)
	}
	m.Walk(func(f Fn, path topology.PCIePath, numa int) {
		switch f.Kind {
		case KindGPU:
			n.GPUs = append(n.GPUs, topology.GPU{PCIAddress: f.Addr, NUMANode: numa, Path: path})
		case KindNIC:
			n.NICs = append(n.NICs, f.nic(path, numa))
		}
	})
	n.Sort()
	topology.Connect(n)
	if err := topology.AssignRails(n, nil); err != nil {
		panic(err) // no pins: cannot fail
	}
	return n
}

func (f Fn) nic(path topology.PCIePath, numa int) topology.NIC {
	nic := topology.NIC{
		Name: f.Netdev, PCIAddress: f.Addr, NUMANode: numa, Driver: f.Driver,
		SpeedMbps: f.SpeedMbps, RDMADevice: f.RDMA, Path: path, LinkLayer: f.LinkLayer(),
	}
	if f.TotalVFs > 0 {
		nic.SRIOV = &topology.SRIOV{TotalVFs: f.TotalVFs, NumVFs: f.NumVFs}
		for _, vf := range f.VFs() {
			nic.SRIOV.VFs = append(nic.SRIOV.VFs, topology.VF{
				Index: vf.Index, PCIAddress: vf.Addr, Name: vf.Netdev, Driver: f.Driver,
				RDMADevice: vf.RDMA, Path: append(path[:len(path)-1:len(path)-1], vf.Addr),
			})
		}
	}
	return nic
}
