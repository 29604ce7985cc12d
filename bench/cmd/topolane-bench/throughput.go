package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/topolane/topolane/bench/internal/realapi"
	"github.com/topolane/topolane/bench/internal/scenario"
	"github.com/topolane/topolane/extender/e2e/kubesched"
	"github.com/topolane/topolane/topology/topologytest"
)

// Scheduler names of the two profiles: the same scheduler with and without the extender.
const (
	withTopolane = "topolane-scheduler"
	plain        = "plain-scheduler"
)

type throughputFlags struct {
	nodes, pods, boundPods int
	rounds                 int
	heapProfile            string
	extenderFlags          string
	keep                   bool
	cpuProfile             string
}

func throughputCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("throughput", flag.ContinueOnError)
	var f throughputFlags
	fs.IntVar(&f.nodes, "nodes", 5000, "nodes, four DGX H100s to one PCIe server, each with the NodeTopology topolane-agent publishes")
	fs.IntVar(&f.pods, "pods", 1000, "pending 1-GPU pods scheduled by each scheduler")
	fs.IntVar(&f.rounds, "rounds", 2, "rounds of the two schedulers, taking turns (the pods split between them), so that a machine whose speed drifts during the run weighs on both sides alike")
	fs.IntVar(&f.boundPods, "bound-pods", 40000, "pods already bound before the extender starts, round-robin over the nodes: the first four rounds 1-GPU pods holding a macvlan, the rest without a GPU")
	fs.StringVar(&f.heapProfile, "heap-profile", "", "write the extender's heap profile (after its informers synced and a GC) to this file, for go tool pprof")
	fs.StringVar(&f.extenderFlags, "extender-flags", "", "more flags for topolane-extender, space-separated (e.g. --kube-api-qps=50); none: its defaults, as the chart runs it")
	fs.StringVar(&f.cpuProfile, "cpu-profile-prefix", "", "write CPU profiles of this process (the kube-scheduler) while it schedules, to PREFIX-plain-scheduler-rN.pprof and PREFIX-topolane-scheduler-rN.pprof for each round N")
	fs.BoolVar(&f.keep, "keep", false, "keep the working directory: the API server's and the extender's logs, etcd's data")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.nodes <= 0 || f.pods <= 0 || f.boundPods < 0 || f.rounds <= 0 || f.rounds > f.pods {
		return fmt.Errorf("--nodes %d --pods %d --bound-pods %d --rounds %d: want nodes and pods at least 1, rounds between 1 and pods",
			f.nodes, f.pods, f.boundPods, f.rounds)
	}
	r, err := measureThroughput(ctx, f)
	if err != nil {
		return err
	}
	r.print()
	return nil
}

// side is one scheduler's rounds, added up.
type side struct {
	label, scheduler string
	pods             int
	rounds           []float64 // pods/s of each round
	podsPerSecond    float64
	took             time.Duration
	attempt          realapi.Quantiles  // scheduler_scheduling_attempt_duration_seconds, result scheduled
	attempts         map[string]float64 // scheduler_schedule_attempts_total by result
	// cpu is the CPU time per pod of each process while the side ran: the bench (the
	// scheduler), the API server with etcd, the extender.
	cpu [3]time.Duration
	// Readings before the first round.
	attemptsBefore     realapi.Histogram
	attemptCountBefore map[string]float64
}

type throughput struct {
	f                        throughputFlags
	dgxBytes, pcieBytes      int
	servedBytes              int // the first DGX's, as the API server serves it
	nodesTook, boundPodsTook time.Duration
	syncTook                 time.Duration
	memory, memoryAfter      realapi.Memory
	plain, topo              side
	verbs                    []string
	extender                 map[string]realapi.Quantiles
	binds                    map[string]float64 // topolane_extender_binds_total by result
}

