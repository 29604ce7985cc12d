package topology_test

import (
	"encoding/json"
	"testing"

	"github.com/topolane/topolane/topology"
)

func TestLevelOrder(t *testing.T) {
	nearestFirst := []topology.Level{topology.NV(18), topology.NV(4), topology.PIX, topology.PXB,
		topology.PHB, topology.NODE, topology.SYS, topology.Unknown}
	for i := range len(nearestFirst) - 1 {
		a, b := nearestFirst[i], nearestFirst[i+1]
		if !a.Nearer(b) || b.Nearer(a) {
			t.Errorf("want %v nearer than %v", a, b)
		}
	}
}

func TestLevelText(t *testing.T) {
	for _, l := range []topology.Level{topology.Self, topology.NV(18), topology.PIX, topology.PXB,
		topology.PHB, topology.NODE, topology.SYS, topology.Unknown} {
		b, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		var got topology.Level
		if err := json.Unmarshal(b, &got); err != nil || got != l {
			t.Errorf("round trip of %v: got %v, %v", l, got, err)
		}
	}
	if topology.NV(12).NVLinks() != 12 || topology.PIX.NVLinks() != 0 || topology.Self.NVLinks() != 0 {
		t.Error("NVLinks counts wrong")
	}
	for _, bad := range []string{"", "NV", "NV0", "NV-3", "pix", "SOC"} {
		if _, err := topology.ParseLevel(bad); err == nil {
			t.Errorf("ParseLevel(%q) accepted", bad)
		}
	}
}

func TestNormalizePCIAddress(t *testing.T) {
	for in, want := range map[string]string{
		"0000:1b:00.0":     "0000:1b:00.0",
		"00000000:1B:00.0": "0000:1b:00.0",
		"1b:00.7":          "0000:1b:00.7",
		"0001:c3:1f.1":     "0001:c3:1f.1",
	} {
		got, err := topology.NormalizePCIAddress(in)
		if err != nil || got != want {
			t.Errorf("NormalizePCIAddress(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "1b", "0000:1b:00", "0000:1b:20.0", "0000:1b:00.8", "0000:100:00.0", "x:1b:00.0", "1:2:3:4.0"} {
		if got, err := topology.NormalizePCIAddress(bad); err == nil {
			t.Errorf("NormalizePCIAddress(%q) = %q, want an error", bad, got)
		}
	}
}
