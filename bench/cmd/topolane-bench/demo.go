package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/topolane/topolane/bench/internal/kube"
	"github.com/topolane/topolane/bench/internal/report"
	"github.com/topolane/topolane/bench/internal/scenario"
	"github.com/topolane/topolane/bench/internal/sim"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
)

// demoCmd sends a small scenario's pods, in arrival order, through the real kube-scheduler:
// once with topolane's extender over HTTP, once without (the device then picked as a device
// plugin would), and prints where each pod went and what it got.
func demoCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	path := fs.String("scenario", filepath.Join(scenarioDir(), "small.yaml"), "scenario file")
	count := fs.Int("jobs", 24, "how many of the trace's pods to send")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sc, err := scenario.Load(*path)
	if err != nil {
		return err
	}
	nodes, jobs := sc.Cluster(), sc.Trace()
	if *count <= 0 {
		return fmt.Errorf("--jobs %d: want at least 1", *count)
	}
	jobs = jobs[:min(*count, len(jobs))]
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fmt.Fprintf(os.Stderr, "starting the real kube-scheduler (with and without topolane) on %d simulated nodes...\n", len(nodes))
	c, err := kube.Start(ctx, nodes)
	if err != nil {
		return err
	}
	topo, err := replay(ctx, c, nodes, jobs, kube.WithTopolane, "topolane", sc.Seed)
	if err != nil {
		return err
	}
	plain, err := replay(ctx, c, nodes, jobs, kube.Plain, "default", sc.Seed)
	if err != nil {
		return err
	}
	fmt.Printf("%s: the first %d pods, sent one by one, nobody finishing\n\n", sc.Name, len(jobs))
	if err := placements(topo, plain); err != nil {
		return err
	}
	fmt.Println()
	largest := 0
	for _, n := range nodes {
		largest = max(largest, len(n.Machine.Node().GPUs))
	}
	return report.WriteTable(os.Stdout, []report.Metrics{report.Measure(topo, largest), report.Measure(plain, largest)})
}

// replay sends the jobs to the named scheduler one at a time and records what each got.
func replay(ctx context.Context, c *kube.Cluster, nodes []scenario.Node, jobs []scenario.Job, schedulerName, label string, seed uint64) (sim.Result, error) {
	if err := c.DeleteAll(ctx); err != nil {
		return sim.Result{}, err
	}
	mirror := sim.NewCluster(nodes) // GPUs and devices handed out, as kubelet and the agent would
	devicePlugin := sim.NewDefaultLike(seed)
	total, _ := mirror.GPUs()
	res := sim.Result{Policy: label, GPUsTotal: total, Outcomes: make([]sim.Outcome, len(jobs)), Horizon: jobs[len(jobs)-1].Arrival}
	progress := bar(os.Stderr, label, len(jobs))
	for i, job := range jobs {
		res.Outcomes[i].Job = job
		if err := c.CreatePod(ctx, job, schedulerName); err != nil {
			return res, err
		}
		progress(i + 1)
		if c.WaitBound(ctx, []string{job.Name}, 2*time.Second, nil) == 0 {
			continue // unschedulable for now: it stays pending
		}
		pod, err := c.Pod(ctx, job.Name)
		if err != nil {
			return res, err
		}
		node := mirror.Node(pod.Spec.NodeName)
		pl := sim.Placement{Node: node.Name, GPUs: node.LowestFreeGPUs(job.GPUs)}
		if a, err := v1alpha1.ParseAllocation(pod.Annotations[v1alpha1.AnnotationAllocation]); err == nil {
			pl.Device = sim.Attach(node, a, pl.GPUs)
		} else if schedulerName == kube.Plain {
			pl.Device = devicePlugin.Device(node)
		}
		if res.Outcomes[i], err = mirror.Record(job, pl, job.Arrival); err != nil {
			return res, fmt.Errorf("%s scheduler: %w", label, err)
		}
		_, used := mirror.GPUs()
		res.Samples = append(res.Samples, sim.Sample{Time: job.Arrival, GPUsUsed: used})
	}
	return res, nil
}

// placements prints each pod's node and device under both schedulers.
func placements(topo, plain sim.Result) error {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "pod\tGPUs\ttopolane.io/nic\twith topolane\tdevice\tlevel\twithout\tdevice\tlevel")
	for i, t := range topo.Outcomes {
		p := plain.Outcomes[i]
		nic := t.Job.NIC
		if nic == "" {
			nic = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", t.Job.Name, t.Job.GPUs, nic, got(t), got(p))
	}
	return tw.Flush()
}

func got(o sim.Outcome) string {
	switch {
	case !o.Placed:
		return "pending\t\t"
	case o.Device.Kind == "":
		return o.Node + "\tnone\t"
	}
	return fmt.Sprintf("%s\t%s %s\t%s", o.Node, o.Device.Kind, o.Device.Device, o.Level)
}
