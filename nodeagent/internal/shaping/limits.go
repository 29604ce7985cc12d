// Package shaping limits a pod's bandwidth on each device topolane gives it, inside the pod's
// network namespace: egress with a tbf at the device's root, ingress with an ingress qdisc whose
// match-all u32 filter redirects to an ifb in the same namespace, shaped by the same kind of tbf.
// A VF also gets its hardware transmit ceiling through its PF, the only limit RDMA verbs obey.
//
// The flow for one device: Parse the pod's annotations into Limits (once per pod); Prepare a
// Plan for the device (reads its MTU); journal the Plan; Apply it. DEL and a restart call Remove
// with the journaled Plan alone; CHECK calls Check. For a VF, PrepareVFCeiling, journal,
// ApplyVFCeiling; DEL calls RestoreVFCeiling.
package shaping

import (
	"errors"
	"fmt"
	"math"

	"k8s.io/apimachinery/pkg/api/resource"
)

// The pod's annotations. Rates are bits per second and bursts bits, in Kubernetes quantity
// syntax ("10M" is 10,000,000), as kubelet and the CNI bandwidth plugin read them.
const (
	IngressBandwidth = "kubernetes.io/ingress-bandwidth"
	EgressBandwidth  = "kubernetes.io/egress-bandwidth"
	IngressPeak      = "topolane.io/ingress-peak-bandwidth"
	EgressPeak       = "topolane.io/egress-peak-bandwidth"
	IngressBurst     = "topolane.io/ingress-burst"
	EgressBurst      = "topolane.io/egress-burst"
)

// The range kubelet accepts for an average (pkg/util/bandwidth), inclusive; a peak has the same.
const (
	MinRate = 1_000                 // 1k bit/s
	MaxRate = 1_000_000_000_000_000 // 1P bit/s
)

// Direction is what a pod asks for one direction, in bits; zero means not asked.
type Direction struct {
	Average uint64 `json:"average,omitempty"` // bit/s
	Peak    uint64 `json:"peak,omitempty"`    // bit/s
	Burst   uint64 `json:"burst,omitempty"`   // bits

	burstKey string // where Burst came from, for Prepare's errors
}

// Limits is what a pod asks for; each device it gets is shaped so.
type Limits struct {
	Ingress Direction `json:"ingress"`
	Egress  Direction `json:"egress"`
}

// IsZero says the pod asks for no shaping at all.
func (l Limits) IsZero() bool { return l.Ingress.Average == 0 && l.Egress.Average == 0 }

// RuntimeBandwidth is the CNI "bandwidth" capability a runtime passes in runtimeConfig
// (bit/s and bits), for a network config that asks for it.
type RuntimeBandwidth struct {
	IngressRate  uint64 `json:"ingressRate,omitempty"`
	IngressBurst uint64 `json:"ingressBurst,omitempty"`
	EgressRate   uint64 `json:"egressRate,omitempty"`
	EgressBurst  uint64 `json:"egressBurst,omitempty"`
}

// runtimeDefaultBursts are the bursts runtimes pass when the pod said none (Kubernetes has no
// burst annotation): they mean "unset", not "let 512 MiB through at line rate"
// (kubernetes/kubernetes#90838).
var runtimeDefaultBursts = map[uint64]string{
	math.MaxUint32:       "containerd (512 MiB)",
	math.MaxInt32:        "kubelet's dockershim (256 MiB)",
	math.MaxUint32*8 - 1: "CRI-O (4 GiB)",
	math.MaxUint32 * 8:   "CRI-O before 1.20 (4 GiB)",
}

// ErrInvalid is matched (errors.Is) by every error that refuses what a pod asks: the attacher
// answers it with CNI error code 7 (bad network config).
var ErrInvalid = errors.New("invalid bandwidth")

