package shaping

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// clock is what every current kernel says: 64 ns ticks, high-resolution timers.
var clock = Clock{TicksPerUsec: 15.625, HZ: 1e9}

func TestParse(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		rt          *RuntimeBandwidth
		want        Limits
	}{
		{name: "nothing asked", want: Limits{}},
		{name: "averages", annotations: map[string]string{EgressBandwidth: "10M", IngressBandwidth: "1G"},
			want: Limits{Egress: Direction{Average: 10_000_000}, Ingress: Direction{Average: 1_000_000_000}}},
		{name: "binary suffixes and fractions", annotations: map[string]string{EgressBandwidth: "1.5Mi", IngressBandwidth: "1k"},
			want: Limits{Egress: Direction{Average: 1_572_864}, Ingress: Direction{Average: 1000}}},
		{name: "the bounds kubelet accepts", annotations: map[string]string{EgressBandwidth: "1P", IngressBandwidth: "1000"},
			want: Limits{Egress: Direction{Average: MaxRate}, Ingress: Direction{Average: MinRate}}},
		{name: "peaks and bursts", annotations: map[string]string{
			EgressBandwidth: "20M", EgressPeak: "100M", EgressBurst: "40M",
			IngressBandwidth: "50M", IngressPeak: "200M", IngressBurst: "8Mi"},
			want: Limits{Egress: Direction{Average: 20_000_000, Peak: 100_000_000, Burst: 40_000_000},
				Ingress: Direction{Average: 50_000_000, Peak: 200_000_000, Burst: 8 << 20}}},
		{name: "containerd's default burst is unset", annotations: map[string]string{EgressBandwidth: "10M"},
			rt:   &RuntimeBandwidth{EgressRate: 10_000_000, EgressBurst: 4294967295},
			want: Limits{Egress: Direction{Average: 10_000_000}}},
		{name: "CRI-O's and dockershim's default bursts are unset",
			rt:   &RuntimeBandwidth{EgressRate: 10_000_000, EgressBurst: 34359738359, IngressRate: 5_000_000, IngressBurst: 2147483647},
			want: Limits{Egress: Direction{Average: 10_000_000}, Ingress: Direction{Average: 5_000_000}}},
		{name: "a runtime's own burst counts", rt: &RuntimeBandwidth{EgressRate: 10_000_000, EgressBurst: 16_000_000},
			want: Limits{Egress: Direction{Average: 10_000_000, Burst: 16_000_000}}},
		{name: "annotations win over the runtime", annotations: map[string]string{EgressBandwidth: "10M", EgressBurst: "8M"},
			rt:   &RuntimeBandwidth{EgressRate: 30_000_000, EgressBurst: 16_000_000},
			want: Limits{Egress: Direction{Average: 10_000_000, Burst: 8_000_000}}},
		{name: "other annotations are ignored", annotations: map[string]string{"topolane.io/nic": "vf"}, want: Limits{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse(tt.annotations, tt.rt, clock)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreUnexported(Direction{})); diff != "" {
				t.Errorf("limits (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		rt          *RuntimeBandwidth
		want        []string // each error, annotation first
	}{
		{name: "not a quantity", annotations: map[string]string{EgressBandwidth: "10Mbit"},
			want: []string{`kubernetes.io/egress-bandwidth: "10Mbit" is not a quantity: write bits per second, like 10M or 25G`}},
		{name: "below 1k", annotations: map[string]string{IngressBandwidth: "999"},
			want: []string{`kubernetes.io/ingress-bandwidth: "999" is below 1k: write bits per second between 1k and 1P`}},
		{name: "negative", annotations: map[string]string{IngressBandwidth: "-10M"},
			want: []string{`kubernetes.io/ingress-bandwidth: "-10M" is below 1k`}},
		{name: "above 1P", annotations: map[string]string{EgressBandwidth: "1001T"},
			want: []string{`kubernetes.io/egress-bandwidth: "1001T" is above 1P`}},
		{name: "far above 1P", annotations: map[string]string{EgressBandwidth: "100E"},
			want: []string{`kubernetes.io/egress-bandwidth: "100E" is above 1P`}},
		{name: "a runtime's rate out of range", rt: &RuntimeBandwidth{IngressRate: 10},
			want: []string{`runtimeConfig.bandwidth.ingressRate: "10" is below 1k`}},
		{name: "a peak without an average", annotations: map[string]string{EgressPeak: "100M"},
			want: []string{`topolane.io/egress-peak-bandwidth: "100M" needs an average: set kubernetes.io/egress-bandwidth too`}},
		{name: "a peak at the average", annotations: map[string]string{EgressBandwidth: "100M", EgressPeak: "100M"},
			want: []string{`topolane.io/egress-peak-bandwidth: "100M" is not above the average 100000000 bit/s (kubernetes.io/egress-bandwidth): set a peak above the average, or none`}},
		{name: "a peak below the average", annotations: map[string]string{IngressBandwidth: "1G", IngressPeak: "500M"},
			want: []string{`topolane.io/ingress-peak-bandwidth: "500M" is not above the average`}},
		{name: "a peak above by less than a byte per second (the kernel's unit)", annotations: map[string]string{IngressBandwidth: "8000", IngressPeak: "8007"},
			want: []string{`topolane.io/ingress-peak-bandwidth: "8007" is not above the average 8000 bit/s`}},
		{name: "a bad peak", annotations: map[string]string{EgressBandwidth: "10M", EgressPeak: "fast"},
			want: []string{`topolane.io/egress-peak-bandwidth: "fast" is not a quantity`}},
		{name: "a burst without an average", annotations: map[string]string{IngressBurst: "8M"},
			want: []string{`topolane.io/ingress-burst: "8M" needs an average: set kubernetes.io/ingress-bandwidth too`}},
		{name: "a zero burst", annotations: map[string]string{EgressBandwidth: "10M", EgressBurst: "0"},
			want: []string{`topolane.io/egress-burst: "0" is not positive: write bits, like 80M (10 MB)`}},
		{name: "a burst of 4 GiB", annotations: map[string]string{EgressBandwidth: "10G", EgressBurst: "32Gi"},
			want: []string{`topolane.io/egress-burst: "32Gi" is 4 GiB or more: tbf counts a burst in 32 bits of bytes; at most 34359738360 bits`}},
		{name: "a runtime's burst of 4 GiB", rt: &RuntimeBandwidth{EgressRate: 10_000_000_000, EgressBurst: 8 << 32},
			want: []string{`runtimeConfig.bandwidth.egressBurst: "34359738368" is 4 GiB or more`}},
		{name: "a burst longer than tbf's buffer", annotations: map[string]string{EgressBandwidth: "1M", EgressBurst: "300M"},
			want: []string{`topolane.io/egress-burst: "300M" lasts 300 s at the average 1000000 bit/s (kubernetes.io/egress-bandwidth): tbf's buffer holds at most 274.9 s of it (274877904 bits)`}},
		{name: "every problem at once", annotations: map[string]string{EgressBandwidth: "x", IngressPeak: "1M", IngressBurst: "y"},
			want: []string{
				`topolane.io/ingress-peak-bandwidth: "1M" needs an average`,
				`topolane.io/ingress-burst: "y" is not a quantity`,
				`kubernetes.io/egress-bandwidth: "x" is not a quantity`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(tt.annotations, tt.rt, clock)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			var inv *InvalidError
			if !errors.As(err, &inv) || !strings.HasPrefix(tt.want[0], inv.Annotation+": ") {
				t.Errorf("first error names %q, want the annotation of %q", inv.Annotation, tt.want[0])
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(tt.want) {
				t.Fatalf("errors:\n%s\nwant %d", err, len(tt.want))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("error %d:\n%s\nwant it to start with\n%s", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestBurstBoundIsTheBufferBound(t *testing.T) {
	// The longest burst Parse lets through at 1 Mbit/s fits tbf's buffer; one byte more does not.
	rate := uint64(125_000)
	most := clock.MaxBurst(rate)
	if _, ok := clock.Ticks(rate, most); !ok {
		t.Errorf("MaxBurst %d does not fit", most)
	}
	if _, ok := clock.Ticks(rate, most+1); ok {
		t.Errorf("MaxBurst %d + 1 fits too", most)
	}
	ok := map[string]string{EgressBandwidth: "1M", EgressBurst: "274877904"}
	if _, err := parse(ok, nil, clock); err != nil {
		t.Errorf("the longest burst: %v", err)
	}
	ok[EgressBurst] = "274877912"
	if _, err := parse(ok, nil, clock); err == nil {
		t.Error("a burst one byte longer is accepted")
	}
}
