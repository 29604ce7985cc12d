package placement

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
)

// Codes say in one word why a node was rejected: few enough values to label metrics with.
const (
	CodeNoGPUs     = "no_gpus"      // the node has no GPUs
	CodeTooFewGPUs = "too_few_gpus" // the node has fewer GPUs than the pod asks for
	CodeGPUsBusy   = "gpus_busy"    // other pods hold the GPUs
	CodeNoRDMANIC  = "no_rdma_nic"  // the node has no NIC topolane hands out
	CodeNoFreePF   = "no_free_pf"
	CodeNoFreeVF   = "no_free_vf"
	CodeNoGDR      = "no_gdr_path"  // topolane.io/gdr: required, and too few GPUs have a NIC at PXB or nearer
	CodeNoTopology = "no_topology"  // set by callers: no NodeTopology for the node
	CodeBadRequest = "bad_request"  // the pod's annotations cannot be read
	CodeUnknown    = "unknown_node" // set by callers: no Node object for the name
)

var codes = []string{"", CodeNoGPUs, CodeTooFewGPUs, CodeGPUsBusy, CodeNoRDMANIC, CodeNoFreePF, CodeNoFreeVF, CodeNoGDR,
	CodeNoTopology, CodeBadRequest, CodeUnknown}

func codeIndex(code string) uint8 { return uint8(max(indexOf(codes, code), 0)) }

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

// Fits is Check(req).Fits, for the scheduler's pass over every node: one table entry.
func (s *Summary) Fits(req Request) bool { return s.answer(req).fits() }

// Check decides whether the node can give the pod what it needs, and words why not.
func (s *Summary) Check(req Request) Verdict {
	req = req.normal()
	a := s.answer(req)
	v := Verdict{Need: a.need, Fits: a.fits(), Unresolvable: a.unresolvable(), Code: codes[a.code]}
	if !v.Fits {
		v.Reason = s.reasonOf(req, a)
	}
	return v
}

// reasonOf words a rejection once per summary and shape: a pending pod is filtered again and
// again, and each time the same nodes reject it for the same reason.
func (s *Summary) reasonOf(req Request, a answer) string {
	i := s.tableIndex(req)
	if i < 0 {
		return s.reason(req, a)
	}
	cache := s.reasons.Load()
	if cache == nil {
		fresh := make([]atomic.Pointer[string], len(s.table))
		if !s.reasons.CompareAndSwap(nil, &fresh) {
			cache = s.reasons.Load()
		} else {
			cache = &fresh
		}
	}
	if r := (*cache)[i].Load(); r != nil {
		return *r
	}
	r := s.reason(req, a)
	(*cache)[i].Store(&r)
	return r
}

func (s *Summary) reason(req Request, a answer) string {
	switch codes[a.code] {
	case CodeBadRequest:
		return fmt.Sprintf("cannot read the request %+v", req)
	case CodeNoGPUs:
		return fmt.Sprintf("needs %d GPUs: node has no GPUs", req.GPUs)
	case CodeTooFewGPUs:
		return fmt.Sprintf("needs %d GPUs: node has only %d", req.GPUs, s.GPUsTotal)
	case CodeGPUsBusy:
		return fmt.Sprintf("needs %d GPUs: only %d of %d free", req.GPUs, s.GPUsFree, s.GPUsTotal)
	case CodeNoRDMANIC:
		return s.noNICReason(req, a.need)
	case CodeNoGDR:
		if req.NICs == NICsOne {
			return s.oneGDRReason(req)
		}
		return s.gdrReason(req)
	}
	if req.NICs == NICsOne {
		return s.oneReason(req, a.need)
	}
	return s.railsReason(req, a.need)
}

func (s *Summary) noNICReason(req Request, need Need) string {
	var excluded []string
	for _, nic := range s.Node.NICs {
		if nic.RDMA() && nic.Excluded != "" {
			excluded = append(excluded, nic.PCIAddress+" "+nic.Excluded)
		}
	}
	msg := fmt.Sprintf("needs a %s for %d GPUs: node has no RDMA NIC topolane may hand out", need, req.GPUs)
	if len(excluded) > 0 {
		msg += " (excluded: " + strings.Join(limit(excluded, 4), "; ") + ")"
	}
	return msg
}

// pfBlocker says why a NIC cannot be given whole.
func (st *nicState) pfBlocker() string {
	addr := st.nic.PCIAddress
	switch {
	case st.wholeTo != "":
		return fmt.Sprintf("%s is given to %s", addr, st.wholeTo)
	case len(st.vfsInUse) > 0:
		return fmt.Sprintf("%s has %s in use by %s", addr, plural(len(st.vfsInUse), "VF"), holders(st.vfHolders()))
	default:
		return fmt.Sprintf("%s has %s in use by %s", addr, plural(len(st.macvlans), "macvlan share"), holders(st.macvlans))
	}
}

// vfBlocker says why a NIC has no share to give.
func (st *nicState) vfBlocker() string {
	addr := st.nic.PCIAddress
	if st.wholeTo != "" {
		return fmt.Sprintf("%s is given whole to %s", addr, st.wholeTo)
	}
	if !st.nic.Virtualised() {
		return fmt.Sprintf("%s is InfiniBand and has no VFs: a share of it must be a VF, a macvlan needs Ethernet; configure its sriov_numvfs", addr)
	}
	return fmt.Sprintf("%s has %d of %d VFs in use", addr, len(st.vfsInUse), len(st.nic.SRIOV.VFs))
}

func (st *nicState) vfHolders() []string {
	var pods []string
	for _, p := range st.vfsInUse {
		pods = append(pods, p)
	}
	return pods
}

// holders names the pods, each once, the first few only.
func holders(pods []string) string {
	pods = slices.Clone(pods)
	slices.Sort(pods)
	return strings.Join(limit(slices.Compact(pods), 3), ", ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
