package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/topolane/topolane/bench/internal/kube"
	"github.com/topolane/topolane/bench/internal/scenario"
	"github.com/topolane/topolane/topology/topologytest"
)

func throughputCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("throughput", flag.ContinueOnError)
	nodes := fs.Int("nodes", 5000, "simulated nodes, four DGX H100s to one PCIe server")
	pods := fs.Int("pods", 300, "1-GPU pods scheduled by each scheduler")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *nodes <= 0 || *pods <= 0 {
		return fmt.Errorf("--nodes %d --pods %d: want both at least 1", *nodes, *pods)
	}
	r, err := measureThroughput(ctx, *nodes, *pods)
	if err != nil {
		return err
	}
	r.print()
	return nil
}

type throughput struct {
	nodes, pods int
	plain, topo float64 // pods/s
	verbs       []string
	p50, p99    map[string]time.Duration
	calls       map[string]int
	plainBound  int
	topoBound   int
}

// measureThroughput schedules the same pods with the plain scheduler, then with the extender.
func measureThroughput(ctx context.Context, nodes, pods int) (*throughput, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fmt.Fprintf(os.Stderr, "creating %d nodes and starting the schedulers...\n", nodes)
	c, err := kube.Start(ctx, bigCluster(nodes))
	if err != nil {
		return nil, err
	}
	r := &throughput{nodes: nodes, pods: pods, verbs: []string{"/filter", "/prioritize", "/bind"},
		p50: map[string]time.Duration{}, p99: map[string]time.Duration{}, calls: map[string]int{}}
	if r.plain, r.plainBound, err = schedule(ctx, c, kube.Plain, "plain", pods); err != nil {
		return nil, err
	}
	c.Latency.Reset()
	if r.topo, r.topoBound, err = schedule(ctx, c, kube.WithTopolane, "topolane", pods); err != nil {
		return nil, err
	}
	for _, v := range r.verbs {
		r.p50[v], r.p99[v], r.calls[v] = c.Latency.Percentiles(v)
	}
	return r, nil
}

// bigCluster is n nodes, four DGX H100s to one PCIe server.
func bigCluster(n int) []scenario.Node {
	dgx, pcie := topologytest.DGXH100(), topologytest.PCIeServer()
	nodes := make([]scenario.Node, n)
	for i := range nodes {
		nodes[i] = scenario.Node{Name: fmt.Sprintf("node-%05d", i), Machine: dgx}
		if i%5 == 4 {
			nodes[i].Machine = pcie
		}
	}
	return nodes
}

// schedule creates pods 1-GPU pods for the scheduler and returns pods/s until the last is bound.
// The pods of an earlier run stay: a few hundred GPUs of 40,000 change nothing.
func schedule(ctx context.Context, c *kube.Cluster, schedulerName, label string, pods int) (float64, int, error) {
	names := make([]string, pods)
	start := time.Now()
	for i := range names {
		names[i] = fmt.Sprintf("%s-%04d", label, i)
		if err := c.CreatePod(ctx, scenario.Job{Name: names[i], GPUs: 1}, schedulerName); err != nil {
			return 0, 0, err
		}
	}
	bound := c.WaitBound(ctx, names, 10*time.Minute, bar(os.Stderr, label, pods))
	took := time.Since(start)
	if bound < pods {
		return 0, bound, fmt.Errorf("%s scheduler bound %d of %d pods in %v", label, bound, pods, took.Round(time.Second))
	}
	return float64(pods) / took.Seconds(), bound, nil
}

func (r *throughput) print() {
	fmt.Printf("real kube-scheduler, %d nodes, %d 1-GPU pods each\n\n", r.nodes, r.pods)
	fmt.Printf("  without the extender  %7.1f pods/s\n", r.plain)
	fmt.Printf("  with topolane         %7.1f pods/s\n", r.topo)
	fmt.Printf("  ratio                 %7.2f (goal ≥ 0.6)\n\n", r.topo/r.plain)
	fmt.Println("  extender, server side:")
	for _, v := range r.verbs {
		fmt.Printf("  %-12s p50 %7.2f ms  p99 %7.2f ms  (%d calls)\n", v, ms(r.p50[v]), ms(r.p99[v]), r.calls[v])
	}
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