// InvalidError says which annotation (or runtime config field) is wrong, and what is allowed.
type InvalidError struct {
	Annotation string
	Value      string
	Problem    string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("%s: %q %s", e.Annotation, e.Value, e.Problem)
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// keys names the sources of one direction.
type keys struct {
	average, peak, burst string
	rtRate, rtBurst      string
}

var (
	ingressKeys = keys{IngressBandwidth, IngressPeak, IngressBurst, "runtimeConfig.bandwidth.ingressRate", "runtimeConfig.bandwidth.ingressBurst"}
	egressKeys  = keys{EgressBandwidth, EgressPeak, EgressBurst, "runtimeConfig.bandwidth.egressRate", "runtimeConfig.bandwidth.egressBurst"}
)

// Parse reads what a pod asks from its annotations and, when the network config has the
// capability, the runtime's bandwidth entry rt (may be nil). Annotations win; the runtime's
// default bursts count as unset. Every problem is reported, joined; each matches ErrInvalid.
// Bounds that depend on a device's MTU are checked by Prepare.
func Parse(annotations map[string]string, rt *RuntimeBandwidth) (Limits, error) {
	return parse(annotations, rt, KernelClock())
}

func parse(annotations map[string]string, rt *RuntimeBandwidth, clk Clock) (Limits, error) {
	if rt == nil {
		rt = &RuntimeBandwidth{}
	}
	var errs []error
	in := parseDirection(annotations, rt.IngressRate, rt.IngressBurst, ingressKeys, clk, &errs)
	out := parseDirection(annotations, rt.EgressRate, rt.EgressBurst, egressKeys, clk, &errs)
	if len(errs) > 0 {
		return Limits{}, errors.Join(errs...)
	}
	return Limits{Ingress: in, Egress: out}, nil
}

func parseDirection(annotations map[string]string, rtRate, rtBurst uint64, k keys, clk Clock, errs *[]error) Direction {
	var d Direction
	avgKey := k.average
	if s, ok := annotations[k.average]; ok {
		d.Average = parseRate(k.average, s, errs)
	} else if rtRate != 0 {
		avgKey = k.rtRate
		d.Average = checkRate(k.rtRate, fmt.Sprint(rtRate), rtRate, errs)
	}
	if s, ok := annotations[k.peak]; ok {
		d.Peak = parseRate(k.peak, s, errs)
		checkPeak(d, k, avgKey, s, errs)
	}
	burstKey, burstText := k.burst, annotations[k.burst]
	if _, ok := annotations[k.burst]; ok {
		d.Burst = parseBurst(k.burst, burstText, errs)
	} else if _, isDefault := runtimeDefaultBursts[rtBurst]; rtBurst != 0 && !isDefault {
		burstKey, burstText, d.Burst = k.rtBurst, fmt.Sprint(rtBurst), rtBurst
	}
	if d.Burst != 0 {
		d.burstKey = burstKey
		checkBurst(d, burstKey, burstText, avgKey, clk, errs)
	}
	return d
}

func invalid(errs *[]error, key, value, format string, args ...any) {
	*errs = append(*errs, &InvalidError{Annotation: key, Value: value, Problem: fmt.Sprintf(format, args...)})
}

// parseRate reads a rate in bit/s within [MinRate, MaxRate].
func parseRate(key, s string, errs *[]error) uint64 {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		invalid(errs, key, s, "is not a quantity: write bits per second, like 10M or 25G")
		return 0
	}
	if q.Cmp(*resource.NewQuantity(MaxRate, resource.DecimalSI)) > 0 {
		invalid(errs, key, s, "is above 1P: write bits per second between 1k and 1P")
		return 0
	}
	return checkRate(key, s, uint64(max(q.Value(), 0)), errs)
}

func checkRate(key, s string, v uint64, errs *[]error) uint64 {
	switch {
	case v < MinRate:
		invalid(errs, key, s, "is below 1k: write bits per second between 1k and 1P")
		return 0
	case v > MaxRate:
		invalid(errs, key, s, "is above 1P: write bits per second between 1k and 1P")
		return 0
	}
	return v
}

func checkPeak(d Direction, k keys, avgKey, s string, errs *[]error) {
	switch {
	case d.Peak == 0: // already reported
	case d.Average == 0:
		invalid(errs, k.peak, s, "needs an average: set %s too", k.average)
	case d.Peak/8 <= d.Average/8:
		invalid(errs, k.peak, s, "is not above the average %d bit/s (%s): set a peak above the average, or none", d.Average, avgKey)
	}
}

// parseBurst reads a burst in bits.
func parseBurst(key, s string, errs *[]error) uint64 {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		invalid(errs, key, s, "is not a quantity: write bits, like 80M (10 MB)")
		return 0
	}
	if q.Sign() <= 0 {
		invalid(errs, key, s, "is not positive: write bits, like 80M (10 MB)")
		return 0
	}
	if q.Cmp(*resource.NewQuantity(maxBurstBits, resource.BinarySI)) >= 0 {
		invalid(errs, key, s, "is 4 GiB or more: tbf counts a burst in 32 bits of bytes; at most %d bits", maxBurstBits-8)
		return 0
	}
	return uint64(q.Value())
}

// maxBurstBits is 4 GiB in bits.
const maxBurstBits = 8 << 32

func checkBurst(d Direction, key, s, avgKey string, clk Clock, errs *[]error) {
	if d.Average == 0 {
		invalid(errs, key, s, "needs an average: set %s too", avgKey)
		return
	}
	if d.Burst >= maxBurstBits {
		invalid(errs, key, s, "is 4 GiB or more: tbf counts a burst in 32 bits of bytes; at most %d bits", maxBurstBits-8)
		return
	}
	rate := d.Average / 8
	if limit := clk.MaxBurst(rate); d.Burst/8 > limit {
		invalid(errs, key, s, "lasts %.0f s at the average %d bit/s (%s): tbf's buffer holds at most %.1f s of it (%d bits)",
			float64(d.Burst/8)/float64(rate), d.Average, avgKey, clk.MaxBufferSeconds(), limit*8)
	}
}
