package placement

import (
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/topolane/topolane/topology"
)

// Kind is the kind of device a pod is given.
type Kind string

const (
	KindPF      Kind = "pf"      // the whole NIC, SR-IOV capable or not
	KindVF      Kind = "vf"      // one virtual function
	KindMacvlan Kind = "macvlan" // a macvlan on a NIC that has no VFs configured
)

// Allocation is a device held by a pod.
type Allocation struct {
	Pod    string `json:"pod"` // namespace/name
	Kind   Kind   `json:"kind"`
	NIC    string `json:"nic"`    // PCI address of the PF or plain NIC
	Device string `json:"device"` // PCI address of the VF; the NIC's own for pf and macvlan
	// GPUs are the GPUs the device serves (PCI addresses), when known: they are busy.
	GPUs []string `json:"gpus,omitempty"`
}

// Usage is what other pods hold on a node.
type Usage struct {
	// GPUsInUse counts GPUs held by pods other than the one being placed.
	GPUsInUse int
	// BusyGPUs names GPUs known to be held (PCI addresses or UUIDs), beyond those of Allocations.
	BusyGPUs    []string
	Allocations []Allocation
}

// Summary is a node's topology with its usage folded in: what placement decisions read. The
// extender keeps one per node and rebuilds it only when the node's topology or usage changes; a
// summary never changes once made, so readers may share it.
type Summary struct {
	Node      *topology.Node
	GPUsTotal int
	GPUsFree  int
	// Problems are allocations the summary could not count (a device the node lacks or keeps for
	// itself) and devices held by two pods (counted as taken). They do not block other pods, but
	// a person should look.
	Problems []Problem

	nics  []nicState // eligible NICs only: the ones topolane hands out
	rails []railState
	free  []gpuState // GPUs no known holder has, in PCI order
	// gdrGPUs counts the node's GPUs whose rail is PXB or nearer, whatever holds them.
	gdrGPUs int

	weights                   Weights
	freePFs, freeVFs, railsOK int
	table                     []answer // by pod shape: see table.go
	// reasons are the rejections of table entries, worded when first asked for.
	reasons atomic.Pointer[[]atomic.Pointer[string]]
}

type nicState struct {
	nic       *topology.NIC
	wholeTo   string         // pod holding the whole NIC
	vfsInUse  map[int]string // VF index -> pod
	macvlans  []string       // pods holding a macvlan on it
	toAllGPUs distance       // the scheduler's view: every GPU of the node
	// gdrFree counts free GPUs at PXB or nearer to it (topolane.io/nics: one with gdr required).
	gdrFree, gdrAll int
}

type railState struct {
	rail *topology.Rail
	nic  *nicState
	free []int // indexes into Summary.free
}

type gpuState struct {
	addr  string
	rail  int            // index into Summary.rails; -1 without a rail
	level topology.Level // to its rail's NIC
}

// gdr reports whether NCCL would use GPUDirect RDMA between the GPU and its rail.
func (g gpuState) gdr() bool { return g.rail >= 0 && !topology.PXB.Nearer(g.level) }

// Summarize folds usage into the node, scoring with w. What cannot be counted is listed in
// Problems, never an error: one bad allocation must not block a node's other pods.
func Summarize(node *topology.Node, u Usage, w Weights) *Summary {
	s := &Summary{Node: node, GPUsTotal: len(node.GPUs), GPUsFree: max(len(node.GPUs)-u.GPUsInUse, 0), weights: w}
	s.indexNICs()
	busy := s.hold(u)
	s.indexGPUs(busy)
	s.precompute()
	return s
}

func (s *Summary) indexNICs() {
	all := allGPUs(s.Node)
	for i := range s.Node.NICs {
		if nic := &s.Node.NICs[i]; nic.Eligible() {
			s.nics = append(s.nics, nicState{nic: nic, toAllGPUs: s.distance(nic.PCIAddress, all)})
		}
	}
	for i := range s.Node.Rails {
		if st := s.nicState(s.Node.Rails[i].NIC); st != nil {
			s.rails = append(s.rails, railState{rail: &s.Node.Rails[i], nic: st})
		}
	}
}

// hold counts the allocations on their NICs and returns the GPUs known to be busy.
func (s *Summary) hold(u Usage) map[string]bool {
	busy := map[string]bool{}
	for _, id := range u.BusyGPUs {
		if g := s.Node.GPU(id); g != nil {
			busy[g.PCIAddress] = true
		}
	}
	for _, a := range u.Allocations {
		if p := s.holdOne(a); p != nil {
			s.Problems = append(s.Problems, *p)
			continue
		}
		for _, id := range a.GPUs {
			if g := s.Node.GPU(id); g != nil {
				busy[g.PCIAddress] = true
			}
		}
	}
	return busy
}

