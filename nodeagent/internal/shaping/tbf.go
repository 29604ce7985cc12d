package shaping

import (
	"fmt"
	"math"

	"github.com/vishvananda/netlink"
)

// TBF is one token bucket filter, in the kernel's units: bytes and bytes per second.
type TBF struct {
	Rate     uint64 `json:"rate"`               // bytes/s: the average
	Peak     uint64 `json:"peak,omitempty"`     // bytes/s; 0: none
	Burst    uint32 `json:"burst"`              // bytes the bucket holds at Rate
	Minburst uint32 `json:"minburst,omitempty"` // bytes the bucket holds at Peak
	Limit    uint32 `json:"limit"`              // bytes queued before drops
}

// Shape is the pair of filters a device gets; nil where a direction is not shaped.
type Shape struct {
	Egress  *TBF `json:"egress,omitempty"`
	Ingress *TBF `json:"ingress,omitempty"`
}

// The defaults (see README, "Bandwidth"):
//   - burst, unset: 10 ms of the average (what the shaper needs to keep the average against
//     timer slack), or with a peak one second of the average, so that a peak means something;
//     never below 10 frames;
//   - minburst, the bucket at the peak: 10 frames and 1 ms of the peak (one frame stalls TCP);
//   - limit, the queue: 25 ms at the fastest rate (as the CNI bandwidth plugin), at least
//     256 KiB so that a 64 KiB GSO packet and its followers fit.
const (
	defaultBurstTime     = 0.010
	defaultPeakBurstTime = 1.0
	minburstTime         = 0.001
	minburstFrames       = 10
	queueTime            = 0.025
	minLimit             = 256 << 10
	ethernetHeader       = 14
)

// Shape computes the filters of a device with the given MTU. Its errors are InvalidErrors: a
// burst below one frame (MTU + 14) or below rate/HZ.
func (l Limits) Shape(mtu int) (Shape, error) {
	return l.shape(mtu, KernelClock())
}

func (l Limits) shape(mtu int, clk Clock) (Shape, error) {
	var s Shape
	var err error
	if l.Egress.Average != 0 {
		if s.Egress, err = l.Egress.tbf(mtu, clk, egressKeys); err != nil {
			return Shape{}, err
		}
	}
	if l.Ingress.Average != 0 {
		if s.Ingress, err = l.Ingress.tbf(mtu, clk, ingressKeys); err != nil {
			return Shape{}, err
		}
	}
	return s, nil
}

func (d Direction) tbf(mtu int, clk Clock, k keys) (*TBF, error) {
	frame := uint64(mtu + ethernetHeader)
	rate, peak := d.Average/8, d.Peak/8
	least := max(frame, uint64(math.Ceil(float64(rate)/clk.HZ)))
	most := clk.MaxBurst(rate)
	if least > most {
		return nil, &InvalidError{Annotation: k.average, Value: fmt.Sprint(d.Average), Problem: fmt.Sprintf(
			"bit/s is too slow for this device's frames (MTU %d): tbf cannot hold one frame at this rate; ask for at least %d bit/s", mtu, uint64(math.Ceil(float64(least)/clk.MaxBufferSeconds()))*8)}
	}
	burst := d.Burst / 8
	if d.Burst == 0 {
		burst = defaultBurst(rate, peak, frame, least, most)
	} else if burst < least {
		burstKey := k.burst
		if d.burstKey != "" {
			burstKey = d.burstKey
		}
		return nil, &InvalidError{Annotation: burstKey, Value: fmt.Sprint(d.Burst), Problem: fmt.Sprintf(
			"bits is below the least burst this device shapes with, %d bytes (one frame of MTU %d + 14, and rate/HZ): at least %d bits", least, mtu, least*8)}
	}
	t := &TBF{Rate: rate, Burst: uint32(burst), Limit: limit(max(rate, peak))}
	if peak != 0 {
		t.Peak = peak
		t.Minburst = uint32(min(max(minburstFrames*frame, uint64(math.Ceil(float64(peak)*minburstTime))), math.MaxUint32))
	}
	return t, nil
}

func defaultBurst(rate, peak, frame, least, most uint64) uint64 {
	burstTime := defaultBurstTime
	if peak != 0 {
		burstTime = defaultPeakBurstTime
	}
	b := max(least, minburstFrames*frame, uint64(float64(rate)*burstTime))
	return max(min(b, most), least)
}

func limit(fastest uint64) uint32 {
	return uint32(min(max(uint64(float64(fastest)*queueTime), minLimit), math.MaxUint32))
}

// Clock is the kernel packet scheduler's clock, as /proc/net/psched tells tc and netlink.
type Clock struct {
	// TicksPerUsec: tbf's buffer is a uint32 of these (15.625 on every kernel since 2.6.31:
	// 64 ns ticks, so it holds 274.9 s).
	TicksPerUsec float64
	// HZ as tc means it: the timer rate, 1e9 with high-resolution timers.
	HZ float64
}

// KernelClock reads this kernel's clock through netlink.
func KernelClock() Clock {
	c := Clock{TicksPerUsec: netlink.TickInUsec(), HZ: netlink.Hz()}
	if c.TicksPerUsec == 0 { // /proc/net/psched unreadable: what every current kernel says
		c.TicksPerUsec = 15.625
	}
	if c.HZ == 0 {
		c.HZ = 100
	}
	return c
}

// Ticks is tbf's buffer for size bytes at rate bytes/s, in the kernel's ticks. It is what
// netlink.Xmittime computes, but without rounding down to a whole microsecond first (at 10 Gbit/s
// Xmittime turns a 1514-byte burst into 15 ticks, 1200 bytes, and tbf drops every full frame):
// it rounds up, so the kernel's burst is at least size. And it refuses what Xmittime would
// silently wrap: ok is false when the time does not fit the 32-bit buffer.
func (c Clock) Ticks(rate, size uint64) (ticks uint32, ok bool) {
	if rate == 0 {
		return 0, false
	}
	t := math.Ceil(float64(size) * 1e6 * c.TicksPerUsec / float64(rate))
	if t > math.MaxUint32 {
		return 0, false
	}
	return uint32(t), true
}

// Size is the burst, in bytes, that the kernel derives from a buffer of ticks at rate bytes/s
// (tbf's max_size): at least what Ticks was given.
func (c Clock) Size(rate uint64, ticks uint32) uint64 {
	return uint64(float64(ticks) / (1e6 * c.TicksPerUsec) * float64(rate))
}

// MaxBufferSeconds is how long tbf's buffer can last.
func (c Clock) MaxBufferSeconds() float64 { return math.MaxUint32 / c.TicksPerUsec / 1e6 }

// MaxBurst is the largest burst, in bytes and below 4 GiB, whose buffer at rate bytes/s fits.
func (c Clock) MaxBurst(rate uint64) uint64 {
	if _, ok := c.Ticks(rate, math.MaxUint32); ok {
		return math.MaxUint32
	}
	lo, hi := uint64(0), uint64(math.MaxUint32) // Ticks(lo) fits, Ticks(hi) does not
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if _, ok := c.Ticks(rate, mid); ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}
