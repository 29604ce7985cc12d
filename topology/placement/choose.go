package placement

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/topolane/topolane/topology"
)

// Choice is a device picked for a pod.
type Choice struct {
	Kind    Kind
	NIC     string // PCI address of the PF or plain NIC
	Device  string // PCI address of the VF; the NIC's own for pf and macvlan
	VFIndex int    // for KindVF
	// Rail is the index of the rail the device serves (topology.Rail.Index); -1 for a pod with
	// topolane.io/nics: one.
	Rail int
	// GPUs are the pod's GPUs the device serves (PCI addresses); nil when they are not known.
	GPUs []string
	// Level is the farthest connection between the device and its GPUs; with no GPUs known, the
	// nearest to any GPU of the node.
	Level topology.Level
	// Shared is set when a share comes from a NIC already shared: no whole PF is broken.
	Shared bool
}

// Plan picks the devices of a pod that needs need: one per distinct rail of its GPUs (PCI
// addresses or UUIDs), each on the GPU's rail when it can give one, else the nearest that can.
// Without GPUs (the scheduler cannot know which the device plugin will give) it plans for the
// req.GPUs free GPUs the pod had best get. With topolane.io/nics: one, a single device nearest
// the GPUs. Devices come in GPU order.
func (s *Summary) Plan(req Request, need Need, gpus []string) ([]Choice, error) {
	req = req.normal()
	if need == NeedNothing {
		return nil, nil
	}
	addrs, err := s.gpuAddrs(gpus)
	if err != nil {
		return nil, err
	}
	if req.NICs == NICsOne {
		c, ok := s.chooseOne(need, addrs, s.gdrFilter(req.GDR == GDRRequired && addrs == nil, req.GPUs))
		if !ok {
			return nil, fmt.Errorf("node %s has no free device for a pod that needs a %s", s.Node.Name, need)
		}
		return []Choice{c}, nil
	}
	if addrs == nil {
		if addrs, err = s.expected(req, need); err != nil {
			return nil, err
		}
	}
	return s.planRails(need, addrs)
}

// expected are the free GPUs a pod had best get, in GPU order.
func (s *Summary) expected(req Request, need Need) ([]string, error) {
	p := s.plan(need, req.GDR == GDRRequired)
	if len(p.order) < req.GPUs {
		return nil, fmt.Errorf("node %s: %s", s.Node.Name, s.railsReason(req, need))
	}
	idx := slices.Clone(p.order[:req.GPUs])
	slices.Sort(idx)
	addrs := make([]string, len(idx))
	for i, j := range idx {
		addrs[i] = s.free[j].addr
	}
	return addrs, nil
}

// planRails gives each distinct rail of the GPUs a device, taking nothing twice.
func (s *Summary) planRails(need Need, addrs []string) ([]Choice, error) {
	var out []Choice
	taken := map[string]bool{} // devices, and NICs given whole
	for _, group := range s.byRail(addrs) {
		c, ok := s.onRail(group.rail, need, taken, out)
		if !ok {
			c, ok = s.nearest(need, group.gpus, taken, out)
		}
		if !ok {
			return nil, fmt.Errorf("node %s has no free device for a pod that needs a %s on %s, nor on any other NIC", s.Node.Name, need, s.railName(group.rail))
		}
		out = s.add(out, c, group, taken)
	}
	return out, nil
}

type railGroup struct {
	rail int // index into s.rails; -1 for GPUs without a rail
	gpus []string
}

// byRail groups GPUs by rail, in GPU order.
func (s *Summary) byRail(addrs []string) []railGroup {
	sorted := slices.Clone(addrs)
	slices.Sort(sorted)
	var groups []railGroup
	at := map[int]int{}
	for _, a := range sorted {
		r := s.railIndex(a)
		i, ok := at[r]
		if !ok || r < 0 {
			i = len(groups)
			at[r] = i
			groups = append(groups, railGroup{rail: r})
		}
		groups[i].gpus = append(groups[i].gpus, a)
	}
	return groups
}

