package placement

import (
	"fmt"
	"strings"
)

// topolane.io/nics: one — the behaviour before rails: a single device for the whole pod, the
// free one nearest its GPUs; a pod that takes every free GPU gets a whole PF.

func (s *Summary) answerOne(req Request, need Need, plans *railPlans) answer {
	gdrOnly := req.GDR == GDRRequired
	if gdrOnly && s.gdrReach() < req.GPUs {
		return rejecting(need, CodeNoGDR, true)
	}
	var c Choice
	var ok bool
	if plans != nil && !gdrOnly {
		if best := plans.one[need]; best != nil {
			c, ok = *best, true
		}
	} else {
		c, ok = s.chooseOne(need, nil, s.gdrFilter(gdrOnly, req.GPUs))
	}
	if !ok {
		return rejecting(need, noFree(need), false)
	}
	return fitting(need, s.scoreOne(req, need, c))
}

// gdrFilter keeps NICs at PXB or nearer to n free GPUs, when the pod requires GPUDirect RDMA.
func (s *Summary) gdrFilter(gdrOnly bool, n int) func(*nicState) bool {
	if !gdrOnly {
		return nil
	}
	return func(st *nicState) bool { return st.gdrFree >= n }
}

// gdrReach is the most GPUs one NIC reaches at PXB or nearer, whatever holds them.
func (s *Summary) gdrReach() int {
	n := 0
	for _, st := range s.nics {
		n = max(n, st.gdrAll)
	}
	return n
}

// countGDR counts, for every NIC, the GPUs (all, and free) at PXB or nearer to it.
func (s *Summary) countGDR() {
	free := map[string]bool{}
	for _, g := range s.free {
		free[g.addr] = true
	}
	for i := range s.nics {
		st := &s.nics[i]
		for _, g := range s.Node.GPUs {
			if beyondPXB(s.Node.Level(g.PCIAddress, st.nic.PCIAddress)) {
				continue
			}
			st.gdrAll++
			if free[g.PCIAddress] {
				st.gdrFree++
			}
		}
	}
}

// chooseOne finds the best device for need near the GPUs at addrs (nil: every GPU) on a NIC that
// keep accepts (nil: any).
func (s *Summary) chooseOne(need Need, addrs []string, keep func(*nicState) bool) (Choice, bool) {
	var best candidate
	found := false
	for i := range s.nics {
		st := &s.nics[i]
		if keep != nil && !keep(st) {
			continue
		}
		c, ok := st.candidate(need, nil)
		if !ok {
			continue
		}
		c.dist = st.toAllGPUs
		if addrs != nil {
			c.dist = s.distance(c.NIC, addrs)
		}
		if !found || c.better(&best) {
			best, found = c, true
		}
	}
	best.Rail, best.GPUs = -1, addrs
	best.Level = best.dist.nearest
	if addrs != nil {
		best.Level = best.dist.farthest
	}
	return best.Choice, found
}

func (s *Summary) oneReason(req Request, need Need) string {
	var why []string
	for _, st := range s.nics {
		if st.has(need) {
			continue
		}
		if need == NeedPF {
			why = append(why, st.pfBlocker())
		} else {
			why = append(why, st.vfBlocker())
		}
	}
	head := fmt.Sprintf("needs a free %s for %d/%d GPUs", need, req.GPUs, s.GPUsFree)
	if req.Mode != ModeAuto {
		head = fmt.Sprintf("needs a free %s (topolane.io/nic: %s)", need, req.Mode)
	}
	if req.GDR == GDRRequired {
		head += fmt.Sprintf(" at PXB or nearer to %d free GPUs (topolane.io/gdr: required)", req.GPUs)
	}
	if need == NeedPF {
		return fmt.Sprintf("%s: %d of %d PFs free (%s)", head, s.FreePFs(), len(s.nics), strings.Join(why, "; "))
	}
	return fmt.Sprintf("%s: %d of %d VFs free (%s)", head, s.FreeVFs(), s.totalVFs(), strings.Join(why, "; "))
}

func (s *Summary) oneGDRReason(req Request) string {
	return fmt.Sprintf("needs GPUDirect RDMA for %d GPUs through one NIC (topolane.io/nics: one, topolane.io/gdr: required): no NIC is at PXB or nearer to more than %d GPUs",
		req.GPUs, s.gdrReach())
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
