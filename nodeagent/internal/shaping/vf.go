package shaping

import (
	"errors"
	"fmt"
	"math"

	"golang.org/x/sys/unix"
)

// VFRates is the part of the kernel a VF's hardware ceiling needs (netbind.Kernel has it).
type VFRates interface {
	// SetVFRate sets VF vf's transmit rate limits through its PF, in Mbit/s (0: none).
	SetVFRate(pf string, vf int, minMbps, maxMbps int) error
	// VFRate reads them.
	VFRate(pf string, vf int) (minMbps, maxMbps int, err error)
}

// VFCeiling is a VF's hardware transmit ceiling: what it was (restored on DEL) and what it is
// set to. Journal it before ApplyVFCeiling.
type VFCeiling struct {
	PF          string `json:"pf"` // the PF's netdev in the host namespace
	VF          int    `json:"vf"`
	MinMbps     int    `json:"minMbps"`
	MaxMbps     int    `json:"maxMbps"`
	OrigMinMbps int    `json:"origMinMbps"`
	OrigMaxMbps int    `json:"origMaxMbps"`
	// Unsupported: ApplyVFCeiling warned ErrVFRateUnsupported; set it and journal it, so that a
	// CHECK, even after a restart, does not expect a ceiling.
	Unsupported bool `json:"unsupported,omitempty"`
}

// ErrVFRateUnsupported is matched by ApplyVFCeiling's error where the PF's driver cannot limit a
// VF's rate: a warning for the pod's events, not a failure; tc alone shapes the VF then.
var ErrVFRateUnsupported = errors.New("the PF's driver cannot limit a VF's rate (EOPNOTSUPP): only the kernel's qdiscs shape this VF, and RDMA traffic is not limited")

// CeilingMbps is the VF ceiling for these limits: the egress peak, else the egress average, in
// Mbit/s rounded up; 0 when egress is not limited. A VF's hardware limits only what it sends.
func (l Limits) CeilingMbps() int {
	top := max(l.Egress.Peak, l.Egress.Average)
	return int(min((top+999_999)/1_000_000, math.MaxInt32))
}

// PrepareVFCeiling reads VF vf's rates and computes its ceiling; ok is false when the limits ask
// for none (egress not limited). It changes nothing. The guaranteed minimum is kept unless it is
// above the new ceiling, where it is lowered to it.
func PrepareVFCeiling(k VFRates, pf string, vf int, l Limits) (c VFCeiling, ok bool, err error) {
	ceiling := l.CeilingMbps()
	if ceiling == 0 {
		return VFCeiling{}, false, nil
	}
	minMbps, maxMbps, err := k.VFRate(pf, vf)
	if err != nil {
		return VFCeiling{}, false, fmt.Errorf("reading VF %d's rates on %s: %w", vf, pf, err)
	}
	return VFCeiling{PF: pf, VF: vf, MinMbps: min(minMbps, ceiling), MaxMbps: ceiling, OrigMinMbps: minMbps, OrigMaxMbps: maxMbps}, true, nil
}

// ApplyVFCeiling sets the ceiling. An error matching ErrVFRateUnsupported is a warning.
func ApplyVFCeiling(k VFRates, c VFCeiling) error {
	err := k.SetVFRate(c.PF, c.VF, c.MinMbps, c.MaxMbps)
	if errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("VF %d of %s: %w", c.VF, c.PF, ErrVFRateUnsupported)
	}
	if err != nil {
		return fmt.Errorf("setting VF %d's rate on %s to %d Mbit/s: %w", c.VF, c.PF, c.MaxMbps, err)
	}
	return nil
}

// RestoreVFCeiling puts the original rates back; idempotent, and where the driver cannot limit
// rates there is nothing to restore. Call it only while the pod still owns the VF.
func RestoreVFCeiling(k VFRates, c VFCeiling) error {
	err := k.SetVFRate(c.PF, c.VF, c.OrigMinMbps, c.OrigMaxMbps)
	if err == nil || errors.Is(err, unix.EOPNOTSUPP) {
		return nil
	}
	return fmt.Errorf("restoring VF %d's rate on %s to %d/%d Mbit/s: %w", c.VF, c.PF, c.OrigMinMbps, c.OrigMaxMbps, err)
}

// CheckVFCeiling lists the differences between the VF's rates and the ceiling.
func CheckVFCeiling(k VFRates, c VFCeiling) ([]string, error) {
	if c.Unsupported {
		return nil, nil
	}
	minMbps, maxMbps, err := k.VFRate(c.PF, c.VF)
	if err != nil {
		return nil, fmt.Errorf("reading VF %d's rates on %s: %w", c.VF, c.PF, err)
	}
	var out []string
	if maxMbps != c.MaxMbps {
		out = append(out, fmt.Sprintf("VF %d of %s: max_tx_rate is %d Mbit/s, asked %d", c.VF, c.PF, maxMbps, c.MaxMbps))
	}
	if minMbps != c.MinMbps {
		out = append(out, fmt.Sprintf("VF %d of %s: min_tx_rate is %d Mbit/s, asked %d", c.VF, c.PF, minMbps, c.MinMbps))
	}
	return out, nil
}