func (s *Summary) railIndex(gpu string) int {
	for i, r := range s.rails {
		if slices.Contains(r.rail.GPUs, gpu) {
			return i
		}
	}
	return -1
}

func (s *Summary) railName(i int) string {
	if i < 0 {
		return "no rail"
	}
	r := s.rails[i]
	return fmt.Sprintf("rail %d (%s)", r.rail.Index, r.nic.nic.PCIAddress)
}

// onRail is the rail's own device for need, if it has one free, or the share the pod already
// has on the rail's NIC.
func (s *Summary) onRail(rail int, need Need, taken map[string]bool, chosen []Choice) (candidate, bool) {
	if rail < 0 {
		return candidate{}, false
	}
	nic := s.rails[rail].nic
	if j := sharing(chosen, nic.nic.PCIAddress); j >= 0 {
		return candidate{Choice: chosen[j]}, true
	}
	return nic.candidate(need, taken)
}

// nearest is the device for need nearest to gpus on any NIC; a NIC already serving the pod with
// a share serves these GPUs too, rather than giving a second share.
func (s *Summary) nearest(need Need, gpus []string, taken map[string]bool, chosen []Choice) (candidate, bool) {
	var best candidate
	found := false
	for i := range s.nics {
		st := &s.nics[i]
		c, ok := st.candidate(need, taken)
		if j := sharing(chosen, st.nic.PCIAddress); j >= 0 {
			c, ok = candidate{Choice: chosen[j]}, true
		}
		if !ok {
			continue
		}
		c.dist = s.distance(st.nic.PCIAddress, gpus)
		if !found || c.better(&best) {
			best, found = c, true
		}
	}
	return best, found
}

// sharing is the index of the share already chosen on nic, or -1.
func sharing(chosen []Choice, nic string) int {
	for i, c := range chosen {
		if c.NIC == nic && c.Kind != KindPF {
			return i
		}
	}
	return -1
}

// add records a device for a group of GPUs: a new device, or more GPUs for one already chosen.
func (s *Summary) add(out []Choice, c candidate, g railGroup, taken map[string]bool) []Choice {
	railIdx := -1
	if g.rail >= 0 {
		railIdx = s.rails[g.rail].rail.Index
	}
	if j := slices.IndexFunc(out, func(o Choice) bool { return o.Device == c.Device && o.NIC == c.NIC }); j >= 0 {
		out[j].GPUs = append(out[j].GPUs, g.gpus...)
		out[j].Level = s.distance(c.NIC, out[j].GPUs).farthest
		return out
	}
	switch c.Kind {
	case KindPF:
		taken[c.NIC] = true
	case KindVF:
		taken[c.Device] = true
	}
	c.Rail, c.GPUs, c.Level = railIdx, slices.Clone(g.gpus), s.distance(c.NIC, g.gpus).farthest
	return append(out, c.Choice)
}

type candidate struct {
	Choice
	dist distance
}

// candidate is what the NIC can give for need, leaving out what this plan already took.
func (st *nicState) candidate(need Need, taken map[string]bool) (candidate, bool) {
	addr := st.nic.PCIAddress
	switch {
	case taken[addr]: // given whole to this pod
		return candidate{}, false
	case need == NeedPF:
		return candidate{Choice: Choice{Kind: KindPF, NIC: addr, Device: addr}}, st.wholeFree()
	case st.wholeTo != "":
		return candidate{}, false
	case !st.nic.Virtualised():
		return candidate{Choice: Choice{Kind: KindMacvlan, NIC: addr, Device: addr, Shared: st.shared()}}, st.macvlansOK()
	}
	vf := st.freeVF(taken)
	if vf == nil {
		return candidate{}, false
	}
	return candidate{Choice: Choice{Kind: KindVF, NIC: addr, Device: vf.PCIAddress, VFIndex: vf.Index, Shared: st.shared()}}, true
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

// gpuAddrs resolves GPU ids to PCI addresses; none gives nil, meaning not known.
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
