// Package report turns simulation results into the figures the bench prints and draws.
package report

import (
	"math"
	"slices"

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
	// that got whole PFs only.
	FullNode, FullNodePF int
	// NearPossible counts placed pods for which a NIC at PXB or nearer to all their GPUs had
	// something free; Near those of them whose devices are all at PXB or nearer to their GPUs.
	NearPossible, Near int
	// FullNodePending are full-node pods (by GPU count: as many GPUs as the largest node has)
	// still waiting at the end; FullNodeWait their mean wait in seconds, the pending ones counted
	// up to the end.
	FullNodePending int
	FullNodeWait    float64
	// Utilisation is the time-weighted share of GPUs in use.
	Utilisation float64
	// Network is what the placed pods that want a NIC (all but topolane.io/nic: none) got of one.
	Network Network
}

// Network is the NIC bandwidth per GPU and the GPUDirect RDMA paths pods got.
type Network struct {
	Pods int
	// Bandwidth per GPU in Gbit/s over the pods: the sum of a pod's devices' bandwidth (a share
	// counting its NIC's speed divided by the shares of that NIC in use, averaged over the time
	// the pod ran) divided by its GPUs; 0 for a pod without an RDMA device.
	Mean, P10, Median float64
	// BySize is the mean by pod size, smallest first.
	BySize []SizeMean
	// GDR is the mean share of a pod's GPUs whose device is at PXB or nearer, in percent: NCCL
	// uses GPUDirect RDMA on those.
	GDR float64
}

// SizeMean is the mean bandwidth per GPU of the pods of one size.
type SizeMean struct {
	GPUs int
	Pods int
	Mean float64
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
		if o.Placed {
			m.count(o)
		}
	}
	if fullNodeJobs > 0 {
		m.FullNodeWait = waited / float64(fullNodeJobs)
	}
	m.Utilisation = utilisation(r)
	m.Network = network(r.Outcomes)
	return m
}

// count adds a placed pod.
func (m *Metrics) count(o sim.Outcome) {
	m.Placed++
	if o.FullNode {
		m.FullNode++
		if o.AllPF() {
			m.FullNodePF++
		}
	}
	if o.NearFree {
		m.NearPossible++
		if len(o.Devices) > 0 && !topology.PXB.Nearer(o.Level) {
			m.Near++
		}
	}
}

// network measures the placed pods that want a NIC.
func network(outcomes []sim.Outcome) Network {
	var n Network
	var perGPU []float64
	bySize := map[int][]float64{}
	gdr := 0.0
	for _, o := range outcomes {
		if !o.Placed || o.Job.GPUs <= 0 || o.Job.NIC == string(placement.ModeNone) {
			continue
		}
		bw := o.Bandwidth / 1000 / float64(o.Job.GPUs)
		perGPU = append(perGPU, bw)
		bySize[o.Job.GPUs] = append(bySize[o.Job.GPUs], bw)
		gdr += 100 * float64(o.GDRGPUs) / float64(o.Job.GPUs)
	}
	n.Pods = len(perGPU)
	if n.Pods == 0 {
		return n
	}
	n.Mean, n.GDR = mean(perGPU), gdr/float64(n.Pods)
	slices.Sort(perGPU)
	n.P10, n.Median = percentile(perGPU, 10), percentile(perGPU, 50)
	sizes := make([]int, 0, len(bySize))
	for s := range bySize {
		sizes = append(sizes, s)
	}
	slices.Sort(sizes)
	for _, s := range sizes {
		n.BySize = append(n.BySize, SizeMean{GPUs: s, Pods: len(bySize[s]), Mean: mean(bySize[s])})
	}
	return n
}

func mean(xs []float64) float64 {
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// percentile is the nearest-rank percentile p of sorted values.
func percentile(sorted []float64, p float64) float64 {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank-1, 0), len(sorted)-1)]
}

// SizeMean returns the mean bandwidth per GPU of pods of the size, and whether there were any.
func (n Network) SizeMean(gpus int) (float64, bool) {
	for _, s := range n.BySize {
		if s.GPUs == gpus {
			return s.Mean, true
		}
	}
	return 0, false
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
