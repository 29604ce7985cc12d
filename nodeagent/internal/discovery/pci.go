package discovery

import (
	"errors"
	"fmt"

	"github.com/topolane/topolane/nodeagent/internal/sysfs"
	"github.com/topolane/topolane/topology"
)

const vendorNVIDIA = 0x10de

// isGPU: an NVIDIA display (0x0300) or 3D (0x0302) controller; not the GPU's HDMI audio
// function, not an NVSwitch (a bridge).
func isGPU(f sysfs.Function) bool {
	sub := f.Class >> 8
	return f.Vendor == vendorNVIDIA && (sub == 0x0300 || sub == 0x0302)
}

// isNIC: any network controller (Ethernet 0x0200, InfiniBand 0x0207, ...).
func isNIC(f sysfs.Function) bool { return f.Class>>16 == 0x02 }

// pci turns PCI functions into the node's GPUs and NICs.
type pci struct {
	paths     sysfs.Paths
	scanned   []sysfs.Function          // in PCI address order
	functions map[string]sysfs.Function // the same, by address
	result    *Result
	claimed   map[string]bool // VFs found through their PF
}

func (p *pci) collect() {
	p.claimed = map[string]bool{}
	p.functions = make(map[string]sysfs.Function, len(p.scanned))
	for _, f := range p.scanned {
		p.functions[f.Address] = f
	}
	var vfs []string
	for _, f := range p.scanned {
		a := f.Address
		switch {
		case isGPU(f):
			p.result.Node.GPUs = append(p.result.Node.GPUs, topology.GPU{PCIAddress: a, Model: f.Product, NUMANode: f.NUMANode, Path: f.Path})
		case !isNIC(f):
		case p.isVF(a):
			vfs = append(vfs, a)
		default:
			p.result.Node.NICs = append(p.result.Node.NICs, p.nic(f))
		}
	}
	for _, vf := range vfs {
		if !p.claimed[vf] {
			pf, _ := p.paths.PhysFn(vf)
			p.result.warn("VF %s is left out: its PF %s (%s) is not a NIC this node shows", vf, pf, p.paths.PCIDevice(vf, "physfn"))
		}
	}
}

func (p *pci) isVF(addr string) bool {
	pf, err := p.paths.PhysFn(addr)
	if err != nil {
		p.result.warn("%v", err)
	}
	return pf != "" || err != nil
}

func (p *pci) nic(f sysfs.Function) topology.NIC {
	nic := topology.NIC{PCIAddress: f.Address, Model: f.Product, NUMANode: f.NUMANode, Driver: f.Driver, Path: f.Path}
	nic.Name, nic.RDMADevice = p.names(f.Address)
	nic.LinkLayer = p.linkLayer(f, nic.RDMADevice)
	if nic.Name != "" {
		nic.SpeedMbps = p.paths.SpeedMbps(f.Address, nic.Name)
	}
	sriov, err := p.paths.ReadSRIOV(f.Address)
	if err != nil {
		p.result.warn("NIC %s: %v; treating it as a NIC without SR-IOV", f.Address, err)
		return nic
	}
	if sriov != nil {
		nic.SRIOV = p.sriov(f.Address, sriov)
	}
	return nic
}

// linkLayer is what the RDMA device's port says its link layer is, else what the PCI class
// says (a ConnectX in InfiniBand mode is class 0x0207).
func (p *pci) linkLayer(f sysfs.Function, rdma string) string {
	if rdma != "" {
		ll, err := p.paths.RDMALinkLayer(f.Address, rdma)
		if err != nil {
			p.result.warn("NIC %s: %v; taking the link layer from its PCI class", f.Address, err)
		}
		if ll != "" {
			return ll
		}
	}
	switch f.Class >> 8 {
	case classInfiniBand:
		return topology.LinkLayerInfiniBand
	case classEthernet:
		return topology.LinkLayerEthernet
	}
	return ""
}

const (
	classEthernet   = 0x0200
	classInfiniBand = 0x0207
)

// names returns the netdev of a function, as the attacher finds it (sysfs.NetDev), and its
// RDMA device (the first, if several). A function whose netdev is elsewhere has none.
func (p *pci) names(addr string) (netdev, rdma string) {
	netdev, err := p.paths.NetDev(addr)
	if err != nil && !errors.Is(err, sysfs.ErrNoNetdev) {
		p.result.warn("%v", err)
	}
	if devs, err := p.paths.RDMADevices(addr); err != nil {
		p.result.warn("%v", err)
	} else if len(devs) > 0 {
		rdma = devs[0]
	}
	return netdev, rdma
}

func (p *pci) sriov(pf string, s *sysfs.SRIOV) *topology.SRIOV {
	out := &topology.SRIOV{TotalVFs: s.TotalVFs, NumVFs: s.NumVFs}
	found := 0
	for idx, addr := range s.VFs {
		f, ok := p.functions[addr]
		if !ok {
			p.result.warn("VF %d of %s is left out: %s points to %s, which is not a PCI function here",
				idx, pf, p.paths.PCIDevice(pf, fmt.Sprintf("virtfn%d", idx)), addr)
			continue
		}
		p.claimed[addr] = true
		found++
		if sysfs.NoNetdevDriver(f.Driver) {
			p.result.note("VF %d of %s (%s) is left out: %s, it has no netdev to move into a pod", idx, pf, addr, boundTo(f.Driver))
			continue
		}
		vf := topology.VF{Index: idx, PCIAddress: addr, Driver: f.Driver, Path: f.Path}
		vf.Name, vf.RDMADevice = p.names(addr)
		out.VFs = append(out.VFs, vf)
	}
	if found != s.NumVFs {
		p.result.warn("NIC %s: sriov_numvfs says %d VFs, %d were found", pf, s.NumVFs, found)
	}
	return out
}

func boundTo(driver string) string {
	if driver == "" {
		return "bound to no driver"
	}
	return "bound to " + driver
}
