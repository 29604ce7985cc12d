package placement

import (
	"fmt"
	"strings"
)

// Codes say in one word why a node was rejected: few enough values to label metrics with.
const (
	CodeNoGPUs     = "no_gpus"      // the node has no GPUs
	CodeTooFewGPUs = "too_few_gpus" // the node has fewer GPUs than the pod asks for
	CodeGPUsBusy   = "gpus_busy"    // other pods hold the GPUs
	CodeNoRDMANIC  = "no_rdma_nic"  // the node has no NIC topolane hands out
	CodeNoFreePF   = "no_free_pf"
	CodeNoFreeVF   = "no_free_vf"
	CodeNoTopology = "no_topology" // set by callers: no NodeTopology for the node
	CodeBadRequest = "bad_request" // set by callers: the pod's annotation cannot be read
)

// Verdict says whether a node can take a pod, and if not, why.
type Verdict struct {
	Need Need
	Fits bool
	Code string // empty when it fits
	// Unresolvable is set when the node can never take the pod, whatever is freed: preempting
	// pods would not help.
	Unresolvable bool
	// Reason is for a person: what is missing and where.
	Reason string
}

func fits(need Need) Verdict { return Verdict{Need: need, Fits: true} }

func reject(need Need, code string, unresolvable bool, format string, args ...any) Verdict {
	return Verdict{Need: need, Code: code, Unresolvable: unresolvable, Reason: fmt.Sprintf(format, args...)}
}

// Check decides whether the node can give the pod what it needs. Verdicts are remembered:
// the summary does not change, and the scheduler asks the same question many times.
func (s *Summary) Check(req Request) Verdict {
	word, rejection := s.memo.slot(req)
	if word == nil {
		return s.check(req)
	}
	if v, ok := recall(word, rejection); ok {
		return v
	}
	v := s.check(req)
	remember(word, rejection, v)
	return v
}

// Fits is Check(req).Fits, for the scheduler's pass over every node: it reads one word.
func (s *Summary) Fits(req Request) bool {
	if word, _ := s.memo.slot(req); word != nil {
		if w := word.Load(); w&wordChecked != 0 {
			return w&wordFits != 0
		}
	}
	return s.Check(req).Fits
}

func (s *Summary) check(req Request) Verdict {
	if req.GPUs <= 0 || req.Mode == ModeNone {
		return fits(NeedNothing)
	}
	switch {
	case s.GPUsTotal == 0:
		return reject(NeedNothing, CodeNoGPUs, true, "needs %d GPUs: node has no GPUs", req.GPUs)
	case req.GPUs > s.GPUsTotal:
		return reject(NeedNothing, CodeTooFewGPUs, true, "needs %d GPUs: node has only %d", req.GPUs, s.GPUsTotal)
	case req.GPUs > s.GPUsFree:
		return reject(NeedNothing, CodeGPUsBusy, false, "needs %d GPUs: only %d of %d free", req.GPUs, s.GPUsFree, s.GPUsTotal)
	}
	need := Decide(req, s.GPUsFree)
	if len(s.nics) == 0 {
		return reject(need, CodeNoRDMANIC, true, "%s: node has no RDMA NIC", s.wants(need, req))
	}
	if need == NeedPF {
		return s.checkPF(req)
	}
	return s.checkVF(req)
}

// wants words what the pod needs and why, the start of every reason.
func (s *Summary) wants(need Need, req Request) string {
	if req.Mode == ModeAuto || req.Mode == "" {
		return fmt.Sprintf("needs a free %s for %d/%d GPUs", need, req.GPUs, s.GPUsFree)
	}
	return fmt.Sprintf("needs a free %s (topolane.io/nic: %s)", need, req.Mode)
}

func (s *Summary) checkPF(req Request) Verdict {
	if s.FreePFs() > 0 {
		return fits(NeedPF)
	}
	var why []string
	for _, st := range s.nics {
		why = append(why, st.pfBlocker())
	}
	return reject(NeedPF, CodeNoFreePF, false, "%s: 0 of %d PFs free (%s)", s.wants(NeedPF, req), len(s.nics), strings.Join(why, "; "))
}

func (s *Summary) checkVF(req Request) Verdict {
	if s.best[NeedVF] != nil {
		return fits(NeedVF)
	}
	var why []string
	for _, st := range s.nics {
		why = append(why, st.vfBlocker())
	}
	return reject(NeedVF, CodeNoFreeVF, false, "%s: 0 of %d VFs free (%s)", s.wants(NeedVF, req), s.totalVFs(), strings.Join(why, "; "))
}

func (s *Summary) totalVFs() int {
	n := 0
	for _, st := range s.nics {
		if st.nic.Virtualised() {
			n += len(st.nic.SRIOV.VFs)
		}
	}
	return n
}

// pfBlocker says why a NIC cannot be given whole.
func (st *nicState) pfBlocker() string {
	addr := st.nic.PCIAddress
	switch {
	case st.wholeTo != "":
		return fmt.Sprintf("%s is given to %s", addr, st.wholeTo)
	case len(st.vfsInUse) > 0:
		return fmt.Sprintf("%s has %d VFs in use", addr, len(st.vfsInUse))
	default:
		return fmt.Sprintf("%s has %d macvlan shares in use", addr, st.macvlans)
	}
}

// vfBlocker says why a NIC has no share to give.
func (st *nicState) vfBlocker() string {
	addr := st.nic.PCIAddress
	if st.wholeTo != "" {
		return fmt.Sprintf("%s is given whole to %s", addr, st.wholeTo)
	}
	return fmt.Sprintf("%s has %d of %d VFs in use", addr, len(st.vfsInUse), len(st.nic.SRIOV.VFs))
}