// measureThroughput fills a real API server, starts the real topolane-extender and measures
// its memory, then schedules pods with the real kube-scheduler without the extender, then with
// it.
func measureThroughput(ctx context.Context, f throughputFlags) (*throughput, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dir, err := os.MkdirTemp("", "topolane-bench-")
	if err != nil {
		return nil, err
	}
	if !f.keep {
		defer os.RemoveAll(dir)
	}
	step(fmt.Sprintf("building topolane-extender and starting kube-apiserver (%s)", dir))
	bin, err := realapi.BuildExtender(ctx, dir)
	if err != nil {
		return nil, err
	}
	api, err := realapi.StartAPIServer(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer api.Stop()
	c, err := realapi.NewCluster(api.Config)
	if err != nil {
		return nil, err
	}
	nodes := bigCluster(f.nodes)
	r := &throughput{f: f, verbs: []string{"filter", "prioritize", "bind"}, extender: map[string]realapi.Quantiles{},
		dgxBytes: realapi.TopologyBytes(nodes[0]), plain: side{label: "without the extender", scheduler: plain},
		topo: side{label: "with topolane", scheduler: withTopolane}}
	if len(nodes) > 4 {
		r.pcieBytes = realapi.TopologyBytes(nodes[4])
	}
	if err := fill(ctx, c, nodes, r); err != nil {
		return nil, fmt.Errorf("%w\nkube-apiserver's log ends:\n%s", err, api.LogTail())
	}
	ext, err := startExtender(ctx, bin, api, dir, r)
	if err != nil {
		return nil, err
	}
	defer ext.Stop()
	procs := []int{os.Getpid(), api.Pid(), ext.Pid()}
	sides := []*side{&r.plain, &r.topo}
	for _, s := range sides {
		s.attemptsBefore, s.attemptCountBefore = attemptHistogram(s.scheduler)
	}
	for round := range f.rounds {
		// ABBA: in every other round the extender goes first, so that a steady drift in the
		// machine's speed favours neither side.
		slices.Reverse(sides)
		pods := f.pods*(round+1)/f.rounds - f.pods*round/f.rounds
		for _, s := range sides {
			if err := schedule(ctx, c, ext.URL, pods, round+1, procs, f.cpuProfile, s); err != nil {
				return nil, fmt.Errorf("%w\ntopolane-extender's log ends:\n%s", err, ext.LogTail())
			}
		}
	}
	for _, s := range sides {
		s.finish()
	}
	return r, r.scrape(ctx, ext)
}

func step(s string) { fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), s) }

// fill creates the namespaces, the CRD, the nodes with their NodeTopologies, and the bound pods.
func fill(ctx context.Context, c *realapi.Cluster, nodes []scenario.Node, r *throughput) error {
	if err := c.InstallCRD(ctx); err != nil {
		return err
	}
	if err := c.CreateNamespaces(ctx, "load", plain, withTopolane); err != nil {
		return err
	}
	step(fmt.Sprintf("creating %d nodes with their NodeTopology", len(nodes)))
	start := time.Now()
	if err := c.CreateNodes(ctx, nodes); err != nil {
		return err
	}
	r.nodesTook = time.Since(start)
	var err error
	if r.servedBytes, err = c.ServedTopologyBytes(ctx, nodes[0].Name); err != nil {
		return err
	}
	step(fmt.Sprintf("creating %d bound pods", r.f.boundPods))
	start = time.Now()
	if err := c.CreateBoundPods(ctx, "load", nodes, r.f.boundPods, 4); err != nil {
		return err
	}
	r.boundPodsTook = time.Since(start)
	return nil
}

// startExtender starts the extender, waits for its informers to sync, and reads its memory
// after a garbage collection.
func startExtender(ctx context.Context, bin string, api *realapi.APIServer, dir string, r *throughput) (*realapi.Extender, error) {
	step("starting topolane-extender")
	start := time.Now()
	ext, err := realapi.StartExtender(ctx, bin, api.Kubeconfig, dir, withTopolane, strings.Fields(r.f.extenderFlags)...)
	if err != nil {
		return nil, err
	}
	r.syncTook = time.Since(start)
	if err := checkCounted(ctx, ext, r.f.nodes, r.f.boundPods); err != nil {
		ext.Stop()
		return nil, err
	}
	profile, err := ext.HeapProfile(ctx)
	if err == nil && r.f.heapProfile != "" {
		err = os.WriteFile(r.f.heapProfile, profile, 0o644)
	}
	if err == nil {
		r.memory, err = ext.Memory(ctx)
	}
	if err != nil {
		ext.Stop()
		return nil, err
	}
	return ext, nil
}

// checkCounted fails unless the extender counts what the bench created: on the first node,
// every pod placed there, a device held by each of its GPU pods, and no allocation refused
// anywhere.
func checkCounted(ctx context.Context, ext *realapi.Extender, nodes, boundPods int) error {
	pods := (boundPods + nodes - 1) / nodes
	gpuPods := min(pods, 4)
	got, err := ext.Counted(ctx, nodeName(0))
	if err != nil {
		return err
	}
	families, err := ext.Metrics(ctx)
	if err != nil {
		return err
	}
	if len(got.Pods) != pods || len(got.Held) != gpuPods || len(got.Problems) > 0 || realapi.Problems(families) > 0 {
		return fmt.Errorf("the extender counts %d pods and %d devices on %s, problems %q (%v in all), want %d pods holding %d devices and none",
			len(got.Pods), len(got.Held), nodeName(0), got.Problems, realapi.Problems(families), pods, gpuPods)
	}
	return nil
}

