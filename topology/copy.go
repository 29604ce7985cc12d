package topology

import "slices"

// DeepCopy returns a copy that shares nothing with n: caches copy topologies in and out.
func (n *Node) DeepCopy() *Node {
	if n == nil {
		return nil
	}
	c := *n
	c.NUMANodes = slices.Clone(n.NUMANodes)
	c.GPUs = slices.Clone(n.GPUs)
	for i := range c.GPUs {
		c.GPUs[i].Path = slices.Clone(n.GPUs[i].Path)
	}
	c.NICs = slices.Clone(n.NICs)
	for i := range c.NICs {
		c.NICs[i] = n.NICs[i].deepCopy()
	}
	c.Levels = n.Levels.clone()
	c.Rails = slices.Clone(n.Rails)
	for i := range c.Rails {
		c.Rails[i].GPUs = slices.Clone(n.Rails[i].GPUs)
	}
	return &c
}

func (n NIC) deepCopy() NIC {
	n.Path = slices.Clone(n.Path)
	if n.SRIOV != nil {
		s := *n.SRIOV
		s.VFs = slices.Clone(s.VFs)
		for i := range s.VFs {
			s.VFs[i].Path = slices.Clone(s.VFs[i].Path)
		}
		n.SRIOV = &s
	}
	return n
}

// WithoutPaths is a copy without the PCIe paths: the levels say what decisions need of them, and
// a node published thousands of times over is half its size without them.
func (n *Node) WithoutPaths() *Node {
	c := n.DeepCopy()
	for i := range c.GPUs {
		c.GPUs[i].Path = nil
	}
	for i := range c.NICs {
		c.NICs[i].Path = nil
		if s := c.NICs[i].SRIOV; s != nil {
			for j := range s.VFs {
				s.VFs[j].Path = nil
			}
		}
	}
	return c
}
