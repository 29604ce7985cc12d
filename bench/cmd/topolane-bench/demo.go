package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/topolane/topolane/bench/internal/kube"
	"github.com/topolane/topolane/bench/internal/report"
	"github.com/topolane/topolane/bench/internal/scenario"
	"github.com/topolane/topolane/bench/internal/sim"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
)

// demoCmd sends a small scenario's pods, in arrival order, through the real kube-scheduler:
// with topolane's extender over HTTP (a device per rail), again with every pod annotated
// topolane.io/nics: one (topolane before rails), and without the extender (the device then
// picked as a device plugin would); it prints where each pod went and what it got.
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
	var runs []sim.Result
	for _, r := range demoRuns {
		res, err := replay(ctx, c, nodes, jobs, r, sc.Seed)
		if err != nil {
			return err
		}
		runs = append(runs, res)
	}
	fmt.Printf("%s: the first %d pods, sent one by one, nobody finishing\n\n", sc.Name, len(jobs))
	if err := placements(runs); err != nil {
		return err
	}
	fmt.Println()
	largest := 0
	for _, n := range nodes {
		largest = max(largest, len(n.Machine.Node().GPUs))
	}
	ms := make([]report.Metrics, len(runs))
	for i, r := range runs {
		ms[i] = report.Measure(r, largest)
	}
	return report.WriteTable(os.Stdout, ms)
}

// demoRun is one pass of the demo: a scheduler, and annotations set on every pod.
type demoRun struct {
	label, scheduler string
	annotations      []string
}

var demoRuns = []demoRun{
	{sim.PolicyTopolane, kube.WithTopolane, nil},
	{sim.PolicyOneNIC, kube.WithTopolane, []string{v1alpha1.AnnotationNICs, string(placement.NICsOne)}},
	{"default", kube.Plain, nil},
}

// replay sends the jobs to the run's scheduler one at a time and records what each got. A pod
// the scheduler cannot place stays pending; it is recorded when it is seen bound later.
func replay(ctx context.Context, c *kube.Cluster, nodes []scenario.Node, jobs []scenario.Job, run demoRun, seed uint64) (sim.Result, error) {
	if err := c.DeleteAll(ctx); err != nil {
		return sim.Result{}, err
	}
	agent := demoAgent{c: c, mirror: sim.NewCluster(nodes), devicePlugin: sim.NewDefaultLike(seed), attached: map[string][]v1alpha1.Attachment{}}
	total, _ := agent.mirror.GPUs()
	res := sim.Result{Policy: run.label, GPUsTotal: total, Outcomes: make([]sim.Outcome, len(jobs)), Horizon: jobs[len(jobs)-1].Arrival}
	progress := bar(os.Stderr, run.label, len(jobs))
	var pending []int
	for i, job := range jobs {
		res.Outcomes[i].Job = job
		if err := c.CreatePod(ctx, job, run.scheduler, run.annotations...); err != nil {
			return res, err
		}
		progress(i + 1)
		c.WaitScheduled(ctx, job.Name, 2*time.Second)
		var err error
		if pending, err = agent.bound(ctx, &res, append(pending, i), jobs, run, job.Arrival); err != nil {
			return res, fmt.Errorf("%s: %w", run.label, err)
		}
		_, used := agent.mirror.GPUs()
		res.Samples = append(res.Samples, sim.Sample{Time: job.Arrival, GPUsUsed: used})
	}
	res.SetBandwidth(agent.mirror.Stop(res.Horizon))
	return res, nil
}

// demoAgent is kubelet and the node side for the demo: the lowest free GPUs, then topolane's
// agent (the devices for those GPUs, reported in NodeTopology) or, without topolane, a device
// plugin's pick. The mirror holds what was given.
type demoAgent struct {
	c            *kube.Cluster
	mirror       *sim.Cluster
	devicePlugin *sim.DefaultLike
	attached     map[string][]v1alpha1.Attachment // by node
}

// bound records the pending jobs whose pods are now bound, as of now, and returns those still
// pending.
func (a *demoAgent) bound(ctx context.Context, res *sim.Result, pending []int, jobs []scenario.Job, run demoRun, now float64) ([]int, error) {
	var still []int
	for _, j := range pending {
		pod, err := a.c.Pod(ctx, jobs[j].Name)
		if err != nil {
			return nil, err
		}
		if pod.Spec.NodeName == "" {
			still = append(still, j)
			continue
		}
		if res.Outcomes[j], err = a.attach(ctx, jobs[j], pod, run.scheduler == kube.Plain, now); err != nil {
			return nil, err
		}
	}
	return still, nil
}

func (a *demoAgent) attach(ctx context.Context, job scenario.Job, pod *corev1.Pod, plain bool, now float64) (sim.Outcome, error) {
	node := a.mirror.Node(pod.Spec.NodeName)
	pl := sim.Placement{Node: node.Name, GPUs: node.LowestFreeGPUs(job.GPUs)}
	if plain {
		pl.Devices = node.Serving(a.devicePlugin.Device(node), pl.GPUs)
		return a.mirror.Record(job, pl, now)
	}
	choices, err := sim.AttachPod(node, pod, pl.GPUs)
	if err != nil {
		return sim.Outcome{}, fmt.Errorf("%s: %w", job.Name, err)
	}
	pl.Devices = sim.Allocations(choices)
	out, err := a.mirror.Record(job, pl, now)
	if err != nil || len(choices) == 0 {
		return out, err
	}
	a.attached[node.Name] = append(a.attached[node.Name], sim.Attachments(pod, choices)...)
	return out, a.c.Publish(ctx, node.Topo, a.attached[node.Name])
}

// placements prints each pod's node and devices under every run.
func placements(runs []sim.Result) error {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	head := []string{"pod", "GPUs", "topolane.io/nic"}
	for _, r := range runs {
		head = append(head, r.Policy, "devices", "level")
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for i, first := range runs[0].Outcomes {
		nic := first.Job.NIC
		if nic == "" {
			nic = "-"
		}
		row := []string{first.Job.Name, fmt.Sprint(first.Job.GPUs), nic}
		for _, r := range runs {
			row = append(row, got(r.Outcomes[i]))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// got is a pod's node, devices and their farthest level, as three cells.
func got(o sim.Outcome) string {
	switch {
	case !o.Placed:
		return "pending\t\t"
	case len(o.Devices) == 0:
		return o.Node + "\tnone\t"
	}
	return fmt.Sprintf("%s\t%s\t%s", o.Node, devices(o.Devices), o.Level)
}

// devices names one device by kind and PCI address, several by count and kind: "8×pf",
// "1×vf+1×macvlan".
func devices(devs []placement.Allocation) string {
	if len(devs) == 1 {
		return fmt.Sprintf("%s %s", devs[0].Kind, devs[0].Device)
	}
	var kinds []placement.Kind
	count := map[placement.Kind]int{}
	for _, d := range devs {
		if count[d.Kind] == 0 {
			kinds = append(kinds, d.Kind)
		}
		count[d.Kind]++
	}
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%d×%s", count[k], k)
	}
	return strings.Join(parts, "+")
}