// Problem is an allocation a summary could not count as it stands.
type Problem struct {
	Pods    []string // namespace/name of the pods concerned
	Message string
}

func (p Problem) String() string { return p.Message }

func (s *Summary) holdOne(a Allocation) *Problem {
	st := s.nicState(a.NIC)
	if st == nil {
		return &Problem{[]string{a.Pod}, fmt.Sprintf("pod %s holds NIC %s, which node %s does not offer (%s): ignored", a.Pod, a.NIC, s.Node.Name, s.whyNotOffered(a.NIC))}
	}
	return st.hold(a)
}

// whyNotOffered says why a NIC is not one topolane hands out.
func (s *Summary) whyNotOffered(addr string) string {
	switch nic := s.Node.NIC(addr); {
	case nic == nil:
		return "no such NIC"
	case !nic.RDMA():
		return "it has no RDMA device"
	default:
		return "excluded: " + nic.Excluded
	}
}

func (s *Summary) nicState(addr string) *nicState {
	for i := range s.nics {
		if s.nics[i].nic.PCIAddress == addr {
			return &s.nics[i]
		}
	}
	return nil
}

// hold counts one allocation. A device already held stays taken; the second holder is reported.
func (st *nicState) hold(a Allocation) *Problem {
	addr := st.nic.PCIAddress
	switch a.Kind {
	case KindPF:
		if st.wholeTo != "" && st.wholeTo != a.Pod {
			return &Problem{[]string{st.wholeTo, a.Pod}, fmt.Sprintf("NIC %s is held whole by both %s and %s", addr, st.wholeTo, a.Pod)}
		}
		st.wholeTo = a.Pod
	case KindMacvlan:
		st.macvlans = append(st.macvlans, a.Pod)
	case KindVF:
		vf := st.vf(a.Device)
		if vf == nil {
			return &Problem{[]string{a.Pod}, fmt.Sprintf("pod %s holds VF %s, which is not a VF of %s: ignored", a.Pod, a.Device, addr)}
		}
		if other, held := st.vfsInUse[vf.Index]; held && other != a.Pod {
			return &Problem{[]string{other, a.Pod}, fmt.Sprintf("VF %s is held by both %s and %s", a.Device, other, a.Pod)}
		}
		if st.vfsInUse == nil {
			st.vfsInUse = map[int]string{}
		}
		st.vfsInUse[vf.Index] = a.Pod
	default:
		return &Problem{[]string{a.Pod}, fmt.Sprintf("pod %s holds %s as %q (want pf, vf or macvlan): ignored", a.Pod, a.Device, a.Kind)}
	}
	return nil
}

// precompute answers every question the scheduler asks; the summary never changes afterwards.
func (s *Summary) precompute() {
	for _, st := range s.nics {
		if st.wholeFree() {
			s.freePFs++
		}
		if st.wholeTo == "" && st.nic.Virtualised() {
			s.freeVFs += len(st.nic.SRIOV.VFs) - len(st.vfsInUse)
		}
	}
	for _, r := range s.rails {
		if r.nic.wholeFree() {
			s.railsOK++
		}
	}
	s.countGDR()
	s.fillTable()
}

// indexGPUs lists the GPUs no known holder has, with their rails.
func (s *Summary) indexGPUs(busy map[string]bool) {
	railOf := map[string]int{}
	for i, r := range s.rails {
		for _, g := range r.rail.GPUs {
			railOf[g] = i
		}
	}
	for _, g := range s.Node.GPUs {
		st := gpuState{addr: g.PCIAddress, rail: -1, level: topology.Unknown}
		if i, ok := railOf[g.PCIAddress]; ok {
			st.rail, st.level = i, s.Node.Level(g.PCIAddress, s.rails[i].nic.nic.PCIAddress)
		}
		if st.gdr() {
			s.gdrGPUs++
		}
		if busy[g.PCIAddress] {
			continue
		}
		if st.rail >= 0 {
			s.rails[st.rail].free = append(s.rails[st.rail].free, len(s.free))
		}
		s.free = append(s.free, st)
	}
}

