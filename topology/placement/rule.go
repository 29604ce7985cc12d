// Package placement holds topolane's decisions as pure functions: what a pod needs (a whole PF
// or a share of each of its GPUs' rails, or nothing), whether a node can give it and why not, and
// which devices serve it best. The extender, the node agent and the benchmarks all call these, so
// they cannot disagree.
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

// NICs is a pod's `topolane.io/nics` annotation: how many devices it gets.
type NICs string

const (
	NICsRails NICs = "rails" // one device per distinct rail of its GPUs (NCCL drives one NIC per GPU)
	NICsOne   NICs = "one"   // a single device nearest its GPUs
)

// ParseNICs reads the annotation's value; empty means rails.
func ParseNICs(s string) (NICs, error) {
	switch n := NICs(s); n {
	case "":
		return NICsRails, nil
	case NICsRails, NICsOne:
		return n, nil
	}
	return "", fmt.Errorf("topolane.io/nics is %q: want rails or one", s)
}

// GDR is a pod's `topolane.io/gdr` annotation. NCCL uses GPUDirect RDMA only when the path from
// a GPU to its NIC is PXB or nearer (NCCL's ncclTopoCheckGdr).
type GDR string

const (
	GDRPreferred GDR = "preferred" // nodes where the pod's GPUs have such a NIC score higher
	GDRRequired  GDR = "required"  // only such nodes pass
	GDROff       GDR = "off"       // the pod does not care
)

// ParseGDR reads the annotation's value; empty means preferred.
func ParseGDR(s string) (GDR, error) {
	switch g := GDR(s); g {
	case "":
		return GDRPreferred, nil
	case GDRPreferred, GDRRequired, GDROff:
		return g, nil
	}
	return "", fmt.Errorf("topolane.io/gdr is %q: want required, preferred or off", s)
}

// Need is what a pod must get on a node, on each of its rails.
type Need uint8

const (
	NeedNothing Need = iota
	NeedPF           // a whole physical NIC
	NeedVF           // a share of a NIC that nobody holds whole: a VF, else a macvlan
)

func (n Need) String() string {
	return [...]string{"nothing", "PF", "VF"}[n]
}

// Request is what a pod asks for. The zero values of Mode, NICs and GDR are their defaults.
type Request struct {
	GPUs int
	Mode Mode
	NICs NICs
	GDR  GDR
}

// normal fills the defaults in.
func (r Request) normal() Request {
	if r.Mode == "" {
		r.Mode = ModeAuto
	}
	if r.NICs == "" {
		r.NICs = NICsRails
	}
	if r.GDR == "" {
		r.GDR = GDRPreferred
	}
	return r
}

// Decide applies SPEC §1: a pod that takes every GPU still free on the node (freeGPUs counts the
// pod's own) gets the whole PF of each of its rails; a pod that takes fewer gets shares. A pod
// without GPUs, or with mode none, needs nothing from topolane.
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
