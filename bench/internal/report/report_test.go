package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/topolane/topolane/bench/internal/scenario"
	"github.com/topolane/topolane/bench/internal/sim"
	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/placement"
)

func pfs(n int) []placement.Allocation {
	out := make([]placement.Allocation, n)
	for i := range out {
		out[i] = placement.Allocation{Kind: placement.KindPF, NIC: "n", Device: "n"}
	}
	return out
}

func result(policy string) sim.Result {
	vf := []placement.Allocation{{Kind: placement.KindVF, NIC: "n", Device: "v"}}
	return sim.Result{Policy: policy, Horizon: 100, GPUsTotal: 10,
		Outcomes: []sim.Outcome{
			{Job: scenario.Job{GPUs: 8, Arrival: 0}, Placed: true, Start: 10, FullNode: true, Devices: pfs(8), Level: topology.PIX, GDRGPUs: 8, Bandwidth: 3_200_000},
			{Job: scenario.Job{GPUs: 8, Arrival: 20}, Placed: true, Start: 20, FullNode: true, Devices: vf, Level: topology.PIX, NearFree: true, GDRGPUs: 1, Bandwidth: 400_000},
			{Job: scenario.Job{GPUs: 1, Arrival: 30}, Placed: true, Start: 30, Devices: vf, Level: topology.NODE, NearFree: true, Bandwidth: 100_000},
			{Job: scenario.Job{GPUs: 2, Arrival: 40}, Placed: true, Start: 40, Level: topology.SYS},
			{Job: scenario.Job{GPUs: 2, Arrival: 45, NIC: "none"}, Placed: true, Start: 45},
			{Job: scenario.Job{GPUs: 8, Arrival: 60}},
		},
		Samples: []sim.Sample{{Time: 0, GPUsUsed: 0}, {Time: 50, GPUsUsed: 10}},
	}
}

func TestMeasure(t *testing.T) {
	got := Measure(result("p"), 8)
	// Network: 400, 50, 100 and 0 Gb/s per GPU; GPUs with GDR 8/8, 1/8, 0/1, 0/2.
	want := Metrics{Policy: "p", Jobs: 6, Placed: 5, FullNode: 2, FullNodePF: 1, NearPossible: 2, Near: 1,
		FullNodePending: 1, FullNodeWait: (10 + 0 + 40) / 3.0, Utilisation: 50,
		Network: Network{Pods: 4, Mean: 137.5, P10: 0, Median: 50, GDR: (100 + 12.5) / 4,
			BySize: []SizeMean{{GPUs: 1, Pods: 1, Mean: 100}, {GPUs: 2, Pods: 1, Mean: 0}, {GPUs: 8, Pods: 2, Mean: 225}}}}
	if diff := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("Measure (-want +got):\n%s", diff)
	}
}

func TestPercentile(t *testing.T) {
	sorted := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tt := range []struct{ p, want float64 }{{10, 1}, {50, 5}, {90, 9}, {100, 10}, {0, 1}} {
		if got := percentile(sorted, tt.p); got != tt.want {
			t.Errorf("p%v = %v, want %v", tt.p, got, tt.want)
		}
	}
}

func TestTableAndPlot(t *testing.T) {
	rails, one := result(sim.PolicyTopolane), result(sim.PolicyOneNIC)
	one.Outcomes[0].Devices, one.Outcomes[0].Bandwidth, one.Outcomes[0].GDRGPUs = pfs(1), 400_000, 1
	runs := []sim.Result{rails, one}
	ms := []Metrics{Measure(rails, 8), Measure(one, 8)}
	var table bytes.Buffer
	if err := WriteTable(&table, ms); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`50.0% \(1/2\)`, // full-node pods with whole PFs
		`topolane\s+4\s+137.5\s+0.0\s+50.0\s+100.0\s+0.0\s+225.0\s+28.1%`,
		`8-GPU pods 4.50×`, // 225 ÷ 50 Gb/s per GPU
	} {
		if !regexp.MustCompile(want).MatchString(table.String()) {
			t.Errorf("table has no %q:\n%s", want, table.String())
		}
	}
	var svg bytes.Buffer
	if err := WritePlot(&svg, "a <title>", runs, ms); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NIC bandwidth per GPU", "8-GPU pods", "GDR path", sim.PolicyOneNIC} {
		if !strings.Contains(svg.String(), want) {
			t.Errorf("the plot has no %q", want)
		}
	}
	d := xml.NewDecoder(&svg)
	for {
		if _, err := d.Token(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("the plot is not well-formed SVG: %v", err)
			}
			break
		}
	}
}
