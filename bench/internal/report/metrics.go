// Package report turns simulation results into the figures the bench prints and draws.
package report

import (
	"github.com/topolane/topolane/bench/internal/sim"
	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/placement"
)

// Metrics are one policy's figures.
type Metrics struct {
	Policy string
	Jobs   int
	Placed int
	// FullNode counts placed pods that took every GPU of their node; FullNodePF those of them
	// that got a whole PF.
	FullNode, FullNodePF int
	// NearPossible counts placed pods for which a NIC at PXB or nearer had something free;
	// Near those of them whose device is at PXB or nearer.
	NearPossible, Near int
	// FullNodePending are full-node pods (by GPU count: as many GPUs as the largest node has)
	// still waiting at the end; FullNodeWait their mean wait in seconds, the pending ones counted
	// up to the end.
	FullNodePending int
	FullNodeWait    float64
	// Utilisation is the time-weighted share of GPUs in use.
	Utilisation float64
}

// Share is part/whole in percent, or -1 when whole is 0.
func Share(part, whole int) float64 {
	if whole == 0 {
		return -1
	}
	return 100 * float64(part) / float64(whole)
}

// Measure computes a run's metrics. largestNode is the most GPUs a node of the cluster has.
func Measure(r sim.Result, largestNode int) Metrics {
	m := Metrics{Policy: r.Policy, Jobs: len(r.Outcomes)}
	var waited float64
	var fullNodeJobs int
	for _, o := range r.Outcomes {
		if o.Job.GPUs == largestNode {
			fullNodeJobs++
			if o.Placed {
				waited += o.Start - o.Job.Arrival
			} else {
				m.FullNodePending++
				waited += r.Horizon - o.Job.Arrival
			}
		}
		if !o.Placed {
			continue
		}
		m.Placed++
		if o.FullNode {
			m.FullNode++
			if o.Device.Kind == placement.KindPF {
				m.FullNodePF++
			}
		}
		if o.NearFree {
			m.NearPossible++
			if o.Device.Kind != "" && !topology.PXB.Nearer(o.Level) {
				m.Near++
			}
		}
	}
	if fullNodeJobs > 0 {
		m.FullNodeWait = waited / float64(fullNodeJobs)
	}
	m.Utilisation = utilisation(r)
	return m
}

// utilisation integrates GPUs in use over [0, horizon].
func utilisation(r sim.Result) float64 {
	if r.Horizon <= 0 || r.GPUsTotal == 0 {
		return 0
	}
	area, last, used := 0.0, 0.0, 0
	for _, s := range r.Samples {
		area += float64(used) * (s.Time - last)
		last, used = s.Time, s.GPUsUsed
	}
	area += float64(used) * (r.Horizon - last)
	return 100 * area / (r.Horizon * float64(r.GPUsTotal))
}
