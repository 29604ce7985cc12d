package report

import (
	"bytes"
	"encoding/xml"
	"math"
	"strings"
	"testing"

	"github.com/topolane/topolane/bench/internal/scenario"
	"github.com/topolane/topolane/bench/internal/sim"
	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/placement"
)

func result() sim.Result {
	pf := placement.Allocation{Kind: placement.KindPF, NIC: "n", Device: "n"}
	vf := placement.Allocation{Kind: placement.KindVF, NIC: "n", Device: "v"}
	return sim.Result{Policy: "p", Horizon: 100, GPUsTotal: 10,
		Outcomes: []sim.Outcome{
			{Job: scenario.Job{GPUs: 8, Arrival: 0}, Placed: true, Start: 10, FullNode: true, Device: pf, Level: topology.SYS, NearFree: false},
			{Job: scenario.Job{GPUs: 8, Arrival: 20}, Placed: true, Start: 20, FullNode: true, Device: vf, Level: topology.PIX, NearFree: true},
			{Job: scenario.Job{GPUs: 1, Arrival: 30}, Placed: true, Start: 30, Device: vf, Level: topology.NODE, NearFree: true},
			{Job: scenario.Job{GPUs: 8, Arrival: 60}},
		},
		Samples: []sim.Sample{{Time: 0, GPUsUsed: 0}, {Time: 50, GPUsUsed: 10}},
	}
}

func TestMeasure(t *testing.T) {
	m := Measure(result(), 8)
	want := Metrics{Policy: "p", Jobs: 4, Placed: 3, FullNode: 2, FullNodePF: 1, NearPossible: 2, Near: 1,
		FullNodePending: 1, FullNodeWait: (10 + 0 + 40) / 3.0, Utilisation: 50}
	if math.Abs(m.FullNodeWait-want.FullNodeWait) > 1e-9 {
		t.Errorf("wait %v, want %v", m.FullNodeWait, want.FullNodeWait)
	}
	m.FullNodeWait = want.FullNodeWait
	if m != want {
		t.Errorf("Measure = %+v\nwant      %+v", m, want)
	}
}

func TestTableAndPlot(t *testing.T) {
	r := result()
	ms := []Metrics{Measure(r, 8)}
	var table bytes.Buffer
	if err := WriteTable(&table, ms); err != nil || !strings.Contains(table.String(), "50.0% (1/2)") {
		t.Errorf("table (%v):\n%s", err, table.String())
	}
	var svg bytes.Buffer
	if err := WritePlot(&svg, "a <title>", []sim.Result{r}, ms); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(&svg)
	for {
		_, err := d.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("the plot is not well-formed SVG: %v", err)
			}
			break
		}
	}
}
