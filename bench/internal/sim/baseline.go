package sim

import (
	"math/rand/v2"

	"github.com/topolane/topolane/bench/internal/scenario"
	"github.com/topolane/topolane/topology/placement"
)

// leastAllocated is NodeResourcesFit's LeastAllocated score on GPUs alone, 0..100: the share of
// the node's GPUs left free after the pod, so pods spread.
func leastAllocated(n *Node, gpus int) int64 {
	total := len(n.gpuUsed)
	if total == 0 {
		return 0
	}
	return int64((n.FreeGPUs() - gpus) * 100 / total)
}

// best returns the highest-scoring node, breaking ties at random as the scheduler does.
func best(r *rand.Rand, nodes []*Node, score func(*Node) int64) *Node {
	var top *Node
	var topScore int64
	ties := 0
	for _, n := range nodes {
		s := score(n)
		switch {
		case top == nil || s > topScore:
			top, topScore, ties = n, s, 1
		case s == topScore:
			if ties++; r.IntN(ties) == 0 {
				top = n
			}
		}
	}
	return top
}

// DefaultLike is the default scheduler counting GPUs only: any node with enough free GPUs,
// spread by LeastAllocated; kubelet gives the first free GPUs, and the SR-IOV device plugin one
// free device per pod (a VF, or a NIC without VFs whole), topology unseen. With none free the
// pod still runs, without an RDMA device.
type DefaultLike struct{ rand *rand.Rand }

// NewDefaultLike makes the baseline with a seeded tie-breaker.
func NewDefaultLike(seed uint64) *DefaultLike {
	return &DefaultLike{rand: rand.New(rand.NewPCG(seed, 1))}
}

func (*DefaultLike) Name() string { return "default-like" }

func (d *DefaultLike) Place(c *Cluster, job scenario.Job) (Placement, bool) {
	fit := fitting(c, job.GPUs)
	n := best(d.rand, fit, func(n *Node) int64 { return leastAllocated(n, job.GPUs) })
	if n == nil {
		return Placement{}, false
	}
	gpus := n.LowestFreeGPUs(job.GPUs)
	return Placement{Node: n.Name, GPUs: gpus, Devices: n.Serving(d.Device(n), gpus)}, true
}

// Device is the device plugin's pick on a node: any free device.
func (d *DefaultLike) Device(n *Node) placement.Allocation { return anyOf(d.rand, n.Devices()) }

func (*DefaultLike) Placed(*Cluster, scenario.Job, Placement)   {}
func (*DefaultLike) Finished(*Cluster, scenario.Job, Placement) {}

func fitting(c *Cluster, gpus int) []*Node {
	var fit []*Node
	for _, n := range c.Nodes {
		if n.FreeGPUs() >= gpus {
			fit = append(fit, n)
		}
	}
	return fit
}

func anyOf(r *rand.Rand, devs []placement.Allocation) placement.Allocation {
	if len(devs) == 0 {
		return placement.Allocation{}
	}
	return devs[r.IntN(len(devs))]
}

// NUMAOnly is Topology Manager's single-numa-node policy: a pod that fits in one NUMA node gets
// its GPUs and a device from one NUMA node, or waits; larger pods are placed as DefaultLike.
// It sees NUMA nodes, not the PCIe tree.
type NUMAOnly struct{ rand *rand.Rand }

// NewNUMAOnly makes the baseline with a seeded tie-breaker.
func NewNUMAOnly(seed uint64) *NUMAOnly { return &NUMAOnly{rand: rand.New(rand.NewPCG(seed, 2))} }

func (*NUMAOnly) Name() string { return "numa-only" }

func (p *NUMAOnly) Place(c *Cluster, job scenario.Job) (Placement, bool) {
	var fit []*Node
	aligned := map[*Node]Placement{}
	for _, n := range fitting(c, job.GPUs) {
		if pl, ok := p.align(n, job.GPUs); ok {
			fit = append(fit, n)
			aligned[n] = pl
		}
	}
	n := best(p.rand, fit, func(n *Node) int64 { return leastAllocated(n, job.GPUs) })
	if n == nil {
		return Placement{}, false
	}
	return aligned[n], true
}

// align finds GPUs and a device on one NUMA node for a pod that fits in one.
func (p *NUMAOnly) align(n *Node, gpus int) (Placement, bool) {
	byNUMA := map[int][]int{}
	for i, g := range n.Topo.GPUs {
		byNUMA[g.NUMANode] = append(byNUMA[g.NUMANode], i)
	}
	fitsOne := false
	for _, numa := range n.Topo.NUMANodes {
		if len(byNUMA[numa]) < gpus {
			continue
		}
		fitsOne = true
		var free []int
		for _, g := range byNUMA[numa] {
			if !n.gpuUsed[g] && len(free) < gpus {
				free = append(free, g)
			}
		}
		devs := onNUMA(n, n.Devices(), numa)
		if len(free) == gpus && len(devs) > 0 {
			return Placement{Node: n.Name, GPUs: free, Devices: n.Serving(anyOf(p.rand, devs), free)}, true
		}
	}
	if fitsOne { // it could be aligned, so it must be: wait
		return Placement{}, false
	}
	free := n.LowestFreeGPUs(gpus)
	return Placement{Node: n.Name, GPUs: free, Devices: n.Serving(anyOf(p.rand, n.Devices()), free)}, true
}

func onNUMA(n *Node, devs []placement.Allocation, numa int) []placement.Allocation {
	var out []placement.Allocation
	for _, d := range devs {
		if nic := n.Topo.NIC(d.NIC); nic != nil && nic.NUMANode == numa {
			out = append(out, d)
		}
	}
	return out
}

func (*NUMAOnly) Placed(*Cluster, scenario.Job, Placement)   {}
func (*NUMAOnly) Finished(*Cluster, scenario.Job, Placement) {}
