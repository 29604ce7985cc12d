package gpu

import (
	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/topolane/topolane/topology"
)

// ancestorLevels maps NVML's common-ancestor answer to the nvidia-smi legend.
var ancestorLevels = map[nvml.GpuTopologyLevel]topology.Level{
	nvml.TOPOLOGY_INTERNAL:   topology.PIX, // two GPUs on one board
	nvml.TOPOLOGY_SINGLE:     topology.PIX,
	nvml.TOPOLOGY_MULTIPLE:   topology.PXB,
	nvml.TOPOLOGY_HOSTBRIDGE: topology.PHB,
	nvml.TOPOLOGY_NODE:       topology.NODE,
	nvml.TOPOLOGY_SYSTEM:     topology.SYS,
}

// connect fills GPU↔GPU levels: NVLink first (direct links, or links into a shared NVSwitch
// fabric as on a DGX), else the common PCIe ancestor. A pair NVML cannot answer for is left out,
// and the PCIe level from sysfs stands.
func (inv *Inventory) connect(devices []nvml.Device) {
	gpuAt := map[string]int{}
	for i, g := range inv.GPUs {
		gpuAt[g.PCIAddress] = i
		inv.Levels.Set(g.PCIAddress, g.PCIAddress, topology.Self)
	}
	direct, switchLinks := nvlinks(devices, gpuAt)
	for i := range devices {
		for j := i + 1; j < len(devices); j++ {
			a, b := inv.GPUs[i].PCIAddress, inv.GPUs[j].PCIAddress
			if l, ok := pairLevel(devices[i], devices[j], direct[[2]int{i, j}], min(switchLinks[i], switchLinks[j])); ok {
				inv.Levels.Set(a, b, l)
			}
		}
	}
}

func pairLevel(a, b nvml.Device, direct, viaSwitch int) (topology.Level, bool) {
	if direct > 0 {
		return topology.NV(direct), true
	}
	if viaSwitch > 0 {
		return topology.NV(viaSwitch), true
	}
	anc, ret := a.GetTopologyCommonAncestor(b)
	l, known := ancestorLevels[anc]
	return l, ret == nvml.SUCCESS && known
}

// nvlinks counts each GPU's active NVLinks: to another GPU (direct, by ordered pair) or to
// something else, an NVSwitch (switchLinks, by GPU).

func nvlinks(devices []nvml.Device, gpuAt map[string]int) (direct map[[2]int]int, switchLinks map[int]int) {
	direct, switchLinks = map[[2]int]int{}, map[int]int{}
	for i, d := range devices {
		for link := range nvml.NVLINK_MAX_LINKS {
			state, ret := d.GetNvLinkState(link)
			if ret != nvml.SUCCESS {
				break // no NVLink, or no more links on this GPU
			}
			if state != nvml.FEATURE_ENABLED {
				continue
			}
			remote, ret := d.GetNvLinkRemotePciInfo(link)
			addr, err := busID(remote)
			if ret != nvml.SUCCESS || err != nil {
				continue
			}
			j, isGPU := gpuAt[addr]
			switch {
			case !isGPU:
				switchLinks[i]++
			case j > i: // a GPU-GPU link is counted from its lower-index end only
				direct[[2]int{i, j}]++
			}
		}
	}
	return direct, switchLinks
}
