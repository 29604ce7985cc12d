package attachtest

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The VF rate fake records every call, keeps rates across agents (a restart), and fails on
// demand.
func TestVFRateFake(t *testing.T) {
	dir := t.TempDir()
	k := Kernel{vfFile: filepath.Join(dir, "vf-macs.json")}
	if lo, hi, err := k.VFRate("pf0", 2); lo != 0 || hi != 0 || err != nil {
		t.Errorf("VFRate before any set: %d/%d, %v; want 0/0 (no limit), as a PF reports", lo, hi, err)
	}
	if err := k.SetVFRate("pf0", 2, 10, 100); err != nil {
		t.Fatal(err)
	}
	if err := k.FailVFRate("SetVFRate", syscall.EOPNOTSUPP); err != nil {
		t.Fatal(err)
	}
	restarted := Kernel{vfFile: filepath.Join(dir, "vf-macs.json")}
	if err := restarted.SetVFRate("pf0", 2, 0, 5); !errors.Is(err, syscall.EOPNOTSUPP) {
		t.Errorf("SetVFRate made to fail: %v", err)
	}
	if lo, hi, err := restarted.VFRate("pf0", 2); lo != 10 || hi != 100 || err != nil {
		t.Errorf("VFRate: %d/%d, %v; want 10/100 (the failed set changed nothing)", lo, hi, err)
	}
	calls, rates, err := k.VFRateCalls()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"VFRate pf0 2", "SetVFRate pf0 2 10 100", "SetVFRate pf0 2 0 5", "VFRate pf0 2"}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string][2]int{"pf0/2": {10, 100}}, rates); diff != "" {
		t.Errorf("rates (-want +got):\n%s", diff)
	}
}