// schedule runs one round of a side: it creates the round's pods, then starts the side's
// scheduler and times it from the start (informers synced) until the watch sees the last pod
// bound; then stops it.
func schedule(ctx context.Context, c *realapi.Cluster, url string, pods, round int, procs []int, cpuProfile string, s *side) error {
	waitQuiet(procs)
	step(fmt.Sprintf("round %d: creating %d pods for %s", round, pods, s.scheduler))
	names, err := c.CreatePending(ctx, s.scheduler, s.scheduler, fmt.Sprintf("pod-r%d", round), pods)
	if err != nil {
		return err
	}
	watch, err := c.WatchBound(ctx, s.scheduler)
	if err != nil {
		return err
	}
	defer watch.Stop()
	if s.scheduler == plain {
		url = ""
	}
	schedCtx, stop := context.WithCancel(ctx)
	defer stop()
	step(fmt.Sprintf("round %d: starting %s", round, s.scheduler))
	if err := kubesched.Start(schedCtx, c.Client, url, s.scheduler); err != nil {
		return err
	}
	if cpuProfile != "" {
		stopProfile, err := startCPUProfile(fmt.Sprintf("%s-%s-r%d.pprof", cpuProfile, s.scheduler, round))
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	start, cpu := time.Now(), cpuTimes(procs)
	bound, last := watch.Wait(ctx, names, 10*time.Minute, bar(os.Stderr, s.scheduler, pods))
	var used [3]time.Duration
	for i, t := range cpuTimes(procs) {
		used[i] = t - cpu[i]
		s.cpu[i] += used[i]
	}
	if bound < pods {
		return fmt.Errorf("%s bound %d of %d pods in %v", s.scheduler, bound, pods, time.Since(start).Round(time.Second))
	}
	took := last.Sub(start)
	s.took += took
	s.pods += pods
	s.rounds = append(s.rounds, float64(pods)/took.Seconds())
	step(fmt.Sprintf("round %d: %s %.1f pods/s; CPU per pod %.1f / %.1f / %.1f ms", round, s.scheduler, s.rounds[len(s.rounds)-1],
		ms(used[0]/time.Duration(pods)), ms(used[1]/time.Duration(pods)), ms(used[2]/time.Duration(pods))))
	return nil
}

// finish turns the side's sums into rates and per-pod figures, and reads what its scheduler's
// metrics counted over all its rounds.
func (s *side) finish() {
	s.podsPerSecond = float64(s.pods) / s.took.Seconds()
	for i := range s.cpu {
		s.cpu[i] /= time.Duration(s.pods)
	}
	after, attempts := attemptHistogram(s.scheduler)
	s.attempt = after.Minus(s.attemptsBefore).Quantiles()
	s.attempts = attempts
	for result, n := range s.attemptCountBefore {
		s.attempts[result] -= n
	}
}

// waitQuiet waits, 30 s at most, until the processes together use less than a quarter of a core
// over a second: what filling the API server or the last round left running (etcd, garbage
// collection, the last events) must not be charged to the next round.
func waitQuiet(procs []int) {
	for range 30 {
		before := cpuTimes(procs)
		time.Sleep(time.Second)
		var used time.Duration
		for i, t := range cpuTimes(procs) {
			used += t - before[i]
		}
		if used < time.Second/4 {
			return
		}
	}
}

func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func cpuTimes(pids []int) []time.Duration {
	t := make([]time.Duration, len(pids))
	for i, pid := range pids {
		t[i] = realapi.CPUTime(pid)
	}
	return t
}

// attemptHistogram reads the in-process scheduler's scheduling attempts of a profile: the
// duration of those that scheduled, and the count by result.
func attemptHistogram(profile string) (realapi.Histogram, map[string]float64) {
	families, _ := legacyregistry.DefaultGatherer.Gather()
	return realapi.HistogramOf(families, "scheduler_scheduling_attempt_duration_seconds", map[string]string{"profile": profile, "result": "scheduled"}),
		realapi.CounterByLabel(families, "scheduler_schedule_attempts_total", "result", map[string]string{"profile": profile})
}

// scrape reads the extender's per-verb latency and its memory after the run.
func (r *throughput) scrape(ctx context.Context, ext *realapi.Extender) error {
	families, err := ext.Metrics(ctx)
	if err != nil {
		return err
	}
	for _, v := range r.verbs {
		r.extender[v] = realapi.HistogramOf(families, "topolane_extender_request_duration_seconds", map[string]string{"verb": v}).Quantiles()
	}
	r.binds = realapi.CounterByLabel(families, "topolane_extender_binds_total", "result", nil)
	r.memoryAfter, err = ext.Memory(ctx)
	return err
}

// bigCluster is n nodes, four DGX H100s to one PCIe server.
func bigCluster(n int) []scenario.Node {
	dgx, pcie := topologytest.DGXH100(), topologytest.PCIeServer()
	nodes := make([]scenario.Node, n)
	for i := range nodes {
		nodes[i] = scenario.Node{Name: nodeName(i), Machine: dgx}
		if i%5 == 4 {
			nodes[i].Machine = pcie
		}
	}
	return nodes
}

func nodeName(i int) string { return fmt.Sprintf("node-%05d", i) }

func (r *throughput) print() {
	mib := func(b float64) float64 { return b / (1 << 20) }
	fmt.Printf("real kube-apiserver (etcd in-process), real kube-scheduler, real topolane-extender; %d nodes, %d bound pods\n", r.f.nodes, r.f.boundPods)
	fmt.Printf("  a NodeTopology as topolane-agent publishes it: DGX H100 %d bytes of JSON (%d as the API server serves it, with its metadata), PCIe server %d\n",
		r.dgxBytes, r.servedBytes, r.pcieBytes)
	fmt.Printf("  filling the API server: nodes %.1f s, bound pods %.1f s; the extender synced in %.1f s\n\n",
		r.nodesTook.Seconds(), r.boundPodsTook.Seconds(), r.syncTook.Seconds())
	fmt.Println("memory of topolane-extender, informers synced, after a GC (goal: RSS ≤ 200 MiB)")
	fmt.Printf("  RSS %7.1f MiB   Go heap in use %7.1f MiB (live %.1f; freed, not yet returned to the OS %.1f)   peak RSS %.1f MiB\n",
		mib(r.memory.RSS), mib(r.memory.Heap), mib(r.memory.HeapLive), mib(r.memory.Unreturned), mib(r.memory.PeakRSS))
	fmt.Printf("  after the run (no forced GC): RSS %.1f MiB, Go heap in use %.1f MiB\n\n", mib(r.memoryAfter.RSS), mib(r.memoryAfter.Heap))
	fmt.Printf("throughput, %d pending 1-GPU pods for each scheduler, in %d rounds taking turns\n", r.f.pods, r.f.rounds)
	for _, s := range []side{r.plain, r.topo} {
		fmt.Printf("  %-22s %7.1f pods/s (%.1f s)   attempt p50 %6.1f ms  p99 %7.1f ms (%d)\n",
			s.label, s.podsPerSecond, s.took.Seconds(), ms(s.attempt.P50), ms(s.attempt.P99), s.attempt.Count)
	}
	fmt.Printf("  ratio                  %7.2f (goal ≥ 0.6)\n", r.topo.podsPerSecond/r.plain.podsPerSecond)
	for _, s := range []side{r.plain, r.topo} {
		fmt.Printf("  %-22s rounds: %s pods/s\n", s.label, rounds(s.rounds))
	}
	for _, s := range []side{r.plain, r.topo} {
		fmt.Printf("  %-22s scheduling attempts: %s\n", s.label, counts(s.attempts))
	}
	fmt.Printf("  %-22s binds: %s\n", "topolane-extender", counts(r.binds))
	fmt.Println("  CPU per pod (ms)       scheduler  kube-apiserver+etcd  topolane-extender")
	for _, s := range []side{r.plain, r.topo} {
		fmt.Printf("  %-22s %9.1f  %19.1f  %17.1f\n", s.label, ms(s.cpu[0]), ms(s.cpu[1]), ms(s.cpu[2]))
	}
	fmt.Println()
	fmt.Println("  topolane-extender per verb (its topolane_extender_request_duration_seconds):")
	for _, v := range r.verbs {
		q := r.extender[v]
		fmt.Printf("  %-12s p50 %7.2f ms  p99 %7.2f ms  (%d calls)\n", v, ms(q.P50), ms(q.P99), q.Count)
	}
	fmt.Println("  (p50/p99 estimated from histogram buckets, as Prometheus's histogram_quantile)")
}

func rounds(pps []float64) string {
	parts := make([]string, len(pps))
	for i, p := range pps {
		parts[i] = fmt.Sprintf("%.1f", p)
	}
	return strings.Join(parts, ", ")
}

// counts writes "result n, ..." in the order of the results' names, leaving out zeros.
func counts(by map[string]float64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(by)) {
		if by[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f", k, by[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
