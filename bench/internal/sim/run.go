package sim

import (
	"container/heap"
	"fmt"

	"github.com/topolane/topolane/bench/internal/scenario"
	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/placement"
)

// Policy places pods. Place either chooses a node, GPUs and device, or says the pod must wait;
// it must not change the cluster (Run does). Placed and Finished tell it what happened.
type Policy interface {
	Name() string
	Place(c *Cluster, job scenario.Job) (Placement, bool)
	Placed(c *Cluster, job scenario.Job, p Placement)
	Finished(c *Cluster, job scenario.Job, p Placement)
}

// Placement is where a pod runs and what it got.
type Placement struct {
	Node string
	GPUs []int // indexes into the node's GPUs
	// Devices are its NIC devices, each with the GPUs it serves (PCI addresses); none when the
	// pod got no RDMA device.
	Devices []placement.Allocation
}

// Outcome is what became of one job.
type Outcome struct {
	Job      scenario.Job
	Placed   bool
	Start    float64
	Node     string
	Devices  []placement.Allocation
	FullNode bool           // it took every GPU of its node
	Level    topology.Level // the farthest from a device's NIC to a GPU it serves; 0 without a device
	NearFree bool           // a NIC at PXB or nearer to all its GPUs had something free when it started
	// GDRGPUs counts its GPUs whose device is at PXB or nearer: NCCL uses GPUDirect RDMA there.
	GDRGPUs int
	// Bandwidth is its devices' NIC bandwidth in Mbit/s, averaged over the time it ran (up to the
	// end of the trace): a share counts its NIC's speed divided by the shares of that NIC in use.
	Bandwidth float64
}

// AllPF reports whether the pod got whole PFs only (at least one).
func (o Outcome) AllPF() bool {
	for _, d := range o.Devices {
		if d.Kind != placement.KindPF {
			return false
		}
	}
	return len(o.Devices) > 0
}

// Sample is the cluster's GPU use at a moment.
type Sample struct {
	Time     float64
	GPUsUsed int
}

// Result is one policy's run.
type Result struct {
	Policy    string
	Horizon   float64 // the last arrival: pods still pending then count as pending
	GPUsTotal int
	Outcomes  []Outcome
	Samples   []Sample
}

// Run replays the trace under the policy until the last arrival. Pending pods are retried, in
// arrival order, whenever a pod arrives or finishes, as the scheduler's queue retries them.
func Run(p Policy, nodes []scenario.Node, jobs []scenario.Job, progress func(done int)) (Result, error) {
	c := NewCluster(nodes)
	total, _ := c.GPUs()
	res := Result{Policy: p.Name(), GPUsTotal: total, Outcomes: make([]Outcome, len(jobs))}
	if len(jobs) > 0 {
		res.Horizon = jobs[len(jobs)-1].Arrival
	}
	var running finishing
	var pending []int
	for next := 0; next < len(jobs); {
		var now float64
		if running.Len() > 0 && running[0].at <= jobs[next].Arrival {
			f := heap.Pop(&running).(finish)
			now = f.at
			out := &res.Outcomes[f.job]
			out.Bandwidth = c.Finish(jobs[f.job].Name, out.Node, f.gpus, now)
			p.Finished(c, jobs[f.job], Placement{Node: out.Node, GPUs: f.gpus, Devices: out.Devices})
		} else {
			now = jobs[next].Arrival
			res.Outcomes[next].Job = jobs[next]
			pending = append(pending, next)
			next++
			if progress != nil {
				progress(next)
			}
		}
		var err error
		if pending, err = placePending(c, p, jobs, pending, now, &res, &running); err != nil {
			return res, fmt.Errorf("policy %s: %w", p.Name(), err)
		}
		_, used := c.GPUs()
		res.Samples = append(res.Samples, Sample{Time: now, GPUsUsed: used})
	}
	res.SetBandwidth(c.Stop(res.Horizon))
	return res, nil
}

// SetBandwidth fills in the bandwidth of the jobs still running at the end, by name.
func (r *Result) SetBandwidth(running map[string]float64) {
	for i := range r.Outcomes {
		if bw, ok := running[r.Outcomes[i].Job.Name]; ok {
			r.Outcomes[i].Bandwidth = bw
		}
	}
}

// placePending tries every pending job in arrival order and returns those still waiting.
func placePending(c *Cluster, p Policy, jobs []scenario.Job, pending []int, now float64, res *Result, running *finishing) ([]int, error) {
	waiting := pending[:0]
	for _, j := range pending {
		job := jobs[j]
		pl, ok := p.Place(c, job)
		if !ok {
			waiting = append(waiting, j)
			continue
		}
		out, err := c.Record(job, pl, now)
		if err != nil {
			return nil, err
		}
		res.Outcomes[j] = out
		p.Placed(c, job, pl)
		heap.Push(running, finish{at: now + job.Duration, job: j, gpus: pl.GPUs})
	}
	return waiting, nil
}

// Record gives a job what it was placed with and says what it got; its bandwidth is known when
// it finishes (Finish) or the trace ends (Stop).
func (c *Cluster) Record(job scenario.Job, pl Placement, now float64) (Outcome, error) {
	node := c.Node(pl.Node)
	if node == nil || len(pl.GPUs) != job.GPUs {
		return Outcome{}, fmt.Errorf("%s: placed on node %q with GPUs %v, wants %d", job.Name, pl.Node, pl.GPUs, job.GPUs)
	}
	out := Outcome{Job: job, Placed: true, Start: now, Node: pl.Node, Devices: pl.Devices,
		FullNode: job.GPUs == len(node.Topo.GPUs), NearFree: node.NearFree(pl.GPUs)}
	for i, d := range pl.Devices {
		if l := node.Level(d.NIC, d.GPUs); i == 0 || out.Level.Nearer(l) {
			out.Level = l
		}
		for _, g := range d.GPUs {
			if !topology.PXB.Nearer(node.Topo.Level(d.NIC, g)) {
				out.GDRGPUs++
			}
		}
	}
	node.advance(now)
	if err := node.take(job.Name, pl.GPUs, pl.Devices); err != nil {
		return out, err
	}
	node.start(job.Name, pl.Devices, now)
	return out, nil
}

// Finish returns a job's GPUs and devices and says its mean bandwidth.
func (c *Cluster) Finish(job, nodeName string, gpus []int, now float64) float64 {
	node := c.Node(nodeName)
	node.advance(now)
	bw := node.stop(job, now)
	node.give(job, gpus)
	node.rate()
	return bw
}

// Stop ends the trace: the mean bandwidth of every job still running, by name.
func (c *Cluster) Stop(now float64) map[string]float64 {
	out := map[string]float64{}
	for _, n := range c.Nodes {
		n.advance(now)
		for job := range n.meters {
			out[job] = n.stop(job, now)
		}
	}
	return out
}

type finish struct {
	at   float64
	job  int
	gpus []int
}

// finishing is a min-heap of running jobs by end time.
type finishing []finish

func (f finishing) Len() int           { return len(f) }
func (f finishing) Less(i, j int) bool { return f[i].at < f[j].at }
func (f finishing) Swap(i, j int)      { f[i], f[j] = f[j], f[i] }
func (f *finishing) Push(x any)        { *f = append(*f, x.(finish)) }
func (f *finishing) Pop() any {
	old := *f
	x := old[len(old)-1]
	*f = old[:len(old)-1]
	return x
}
