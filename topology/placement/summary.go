package placement

import (
	"fmt"

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
}

// Usage is what other pods hold on a node.
type Usage struct {
	// GPUsInUse counts GPUs held by pods other than the one being placed.
	GPUsInUse   int
	Allocations []Allocation
}

// Summary is a node's topology with its usage folded in: what placement decisions read. The
// extender keeps one per node and rebuilds it only when the node's topology or usage changes.
type Summary struct {
	Node      *topology.Node
	GPUsTotal int
	GPUsFree  int
	nics      []nicState // RDMA-capable NICs only: the ones topolane hands out

	// Computed once by Summarize, for the request path: the summary never changes afterwards.
	freePFs, freeVFs int
	best             [3]*Choice // by Need: what Choose(need, nil) returns; nil when nothing is free
	memo             memo
}

type nicState struct {
	nic      *topology.NIC
	wholeTo  string         // pod holding the whole NIC
	vfsInUse map[int]string // VF index -> pod
	macvlans int
	// toAllGPUs is the NIC's distance to every GPU of the node, the scheduler's view, computed
	// once here so that choosing on the request path does no level lookups.
	toAllGPUs distance
}

// Summarize folds usage into the node. An allocation naming a device the node does not have is
// an error: the topology and the ledger disagree and a person must look.
func Summarize(node *topology.Node, u Usage) (*Summary, error) {
	s := &Summary{Node: node, GPUsTotal: len(node.GPUs), GPUsFree: max(len(node.GPUs)-u.GPUsInUse, 0)}
	byAddr := map[string]*nicState{}
	all := s.allGPUs()
	for i := range node.NICs {
		if nic := &node.NICs[i]; nic.RDMA() {
			s.nics = append(s.nics, nicState{nic: nic, vfsInUse: map[int]string{}, toAllGPUs: s.distance(nic.PCIAddress, all)})
		}
	}
	for i := range s.nics {
		byAddr[s.nics[i].nic.PCIAddress] = &s.nics[i]
	}
	for _, a := range u.Allocations {
		st := byAddr[a.NIC]
		if st == nil {
			return nil, fmt.Errorf("pod %s holds NIC %s, which node %s has not reported as an RDMA NIC", a.Pod, a.NIC, node.Name)
		}
		if err := st.hold(a); err != nil {
			return nil, fmt.Errorf("node %s: %w", node.Name, err)
		}
	}
	s.precompute()
	return s, nil
}

// precompute answers the scheduler's questions, which depend on the summary alone.
func (s *Summary) precompute() {
	for _, st := range s.nics {
		if st.wholeFree() {
			s.freePFs++
		}
		if st.wholeTo == "" && st.nic.Virtualised() {
			s.freeVFs += len(st.nic.SRIOV.VFs) - len(st.vfsInUse)
		}
	}
	for _, need := range []Need{NeedPF, NeedVF} {
		if c, ok := s.choose(need, nil); ok {
			s.best[need] = &c
		}
	}
}

func (st *nicState) hold(a Allocation) error {
	switch a.Kind {
	case KindPF:
		st.wholeTo = a.Pod
	case KindMacvlan:
		st.macvlans++
	case KindVF:
		vf := st.vf(a.Device)
		if vf == nil {
			return fmt.Errorf("pod %s holds VF %s, which is not a VF of %s", a.Pod, a.Device, a.NIC)
		}
		st.vfsInUse[vf.Index] = a.Pod
	default:
		return fmt.Errorf("pod %s holds %s as %q: want pf, vf or macvlan", a.Pod, a.Device, a.Kind)
	}
	return nil
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
	return st.wholeTo == "" && len(st.vfsInUse) == 0 && st.macvlans == 0
}

// shared reports whether some share of the NIC is already given out.
func (st *nicState) shared() bool { return len(st.vfsInUse) > 0 || st.macvlans > 0 }

// freeVF returns the lowest-index VF nobody holds, or nil.
func (st *nicState) freeVF() *topology.VF {
	for i := range st.nic.SRIOV.VFs {
		if _, used := st.vfsInUse[st.nic.SRIOV.VFs[i].Index]; !used {
			return &st.nic.SRIOV.VFs[i]
		}
	}
	return nil
}

// FreePFs counts NICs that can be given whole.
func (s *Summary) FreePFs() int { return s.freePFs }

// FreeVFs counts VFs that can be given out: free VFs on virtualised NICs nobody holds whole.
func (s *Summary) FreeVFs() int { return s.freeVFs }
