package shaping

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// fakeVFs is a PF's VF rate limiter: the rates of each VF, every call, an error for each method.
type fakeVFs struct {
	rates          map[int][2]int
	calls          []string
	setErr, getErr error
}

func (f *fakeVFs) SetVFRate(pf string, vf int, minMbps, maxMbps int) error {
	f.calls = append(f.calls, fmt.Sprintf("set %s %d %d %d", pf, vf, minMbps, maxMbps))
	if f.setErr != nil {
		return f.setErr
	}
	f.rates[vf] = [2]int{minMbps, maxMbps}
	return nil
}

func (f *fakeVFs) VFRate(pf string, vf int) (int, int, error) {
	f.calls = append(f.calls, fmt.Sprintf("get %s %d", pf, vf))
	r := f.rates[vf]
	return r[0], r[1], f.getErr
}

func TestVFCeiling(t *testing.T) {
	tests := []struct {
		name   string
		egress Direction
		orig   [2]int
		want   VFCeiling
	}{
		{name: "the peak", egress: Direction{Average: 20_000_000, Peak: 100_000_000},
			want: VFCeiling{PF: "pf0", VF: 3, MaxMbps: 100}},
		{name: "else the average, rounded up", egress: Direction{Average: 1_500_000},
			want: VFCeiling{PF: "pf0", VF: 3, MaxMbps: 2}},
		{name: "1 kbit/s is 1 Mbit/s (0 would mean no limit)", egress: Direction{Average: 1000},
			want: VFCeiling{PF: "pf0", VF: 3, MaxMbps: 1}},
		{name: "the original rates are kept for DEL", egress: Direction{Average: 10_000_000_000}, orig: [2]int{100, 40_000},
			want: VFCeiling{PF: "pf0", VF: 3, MinMbps: 100, MaxMbps: 10_000, OrigMinMbps: 100, OrigMaxMbps: 40_000}},
		{name: "a guaranteed minimum above the ceiling is lowered to it", egress: Direction{Average: 50_000_000}, orig: [2]int{200, 0},
			want: VFCeiling{PF: "pf0", VF: 3, MinMbps: 50, MaxMbps: 50, OrigMinMbps: 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &fakeVFs{rates: map[int][2]int{3: tt.orig}}
			c, ok, err := PrepareVFCeiling(k, "pf0", 3, Limits{Egress: tt.egress, Ingress: Direction{Average: 1000}})
			if err != nil || !ok {
				t.Fatalf("PrepareVFCeiling: %v, %v", ok, err)
			}
			if diff := cmp.Diff(tt.want, c); diff != "" {
				t.Fatalf("ceiling (-want +got):\n%s", diff)
			}
			if diffs, _ := CheckVFCeiling(k, c); tt.orig[1] != c.MaxMbps && len(diffs) == 0 {
				t.Error("CheckVFCeiling finds nothing before the ceiling is set")
			}
			if err := ApplyVFCeiling(k, c); err != nil {
				t.Fatal(err)
			}
			if got := k.rates[3]; got != [2]int{c.MinMbps, c.MaxMbps} {
				t.Errorf("VF rates %v after ApplyVFCeiling, want %d/%d", got, c.MinMbps, c.MaxMbps)
			}
			if diffs, err := CheckVFCeiling(k, c); err != nil || len(diffs) != 0 {
				t.Errorf("CheckVFCeiling: %v, %v", diffs, err)
			}
			for range 2 { // idempotent
				if err := RestoreVFCeiling(k, c); err != nil {
					t.Fatal(err)
				}
			}
			if got := k.rates[3]; got != tt.orig {
				t.Errorf("VF rates %v after RestoreVFCeiling, want the original %v", got, tt.orig)
			}
		})
	}
}

func TestVFCeilingNotAsked(t *testing.T) {
	k := &fakeVFs{rates: map[int][2]int{}}
	_, ok, err := PrepareVFCeiling(k, "pf0", 1, Limits{Ingress: Direction{Average: 10_000_000}})
	if ok || err != nil || len(k.calls) != 0 {
		t.Errorf("ingress only: ok %v, err %v, calls %v; want no ceiling and no call (a VF limits only what it sends)", ok, err, k.calls)
	}
}

func TestVFCeilingUnsupported(t *testing.T) {
	k := &fakeVFs{rates: map[int][2]int{}, setErr: unix.EOPNOTSUPP}
	c, _, err := PrepareVFCeiling(k, "pf0", 1, Limits{Egress: Direction{Average: 10_000_000}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ApplyVFCeiling(k, c); !errors.Is(err, ErrVFRateUnsupported) {
		t.Errorf("ApplyVFCeiling: %v, want ErrVFRateUnsupported (a warning)", err)
	}
	if err := RestoreVFCeiling(k, c); err != nil {
		t.Errorf("RestoreVFCeiling where the driver has no limiter: %v, want nothing to do", err)
	}
	c.Unsupported = true
	if diffs, err := CheckVFCeiling(k, c); err != nil || len(diffs) != 0 {
		t.Errorf("CheckVFCeiling of an unsupported ceiling: %v, %v", diffs, err)
	}
}

func TestVFCeilingFails(t *testing.T) {
	k := &fakeVFs{rates: map[int][2]int{}, getErr: unix.ENODEV}
	if _, _, err := PrepareVFCeiling(k, "pf0", 1, Limits{Egress: Direction{Average: 10_000_000}}); !errors.Is(err, unix.ENODEV) {
		t.Errorf("PrepareVFCeiling: %v, want ENODEV", err)
	}
	k = &fakeVFs{rates: map[int][2]int{}, setErr: unix.EPERM}
	c := VFCeiling{PF: "pf0", VF: 1, MaxMbps: 10}
	if err := ApplyVFCeiling(k, c); !errors.Is(err, unix.EPERM) || errors.Is(err, ErrVFRateUnsupported) {
		t.Errorf("ApplyVFCeiling: %v, want EPERM as a failure", err)
	}
	if err := RestoreVFCeiling(k, c); !errors.Is(err, unix.EPERM) {
		t.Errorf("RestoreVFCeiling: %v, want EPERM", err)
	}
}
