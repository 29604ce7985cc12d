// Package placement holds topolane's decisions as pure functions: what a pod needs (a whole PF, a
// VF or nothing), whether a node can give it and why not, and which device serves it best. The
// extender, the node agent and the benchmarks all call these, so they cannot disagree.
package placement

import "fmt"

// Mode is a pod's `topolane.io/nic` annotation.
type Mode string

const (
	ModeAuto Mode = "auto" // the rule of the patent: a PF when the pod takes every free GPU
	ModePF   Mode = "pf"   // always a whole NIC
	ModeVF   Mode = "vf"   // always a share: a VF, or a macvlan on a NIC without VFs
	ModeNone Mode = "none" // topolane leaves the pod alone
)

// ParseMode reads the annotation's value; empty means auto.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case "":
		return ModeAuto, nil
	case ModeAuto, ModePF, ModeVF, ModeNone:
		return m, nil
	}
	return "", fmt.Errorf("topolane.io/nic is %q: want one of auto, pf, vf, none", s)
}

// Need is what a pod must get on a node.
type Need int

const (
	NeedNothing Need = iota
	NeedPF           // a whole physical NIC
	NeedVF           // a share of a NIC that nobody holds whole
)

func (n Need) String() string {
	return [...]string{"nothing", "PF", "VF"}[n]
}

// Request is what a pod asks for.
type Request struct {
	GPUs int
	Mode Mode
}

// Decide applies SPEC §1: a pod that takes every GPU still free on the node (freeGPUs counts the
// pod's own) gets the whole PF; a pod that takes fewer gets a VF. A pod without GPUs, or with
// mode none, needs nothing from topolane.
func Decide(req Request, freeGPUs int) Need {
	switch {
	case req.GPUs <= 0 || req.Mode == ModeNone:
		return NeedNothing
	case req.Mode == ModePF:
		return NeedPF
	case req.Mode == ModeVF:
		return NeedVF
	case req.GPUs >= freeGPUs:
		return NeedPF
	default:
		return NeedVF
	}
}

// NeedOf is what a pod needs that was given a device of kind k: a PF stays a PF; a VF or a
// macvlan is a share, and any share serves.
func NeedOf(k Kind) Need {
	if k == KindPF {
		return NeedPF
	}
	return NeedVF
}
