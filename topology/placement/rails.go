package placement

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/topolane/topolane/topology"
)

// The rule per rail (SPEC §1a): a pod gets one device per distinct rail of its GPUs. The device
// plugin picks the GPUs after binding, so the scheduler can only count: a node passes when at
// least as many free GPUs as the pod asks for have what it needs on their rail. A pod that takes
// every free GPU takes exactly the free ones, so every one of their rails must give it the whole
// PF.

// plan is how a node would serve a pod that needs one kind of device on each rail: the free GPUs
// whose rail can give it, in the order the pod had best take them, with running sums for scores
// (index k covers the first k GPUs).
type plan struct {
	order      []int // indexes into Summary.free
	levelScore []int
	gdr        []int
	rails      []int // distinct rails
	// costless counts the distinct rails whose share costs no whole PF a later pod could use:
	// the NIC is already shared, or the pod takes every free GPU of the rail.
	costless []int
}

// railPlans are what the table is filled from: the plans by gdr filter (required or not) and
// Need, and the single device topolane.io/nics: one gets without a gdr filter.
type railPlans struct {
	rails [2][3]plan
	one   [3]*Choice
}

func (s *Summary) plans() railPlans {
	var p railPlans
	for f, gdrOnly := range []bool{false, true} {
		for _, need := range []Need{NeedPF, NeedVF} {
			p.rails[f][need] = s.plan(need, gdrOnly)
		}
	}
	return p
}

func gdrIndex(g GDR) int {
	if g == GDRRequired {
		return 1
	}
	return 0
}

func (s *Summary) plan(need Need, gdrOnly bool) plan {
	var order []int
	for i, g := range s.free {
		if g.rail >= 0 && s.rails[g.rail].nic.has(need) && (!gdrOnly || g.gdr()) {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return s.compareFree(need, a, b) })
	n := len(order) + 1
	p := plan{order: order, levelScore: make([]int, n), gdr: make([]int, n), rails: make([]int, n), costless: make([]int, n)}
	taken := map[int]int{} // GPUs taken so far, by rail
	for k, i := range order {
		g := s.free[i]
		r := s.rails[g.rail]
		p.levelScore[k+1] = p.levelScore[k] + levelScore(g.level)
		p.gdr[k+1], p.rails[k+1], p.costless[k+1] = p.gdr[k], p.rails[k], p.costless[k]
		if g.gdr() {
			p.gdr[k+1]++
		}
		taken[g.rail]++
		if taken[g.rail] == 1 {
			p.rails[k+1]++
		}
		if (r.nic.shared() && taken[g.rail] == 1) || (!r.nic.shared() && taken[g.rail] == len(r.free)) {
			p.costless[k+1]++
		}
	}
	return p
}

// compareFree orders free GPUs for a pod: for shares, GPUs whose NIC is already shared first (so
// whole PFs stay whole), then the nearest rails, then VFs before macvlans; for PFs the nearest
// rails. PCI order breaks ties (the sort is stable).
func (s *Summary) compareFree(need Need, a, b int) int {
	ga, gb := s.free[a], s.free[b]
	na, nb := s.rails[ga.rail].nic, s.rails[gb.rail].nic
	if need == NeedVF {
		if c := cmp.Compare(b2i(!na.shared()), b2i(!nb.shared())); c != 0 {
			return c
		}
	}
	return cmp.Or(
		cmp.Compare(ga.level.Rank(), gb.level.Rank()),
		cmp.Compare(b2i(!na.nic.Virtualised()), b2i(!nb.nic.Virtualised())),
	)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *Summary) answerRails(req Request, need Need, plans *railPlans) answer {
	gdrOnly := req.GDR == GDRRequired
	if gdrOnly && s.gdrGPUs < req.GPUs {
		return rejecting(need, CodeNoGDR, true)
	}
	var p plan
	if plans != nil {
		p = plans.rails[gdrIndex(req.GDR)][need]
	} else {
		p = s.plan(need, gdrOnly)
	}
	if len(p.order) < req.GPUs {
		return rejecting(need, noFree(need), false)
	}
	return fitting(need, s.scoreRails(req, need, &p))
}

