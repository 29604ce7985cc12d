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
	Node   string
	GPUs   []int                // indexes into the node's GPUs
	Device placement.Allocation // Kind is empty when the pod got no RDMA device
}

// Outcome is what became of one job.
type Outcome struct {
	Job      scenario.Job
	Placed   bool
	Start    float64
	Node     string
	Device   placement.Allocation
	FullNode bool           // it took every GPU of its node
	Level    topology.Level // from its device's NIC to its farthest GPU; 0 without a device
	NearFree bool           // a NIC at PXB or nearer to its GPUs had something free when it started
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
			out := res.Outcomes[f.job]
			c.Node(out.Node).give(jobs[f.job].Name, f.gpus)
			p.Finished(c, jobs[f.job], Placement{Node: out.Node, GPUs: f.gpus, Device: out.Device})
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
	return res, nil
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

// Record gives a job what it was placed with and says what it got.
func (c *Cluster) Record(job scenario.Job, pl Placement, now float64) (Outcome, error) {
	node := c.Node(pl.Node)
	if node == nil || len(pl.GPUs) != job.GPUs {
		return Outcome{}, fmt.Errorf("%s: placed on node %q with GPUs %v, wants %d", job.Name, pl.Node, pl.GPUs, job.GPUs)
	}
	out := Outcome{Job: job, Placed: true, Start: now, Node: pl.Node, Device: pl.Device,
		FullNode: job.GPUs == len(node.Topo.GPUs), NearFree: node.NearFree(pl.GPUs)}
	if pl.Device.Kind != "" {
		out.Level = node.Level(pl.Device.NIC, pl.GPUs)
	}
	return out, node.take(job.Name, pl.GPUs, pl.Device)
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