func (st *nicState) vf(addr string) *topology.VF {
	if st.nic.SRIOV == nil {
		return nil
	}
	for i := range st.nic.SRIOV.VFs {
		if st.nic.SRIOV.VFs[i].PCIAddress == addr {
			return &st.nic.SRIOV.VFs[i]
		}
	}
	return nil
}

// wholeFree reports whether the NIC can be given whole: nobody holds it or any share of it.
func (st *nicState) wholeFree() bool {
	return st.wholeTo == "" && len(st.vfsInUse) == 0 && len(st.macvlans) == 0
}

// shared reports whether some share of the NIC is already given out.
func (st *nicState) shared() bool { return len(st.vfsInUse) > 0 || len(st.macvlans) > 0 }

// hasShare reports whether the NIC can give a share: a free VF, or a macvlan on a NIC without VFs.
func (st *nicState) hasShare() bool {
	return st.wholeTo == "" && ((!st.nic.Virtualised() && st.macvlansOK()) || st.freeVF(nil) != nil)
}

// macvlansOK reports whether the NIC can carry macvlans: the kernel makes them on Ethernet only,
// so an InfiniBand NIC (IPoIB) shares through VFs alone.
func (st *nicState) macvlansOK() bool { return st.nic.LinkLayer != topology.LinkLayerInfiniBand }

// has reports whether the NIC can give what need asks for.
func (st *nicState) has(need Need) bool {
	if need == NeedPF {
		return st.wholeFree()
	}
	return st.hasShare()
}

// freeVF returns the lowest-index VF nobody holds and not in taken, or nil.
func (st *nicState) freeVF(taken map[string]bool) *topology.VF {
	if st.nic.SRIOV == nil {
		return nil
	}
	for i := range st.nic.SRIOV.VFs {
		vf := &st.nic.SRIOV.VFs[i]
		if _, used := st.vfsInUse[vf.Index]; !used && !taken[vf.PCIAddress] {
			return vf
		}
	}
	return nil
}

// FreePFs counts NICs that can be given whole.
func (s *Summary) FreePFs() int { return s.freePFs }

// FreeVFs counts VFs that can be given out: free VFs on virtualised NICs nobody holds whole.
func (s *Summary) FreeVFs() int { return s.freeVFs }

// RailsWhole counts rails whose NIC can be given whole.
func (s *Summary) RailsWhole() int { return s.railsOK }

// RailInfo is one rail as a person reads it (/debug, NodeTopology).
type RailInfo struct {
	Index    int      `json:"index"`
	NIC      string   `json:"nic"`
	GPUs     []string `json:"gpus"`
	FreeGPUs int      `json:"freeGPUs"`
	// PFFree is set when the NIC can be given whole; FreeShares counts its free VFs, -1 for a NIC
	// shared through macvlans (no limit).
	PFFree     bool `json:"pfFree"`
	FreeShares int  `json:"freeShares"`
}

// Rails describes every rail.
func (s *Summary) Rails() []RailInfo {
	out := make([]RailInfo, 0, len(s.rails))
	for _, r := range s.rails {
		info := RailInfo{Index: r.rail.Index, NIC: r.nic.nic.PCIAddress, GPUs: slices.Clone(r.rail.GPUs), FreeGPUs: len(r.free), PFFree: r.nic.wholeFree()}
		switch {
		case r.nic.wholeTo != "":
		case !r.nic.nic.Virtualised() && !r.nic.macvlansOK():
		case !r.nic.nic.Virtualised():
			info.FreeShares = -1
		default:
			info.FreeShares = len(r.nic.nic.SRIOV.VFs) - len(r.nic.vfsInUse)
		}
		out = append(out, info)
	}
	return out
}

func allGPUs(n *topology.Node) []string {
	addrs := make([]string, len(n.GPUs))
	for i, g := range n.GPUs {
		addrs[i] = g.PCIAddress
	}
	return addrs
}

// Available reports whether the node could give the device of a as it stands: it has the device,
// and nobody holds what a needs (the whole NIC for a PF, the VF itself, the NIC not given whole
// for a share).
func (s *Summary) Available(a Allocation) bool {
	st := s.nicState(a.NIC)
	if st == nil {
		return false
	}
	switch a.Kind {
	case KindPF:
		return st.wholeFree()
	case KindMacvlan:
		return st.wholeTo == ""
	case KindVF:
		vf := st.vf(a.Device)
		if vf == nil {
			return false
		}
		_, used := st.vfsInUse[vf.Index]
		return !used && st.wholeTo == ""
	}
	return false
}
