package placement

import (
	"cmp"
	"fmt"

	"github.com/topolane/topolane/topology"
)

// Choice is the device picked for a pod.
type Choice struct {
	Kind    Kind
	NIC     string // PCI address of the PF or plain NIC
	Device  string // PCI address of the VF; the NIC's own for pf and macvlan
	VFIndex int    // for KindVF
	// Level is the nearest connection between the device and the pod's GPUs.
	Level topology.Level
	// Shared is set when a share comes from a NIC already shared: no whole PF is broken.
	Shared bool
}

// Choose picks the free device for need nearest to the given GPUs (PCI addresses or UUIDs; none
// means every GPU of the node, which is all the scheduler can know). Among equally near devices
// a share goes to a NIC that is already shared, so that whole PFs stay whole, and a VF is
// preferred to a macvlan.
func (s *Summary) Choose(need Need, gpus []string) (Choice, error) {
	addrs, err := s.gpuAddrs(gpus)
	if err != nil {
		return Choice{}, err
	}
	var c Choice
	var ok bool
	if addrs == nil && need != NeedNothing {
		if best := s.best[need]; best != nil {
			c, ok = *best, true
		}
	} else {
		c, ok = s.choose(need, addrs)
	}
	if !ok {
		return Choice{}, fmt.Errorf("node %s has no free device for a pod that needs a %s", s.Node.Name, need)
	}
	return c, nil
}

// choose finds the best candidate for need near the GPUs at addrs (nil: every GPU).
func (s *Summary) choose(need Need, addrs []string) (Choice, bool) {
	var best candidate
	found := false
	for i := range s.nics {
		c, ok := s.nics[i].candidate(need)
		if !ok {
			continue
		}
		if addrs != nil {
			c.dist = s.distance(c.NIC, addrs)
		}
		if !found || c.better(&best) {
			best, found = c, true
		}
	}
	best.Level = best.dist.nearest
	return best.Choice, found
}

type candidate struct {
	Choice
	dist distance
}

// candidate is what the NIC can give for need, if anything.
func (st *nicState) candidate(need Need) (candidate, bool) {
	addr := st.nic.PCIAddress
	switch {
	case need == NeedPF:
		return candidate{Choice: Choice{Kind: KindPF, NIC: addr, Device: addr}, dist: st.toAllGPUs}, st.wholeFree()
	case st.wholeTo != "":
		return candidate{}, false
	case !st.nic.Virtualised():
		return candidate{Choice: Choice{Kind: KindMacvlan, NIC: addr, Device: addr, Shared: st.shared()}, dist: st.toAllGPUs}, true
	}
	vf := st.freeVF()
	if vf == nil {
		return candidate{}, false
	}
	return candidate{Choice: Choice{Kind: KindVF, NIC: addr, Device: vf.PCIAddress, VFIndex: vf.Index, Shared: st.shared()}, dist: st.toAllGPUs}, true
}

func (c *candidate) better(o *candidate) bool {
	if d := c.dist.compare(o.dist); d != 0 {
		return d < 0
	}
	if c.Shared != o.Shared {
		return c.Shared
	}
	if c.Kind != o.Kind {
		return c.Kind == KindVF
	}
	return c.NIC < o.NIC
}

// distance ranks a NIC against a set of GPUs: nearest to any, then nearest to all, then overall.
type distance struct {
	nearest, farthest topology.Level
	sum               int
}

func (s *Summary) distance(nic string, gpus []string) distance {
	d := distance{nearest: topology.Unknown, farthest: topology.PIX}
	for _, g := range gpus {
		l := s.Node.Level(nic, g)
		if l.Nearer(d.nearest) {
			d.nearest = l
		}
		if d.farthest.Nearer(l) {
			d.farthest = l
		}
		d.sum += l.Rank()
	}
	return d
}

func (d distance) compare(o distance) int {
	return cmp.Or(
		cmp.Compare(d.nearest.Rank(), o.nearest.Rank()),
		cmp.Compare(d.farthest.Rank(), o.farthest.Rank()),
		cmp.Compare(d.sum, o.sum),
	)
}

// gpuAddrs resolves GPU ids to PCI addresses; none gives nil, meaning every GPU.
func (s *Summary) gpuAddrs(ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	addrs := make([]string, 0, len(ids))
	for _, id := range ids {
		g := s.Node.GPU(id)
		if g == nil {
			return nil, fmt.Errorf("GPU %s is not among the %d GPUs of node %s", id, len(s.Node.GPUs), s.Node.Name)
		}
		addrs = append(addrs, g.PCIAddress)
	}
	return addrs, nil
}

func (s *Summary) allGPUs() []string {
	addrs := make([]string, len(s.Node.GPUs))
	for i, g := range s.Node.GPUs {
		addrs[i] = g.PCIAddress
	}
	return addrs
}