func noFree(need Need) string {
	if need == NeedPF {
		return CodeNoFreePF
	}
	return CodeNoFreeVF
}

// railsReason words why a node cannot serve a pod rail by rail.
func (s *Summary) railsReason(req Request, need Need) string {
	gdrOnly := req.GDR == GDRRequired
	p := s.plan(need, gdrOnly)
	blockers := s.railBlockers(need, gdrOnly)
	if held := s.GPUsFree - len(s.free); held > 0 && req.GPUs > len(s.free) {
		// GPUs that devices the agent reports serve, their pods not counted yet (the pod
		// informer lags the agent's report, or the pod is gone and its devices not yet
		// returned).
		return fmt.Sprintf("needs %d GPUs: %d of %d free, %d more held by devices whose pods are not counted (yet)", req.GPUs, len(s.free), s.GPUsTotal, held)
	}
	if need == NeedPF && req.GPUs >= len(s.free) {
		return fmt.Sprintf("needs the whole PF of %d rails for %d/%d GPUs: %s", s.freeRails(), req.GPUs, s.GPUsFree, blockers)
	}
	what := "a share (VF or macvlan)"
	if need == NeedPF {
		what = "a whole PF"
	}
	return fmt.Sprintf("needs %s on the rail of each of its %d GPUs%s: %d of %d free GPUs have one (%s)",
		what, req.GPUs, s.why(req, gdrOnly), len(p.order), s.GPUsFree, blockers)
}

// why says which annotations made the pod's need what it is.
func (s *Summary) why(req Request, gdrOnly bool) string {
	var parts []string
	if req.Mode != ModeAuto {
		parts = append(parts, "topolane.io/nic: "+string(req.Mode))
	}
	if gdrOnly {
		parts = append(parts, "topolane.io/gdr: required")
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// freeRails counts the distinct rails of the free GPUs.
func (s *Summary) freeRails() int {
	n := 0
	for _, r := range s.rails {
		if len(r.free) > 0 {
			n++
		}
	}
	return n
}

// railBlockers lists the rails with free GPUs that cannot give what need asks for.
func (s *Summary) railBlockers(need Need, gdrOnly bool) string {
	var why []string
	for _, r := range s.rails {
		if !s.railHasFree(r, gdrOnly) || r.nic.has(need) {
			continue
		}
		b := r.nic.pfBlocker()
		if need == NeedVF {
			b = r.nic.vfBlocker()
		}
		why = append(why, fmt.Sprintf("rail %d (%s)", r.rail.Index, b))
	}
	if len(why) == 0 {
		return "no rail of a free GPU is blocked"
	}
	return strings.Join(why, "; ")
}

func (s *Summary) railHasFree(r railState, gdrOnly bool) bool {
	for _, i := range r.free {
		if !gdrOnly || s.free[i].gdr() {
			return true
		}
	}
	return false
}

// gdrReason words why a node can never give a pod GPUDirect RDMA on every GPU.
func (s *Summary) gdrReason(req Request) string {
	var far []string
	for _, g := range s.Node.GPUs {
		r := s.Node.RailOf(g.PCIAddress)
		switch {
		case r == nil:
			far = append(far, "GPU "+g.PCIAddress+" has no rail")
		case beyondPXB(s.Node.Level(g.PCIAddress, r.NIC)):
			far = append(far, fmt.Sprintf("GPU %s is %s from its rail's NIC %s", g.PCIAddress, s.Node.Level(g.PCIAddress, r.NIC), r.NIC))
		}
	}
	return fmt.Sprintf("needs GPUDirect RDMA for %d GPUs (topolane.io/gdr: required): only %d of %d GPUs have a NIC at PXB or nearer (%s)",
		req.GPUs, s.gdrGPUs, s.GPUsTotal, strings.Join(limit(far, 4), "; "))
}

// limit keeps the first n items and says how many more there were.
func limit(items []string, n int) []string {
	if len(items) <= n {
		return items
	}
	return append(slices.Clone(items[:n]), fmt.Sprintf("and %d more", len(items)-n))
}

// beyondPXB reports whether NCCL would not use GPUDirect RDMA over a path of level l.
func beyondPXB(l topology.Level) bool { return topology.PXB.Nearer(l) }
