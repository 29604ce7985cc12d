package shaping

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
)

func TestShape(t *testing.T) {
	tests := []struct {
		name  string
		l     Limits
		mtu   int
		clock Clock
		want  Shape
	}{
		{name: "an average alone: 10 ms of burst, 256 KiB of queue",
			l: Limits{Egress: Direction{Average: 20_000_000}}, mtu: 1500,
			want: Shape{Egress: &TBF{Rate: 2_500_000, Burst: 25_000, Limit: 256 << 10}}},
		{name: "a slow average: ten frames of burst",
			l: Limits{Ingress: Direction{Average: 1_000_000}}, mtu: 9000,
			want: Shape{Ingress: &TBF{Rate: 125_000, Burst: 90_140, Limit: 256 << 10}}},
		{name: "a peak: a second of the average at it, ten frames at the peak, 25 ms of queue at the peak",
			l: Limits{Egress: Direction{Average: 20_000_000, Peak: 100_000_000}}, mtu: 1500,
			want: Shape{Egress: &TBF{Rate: 2_500_000, Peak: 12_500_000, Burst: 2_500_000, Minburst: 15_140, Limit: 312_500}}},
		{name: "a fast peak: 1 ms at the peak",
			l: Limits{Egress: Direction{Average: 10_000_000_000, Peak: 25_000_000_000}}, mtu: 1500,
			want: Shape{Egress: &TBF{Rate: 1_250_000_000, Peak: 3_125_000_000, Burst: 1_250_000_000, Minburst: 3_125_000, Limit: 78_125_000}}},
		{name: "a burst is below 4 GiB",
			l: Limits{Egress: Direction{Average: 100_000_000_000, Peak: 200_000_000_000}}, mtu: 1500,
			want: Shape{Egress: &TBF{Rate: 12_500_000_000, Peak: 25_000_000_000, Burst: math.MaxUint32, Minburst: 25_000_000, Limit: 625_000_000}}},
		{name: "a burst asked",
			l: Limits{Egress: Direction{Average: 20_000_000, Peak: 100_000_000, Burst: 40_000_000}, Ingress: Direction{Average: 50_000_000, Burst: 12112}}, mtu: 1500,
			want: Shape{
				Egress:  &TBF{Rate: 2_500_000, Peak: 12_500_000, Burst: 5_000_000, Minburst: 15_140, Limit: 312_500},
				Ingress: &TBF{Rate: 6_250_000, Burst: 1514, Limit: 262_144},
			}},
		{name: "HZ 100: a tick of the average at least",
			l: Limits{Egress: Direction{Average: 10_000_000_000}}, mtu: 1500, clock: Clock{TicksPerUsec: 15.625, HZ: 100},
			want: Shape{Egress: &TBF{Rate: 1_250_000_000, Burst: 12_500_000, Limit: 31_250_000}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.clock == (Clock{}) {
				tt.clock = clock
			}
			got, err := tt.l.shape(tt.mtu, tt.clock)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("shape (-want +got):\n%s", diff)
			}
			for _, tbf := range []*TBF{got.Egress, got.Ingress} {
				if tbf == nil {
					continue
				}
				if _, ok := tt.clock.Ticks(tbf.Rate, uint64(tbf.Burst)); !ok {
					t.Errorf("burst %d at %d B/s does not fit tbf's buffer", tbf.Burst, tbf.Rate)
				}
			}
		})
	}
}

func TestShapeRefuses(t *testing.T) {
	tests := []struct {
		name  string
		l     Limits
		mtu   int
		clock Clock
		want  string
	}{
		{name: "a burst below a frame", l: Limits{Egress: Direction{Average: 10_000_000, Burst: 8000}}, mtu: 1500,
			want: `topolane.io/egress-burst: "8000" bits is below the least burst this device shapes with, 1514 bytes (one frame of MTU 1500 + 14, and rate/HZ): at least 12112 bits`},
		{name: "a burst below a jumbo frame", l: Limits{Ingress: Direction{Average: 10_000_000, Burst: 12112}}, mtu: 9000,
			want: `topolane.io/ingress-burst: "12112" bits is below the least burst this device shapes with, 9014 bytes`},
		{name: "a burst below rate/HZ", l: Limits{Egress: Direction{Average: 10_000_000_000, Burst: 80_000_000}}, mtu: 1500,
			clock: Clock{TicksPerUsec: 15.625, HZ: 100},
			want:  `topolane.io/egress-burst: "80000000" bits is below the least burst this device shapes with, 12500000 bytes`},
		{name: "an average too slow for the frames", l: Limits{Egress: Direction{Average: 1000}}, mtu: 65536,
			want: `kubernetes.io/egress-bandwidth: "1000" bit/s is too slow for this device's frames (MTU 65536): tbf cannot hold one frame at this rate; ask for at least 1912 bit/s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.clock == (Clock{}) {
				tt.clock = clock
			}
			_, err := tt.l.shape(tt.mtu, tt.clock)
			if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant one matching ErrInvalid and starting with\n%s", err, tt.want)
			}
		})
	}
}

func TestShapeNamesTheRuntimesBurst(t *testing.T) {
	l, err := parse(nil, &RuntimeBandwidth{EgressRate: 10_000_000, EgressBurst: 800}, clock)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.shape(1500, clock)
	var inv *InvalidError
	if !errors.As(err, &inv) || inv.Annotation != "runtimeConfig.bandwidth.egressBurst" {
		t.Errorf("error %v names %q, want runtimeConfig.bandwidth.egressBurst", err, inv)
	}
}

// Ticks is the shortest buffer that holds the burst, never shorter than netlink.Xmittime's.
func TestTicks(t *testing.T) {
	clk := KernelClock()
	for _, rate := range []uint64{125, 125_000, 2_500_000, 1_250_000_000, 125_000_000_000_000} {
		for _, size := range []uint64{1514, 25_000, 1 << 20, clk.MaxBurst(rate)} {
			got, ok := clk.Ticks(rate, size)
			if ok != (size <= clk.MaxBurst(rate)) {
				t.Errorf("Ticks(%d, %d) fits: %v, but MaxBurst is %d", rate, size, ok, clk.MaxBurst(rate))
			}
			if !ok {
				continue
			}
			if x := netlink.Xmittime(rate, uint32(size)); got < x {
				t.Errorf("Ticks(%d, %d) = %d, below Xmittime's %d", rate, size, got, x)
			}
			if back := clk.Size(rate, got); back < size {
				t.Errorf("Ticks(%d, %d) = %d holds only %d bytes", rate, size, got, back)
			}
			if back := clk.Size(rate, got-1); got > 0 && back >= size {
				t.Errorf("Ticks(%d, %d) = %d is not the shortest: %d ticks hold %d bytes", rate, size, got, got-1, back)
			}
		}
	}
}
