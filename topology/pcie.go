package topology

// Connect computes Levels for every pair of GPUs and NICs from their PCIe paths and NUMA nodes,
// replacing what was there; a VF shares its PF's. Callers that know better for GPU pairs (NVML:
// NVLink and the driver's own view) overwrite those entries afterwards.
func Connect(n *Node) {
	eps := n.endpoints()
	n.Levels = Levels{index: make(map[string]int, len(eps)), cells: make([]int16, len(eps)*len(eps))}
	for i, a := range eps {
		n.Levels.index[a.addr] = i
	}
	for i, a := range eps {
		n.Levels.Set(a.addr, a.addr, Self)
		for _, b := range eps[i+1:] {
			n.Levels.Set(a.addr, b.addr, n.pcieLevel(a, b))
		}
	}
	for _, nic := range n.NICs {
		if nic.SRIOV != nil {
			for _, vf := range nic.SRIOV.VFs {
				n.Levels.SetVF(vf.PCIAddress, nic.PCIAddress)
			}
		}
	}
}

type endpoint struct {
	addr string
	path PCIePath
	numa int
}

// endpoints lists the GPUs and NICs of the node, the devices the matrix is made of.
func (n *Node) endpoints() []endpoint {
	var eps []endpoint
	for _, g := range n.GPUs {
		eps = append(eps, endpoint{g.PCIAddress, g.Path, g.NUMANode})
	}
	for _, nic := range n.NICs {
		eps = append(eps, endpoint{nic.PCIAddress, nic.Path, nic.NUMANode})
	}
	return eps
}

// pcieLevel applies the legend of `nvidia-smi topo -m` to two positions on the PCIe tree.
func (n *Node) pcieLevel(a, b endpoint) Level {
	if len(a.path) < 2 || len(b.path) < 2 {
		return Unknown
	}
	if a.path[0] != b.path[0] {
		if n.sameNUMA(a.numa, b.numa) {
			return NODE
		}
		return SYS
	}
	common := commonPrefix(a.path, b.path)
	if common < 2 {
		return PHB // only the host bridge is shared: different root ports
	}
	if sameDevice(a.addr, b.addr) {
		return PIX
	}
	units := bridgeUnits(a.path, common)
	for u := range bridgeUnits(b.path, common) {
		units[u] = true
	}
	if len(units) <= 1 {
		return PIX
	}
	return PXB
}

// sameNUMA reports whether two NUMA ids are one node. An unknown id (-1) matches on a node with
// at most one NUMA node; with several it cannot be placed, so it is taken as another node.
func (n *Node) sameNUMA(a, b int) bool {
	if a == NoNUMA || b == NoNUMA {
		return n.singleNUMA()
	}
	return a == b
}

func commonPrefix(a, b PCIePath) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// bridgeUnits returns the bridges a route from the last common function down to the device
// crosses, grouped so that a PCIe switch (an upstream port and its downstream ports) counts
// once. Below a root port the bridge functions alternate upstream port (even depth) and
// downstream port (odd depth); a downstream port belongs to the switch of its parent.
func bridgeUnits(p PCIePath, common int) map[string]bool {
	units := map[string]bool{}
	for depth := common - 1; depth < len(p)-1; depth++ {
		unit := p[depth]
		if depth >= 3 && depth%2 == 1 {
			unit = p[depth-1]
		}
		units[unit] = true
	}
	return units
}
