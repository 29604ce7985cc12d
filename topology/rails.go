package topology

import (
	"cmp"
	"fmt"
	"slices"
)

// Rail is the NIC a group of GPUs drive NCCL traffic through: NCCL uses one NIC per GPU, and on
// a DGX-class node every GPU has a NIC under its own PCIe switch. Several GPUs may share a rail
// (a PCIe server with one NIC per socket).
type Rail struct {
	// Index numbers rails in the order of their first GPU, so that on a node with a NIC per GPU
	// rail i is GPU i's.
	Index int    `json:"index"`
	NIC   string `json:"nic"` // PCI address of the PF or plain NIC
	// GPUs are the rail's GPUs by PCI address, in PCI order.
	GPUs []string `json:"gpus"`
	// Pinned is set when an operator chose this NIC for these GPUs (--rails).
	Pinned bool `json:"pinned,omitempty"`
}

// Eligible reports whether topolane may hand the NIC to pods: it has RDMA and the node does not
// keep it for itself.
func (n *NIC) Eligible() bool { return n.RDMA() && n.Excluded == "" }

// RailOf returns the rail of the GPU with the PCI address, or nil when it has none.
func (n *Node) RailOf(gpu string) *Rail {
	for i := range n.Rails {
		if slices.Contains(n.Rails[i].GPUs, gpu) {
			return &n.Rails[i]
		}
	}
	return nil
}

// Rail returns the rail whose NIC has the PCI address, or nil.
func (n *Node) Rail(nic string) *Rail {
	for i := range n.Rails {
		if n.Rails[i].NIC == nic {
			return &n.Rails[i]
		}
	}
	return nil
}

// AssignRails gives every GPU its rail: the eligible NIC nearest to it. Where several are equally
// near, GPUs with fewer choices go first and each takes the nearest NIC carrying the fewest GPUs so
// far, in PCI order: four GPUs and two NICs under one switch get two each. pins (GPU PCI address
// → NIC PCI address) override the choice for the GPUs they name. Levels must be filled (Connect).
// A node without an eligible NIC has no rails.
func AssignRails(n *Node, pins map[string]string) error {
	n.Rails = nil
	nics := eligibleNICs(n)
	railOf := map[string]string{}
	for gpu, nic := range pins {
		if err := CheckPin(n, gpu, nic); err != nil {
			return err
		}
		railOf[gpu] = nic
	}
	if len(nics) > 0 {
		assignNearest(n, nics, railOf)
	}
	n.Rails = railsFrom(n, railOf, pins)
	return nil
}

func eligibleNICs(n *Node) []string {
	var out []string
	for i := range n.NICs {
		if n.NICs[i].Eligible() {
			out = append(out, n.NICs[i].PCIAddress)
		}
	}
	return out
}

// CheckPin says why a pin of a GPU to a NIC (PCI addresses) cannot be honoured, or nil.
func CheckPin(n *Node, gpu, nic string) error {
	if n.GPU(gpu) == nil {
		return fmt.Errorf("rail pin names GPU %s, which node %s does not have", gpu, n.Name)
	}
	switch x := n.NIC(nic); {
	case x == nil:
		return fmt.Errorf("rail pin gives GPU %s the NIC %s, which node %s does not have", gpu, nic, n.Name)
	case !x.RDMA():
		return fmt.Errorf("rail pin gives GPU %s the NIC %s, which has no RDMA device", gpu, nic)
	case x.Excluded != "":
		return fmt.Errorf("rail pin gives GPU %s the NIC %s, which is excluded: %s", gpu, nic, x.Excluded)
	}
	return nil
}

// assignNearest fills railOf for every GPU not yet in it.
func assignNearest(n *Node, nics []string, railOf map[string]string) {
	type choice struct {
		gpu     string
		nearest []string
	}
	load := map[string]int{}
	for _, nic := range railOf {
		load[nic]++
	}
	var todo []choice
	for _, g := range n.GPUs {
		if _, pinned := railOf[g.PCIAddress]; !pinned {
			todo = append(todo, choice{g.PCIAddress, nearestNICs(n, g.PCIAddress, nics)})
		}
	}
	slices.SortStableFunc(todo, func(a, b choice) int { return cmp.Compare(len(a.nearest), len(b.nearest)) })
	for _, c := range todo {
		best := c.nearest[0]
		for _, nic := range c.nearest[1:] {
			if load[nic] < load[best] {
				best = nic
			}
		}
		railOf[c.gpu] = best
		load[best]++
	}
}

// nearestNICs returns the NICs at the GPU's nearest level, in PCI order (nics is).
func nearestNICs(n *Node, gpu string, nics []string) []string {
	var out []string
	best := Unknown
	for _, nic := range nics {
		switch l := n.Level(gpu, nic); {
		case len(out) == 0 || l.Nearer(best):
			out, best = []string{nic}, l
		case l.Rank() == best.Rank():
			out = append(out, nic)
		}
	}
	return out
}

// railsFrom groups GPUs by NIC and numbers the rails by their first GPU.
func railsFrom(n *Node, railOf map[string]string, pins map[string]string) []Rail {
	var rails []Rail
	byNIC := map[string]int{}
	for _, g := range n.GPUs { // PCI order
		nic, ok := railOf[g.PCIAddress]
		if !ok {
			continue
		}
		i, seen := byNIC[nic]
		if !seen {
			i = len(rails)
			byNIC[nic] = i
			rails = append(rails, Rail{Index: i, NIC: nic})
		}
		rails[i].GPUs = append(rails[i].GPUs, g.PCIAddress)
		if _, pinned := pins[g.PCIAddress]; pinned {
			rails[i].Pinned = true
		}
	}
	return rails
}
