package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/kubernetes/fake"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/extender/internal/scheduler"
	"github.com/topolane/topolane/extender/internal/server"
	"github.com/topolane/topolane/extender/internal/state"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
	"github.com/topolane/topolane/topology/topologytest"
)

// BenchmarkWirePath compares topolane's HTTP wire path with a trivial extender that only
// decodes ExtenderArgs with encoding/json and answers every node, both served over loopback
// and sent, alternately in one run, the requests a kube-scheduler v1.37 sends
// (pkg/scheduler/extender.go: json.Marshal of ExtenderArgs, POST with Content-Type
// application/json, a keep-alive http.Transport with the scheduler's defaults): filter, then
// prioritize of the nodes that passed. A round trip ends when the last byte of the answer is
// read; the scheduler's own encoding of the request and decoding of the answer are its costs,
// not the extender's, and stay out. Goal: topolane's round trip p50 ≤ 0.5 × trivial's at 5,000
// names.
func BenchmarkWirePath(b *testing.B) {
	for _, c := range wireCases(b, startServers(b, 5000)) {
		b.Run(c.name, func(b *testing.B) { // run -count times
			c.run.took = [2][3][]time.Duration{}
			runtime.GC()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				c.run.round(b, i)
			}
			c.run.report(b)
		})
	}
}

type wireCase struct {
	name string
	run  *wireRun
}

// wireCases are the two forms of request, their answers checked against a cluster built here
// like the server's; the client holds no cluster while it measures.
func wireCases(tb testing.TB, urls [2]string) []wireCase {
	store, names := wireCluster(5000)
	ext := newExtender(store)
	return []wireCase{
		{"names=5000", newWireRun(tb, urls, ext, names, false)},
		{"nodes=500", newWireRun(tb, urls, ext, names[:500], true)},
	}
}

// The two sides, and what a round trip records of each.
const (
	trivial, topolane                     = 0, 1
	filterTook, prioritizeTook, roundTrip = 0, 1, 2
)

var sideNames = [2]string{"trivial (encoding/json)", "topolane"}

// wireRun sends one case's requests to both extenders and records how long each took.
type wireRun struct {
	client             *http.Client
	urls               [2]string
	filter, prioritize []byte
	took               [2][3][]time.Duration
	answer             bytes.Buffer
	sizes              [2][2]int // the answers' bytes: side, verb
}

func newWireRun(tb testing.TB, urls [2]string, ext *scheduler.Extender, names []string, full bool) *wireRun {
	tb.Helper()
	w := &wireRun{client: schedulerClient(), urls: urls}
	w.filter = marshal(tb, filterArgs(names, full))
	w.prioritize = marshal(tb, w.checkFilter(tb, ext))
	w.checkPrioritize(tb, ext)
	return w
}

// Each extender runs in a process of its own, as it does in a cluster, and the benchmark (the
// scheduler's side) in a third: in one process the trivial extender's garbage would make the
// collector scan topolane's cluster state, and the other way round.
const (
	serveEnv                  = "TOPOLANE_WIRE_SERVE" // trivial, or topolane:<nodes>
	trivialMode, topolaneMode = "trivial", "topolane:"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(serveEnv); mode != "" {
		serve(mode)
		return
	}
	os.Exit(m.Run())
}

// serve runs one side on loopback, prints its URL and serves until its stdin closes.
func serve(mode string) {
	h := trivialExtender()
	if n, ok := strings.CutPrefix(mode, topolaneMode); ok {
		nodes, err := strconv.Atoi(n)
		if err != nil {
			panic(err)
		}
		store, _ := wireCluster(nodes)
		h = server.New(newExtender(store), store, func() bool { return true }, prometheus.NewRegistry())
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	fmt.Println(srv.URL)
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// startServers starts the trivial extender and topolane's on a cluster of n nodes.
func startServers(tb testing.TB, n int) (urls [2]string) {
	tb.Helper()
	for side, mode := range [2]string{trivialMode, topolaneMode + strconv.Itoa(n)} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env, cmd.Stderr = append(os.Environ(), serveEnv+"="+mode), os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			tb.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			tb.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			tb.Fatalf("starting the %s extender: %v", mode, err)
		}
		urls[side] = strings.TrimSpace(line)
	}
	return urls
}

// schedulerClient is the client kube-scheduler v1.37's HTTPExtender builds for an http:// URL
// (makeTransport, NewHTTPExtender with the default 5 s timeout).
func schedulerClient() *http.Client {
	return &http.Client{Transport: utilnet.SetTransportDefaults(&http.Transport{}), Timeout: 5 * time.Second}
}

// filterArgs is the scheduler's filter request: names alone (nodeCacheCapable: true), or the
// full Node objects (nodeCacheCapable: false).
func filterArgs(names []string, full bool) *extenderv1.ExtenderArgs {
	args := &extenderv1.ExtenderArgs{Pod: scheduledPod(2)}
	if !full {
		args.NodeNames = &names
		return args
	}
	args.Nodes = &corev1.NodeList{}
	for i, name := range names {
		args.Nodes.Items = append(args.Nodes.Items, fullNode(name, gpusOf(i)))
	}
	return args
}

func marshal(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v) // as the scheduler does
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// round sends filter then prioritize to each side, alternating which goes first.
func (w *wireRun) round(tb testing.TB, i int) {
	for k := range 2 {
		side := (i + k) % 2
		start := time.Now()
		w.sizes[side][0] = w.post(tb, w.urls[side]+"/filter", w.filter)
		mid := time.Now()
		w.sizes[side][1] = w.post(tb, w.urls[side]+"/prioritize", w.prioritize)
		end := time.Now()
		t := &w.took[side]
		t[filterTook] = append(t[filterTook], mid.Sub(start))
		t[prioritizeTook] = append(t[prioritizeTook], end.Sub(mid))
		t[roundTrip] = append(t[roundTrip], end.Sub(start))
	}
}

// post sends one request as HTTPExtender.send does and reads the whole answer into w.answer.
func (w *wireRun) post(tb testing.TB, url string, body []byte) int {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	w.answer.Reset()
	if _, err := w.answer.ReadFrom(resp.Body); err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s: %d %v %.200s", url, resp.StatusCode, err, w.answer.String())
	}
	return w.answer.Len()
}

// report prints p50 and p99 of each side and verb, and the ratios.
func (w *wireRun) report(b *testing.B) {
	var p [2][3][2]float64 // side, what, p50/p99 in ms
	for side := range 2 {
		for what := range 3 {
			p[side][what] = percentilesOf(w.took[side][what])
		}
	}
	var s strings.Builder
	fmt.Fprintf(&s, "%d rounds; requests: filter %d B, prioritize %d B\n", len(w.took[0][0]), len(w.filter), len(w.prioritize))
	fmt.Fprintf(&s, "%-24s %-19s %-19s %-19s %s\n", "p50 / p99 ms", "filter", "prioritize", "round trip", "answers B")
	for side := range 2 {
		fmt.Fprintf(&s, "%-24s", sideNames[side])
		for what := range 3 {
			fmt.Fprintf(&s, " %-19s", fmt.Sprintf("%.2f / %.2f", p[side][what][0], p[side][what][1]))
		}
		fmt.Fprintf(&s, " %d + %d\n", w.sizes[side][0], w.sizes[side][1])
	}
	ratio50, ratio99 := p[topolane][roundTrip][0]/p[trivial][roundTrip][0], p[topolane][roundTrip][1]/p[trivial][roundTrip][1]
	fmt.Fprintf(&s, "round trip topolane ÷ trivial: p50 %.2f, p99 %.2f (goal p50 ≤ 0.5 at 5,000 names)", ratio50, ratio99)
	b.Log(s.String())
	b.ReportMetric(p[topolane][roundTrip][0], "topolane-p50-ms")
	b.ReportMetric(p[topolane][roundTrip][1], "topolane-p99-ms")
	b.ReportMetric(p[trivial][roundTrip][0], "trivial-p50-ms")
	b.ReportMetric(p[trivial][roundTrip][1], "trivial-p99-ms")
	b.ReportMetric(ratio50, "ratio-p50")
	b.ReportMetric(ratio99, "ratio-p99")
	b.ReportMetric(0, "ns/op")
}

func percentilesOf(d []time.Duration) [2]float64 {
	d = slices.Clone(d)
	slices.Sort(d)
	return [2]float64{float64(d[len(d)/2]) / 1e6, float64(d[len(d)*99/100]) / 1e6}
}

// checkFilter checks both sides' filter answers: the trivial one passes every node, topolane's
// is what its scheduler decides, as encoding/json would write it. It returns the prioritize
// request: the nodes topolane passed, in the form the scheduler sends them.
func (w *wireRun) checkFilter(tb testing.TB, ext *scheduler.Extender) *extenderv1.ExtenderArgs {
	tb.Helper()
	args := unmarshal[extenderv1.ExtenderArgs](tb, w.filter)
	all := extenderv1.ExtenderFilterResult{NodeNames: args.NodeNames, Nodes: args.Nodes}
	w.post(tb, w.urls[trivial]+"/filter", w.filter)
	sameJSON(tb, "trivial filter", w.answer.Bytes(), marshal(tb, all))

	res, err := ext.Filter(unmarshal[*extenderv1.ExtenderArgs](tb, w.filter))
	if err != nil {
		tb.Fatal(err)
	}
	want := marshal(tb, res)
	scheduler.ReleaseFilter(res)
	w.post(tb, w.urls[topolane]+"/filter", w.filter)
	sameJSON(tb, "topolane filter", w.answer.Bytes(), want)
	got := unmarshal[extenderv1.ExtenderFilterResult](tb, w.answer.Bytes())
	if n := len(got.FailedNodes) + len(got.FailedAndUnresolvableNodes); n == 0 || n == len(nodeNames(&args)) {
		tb.Fatalf("topolane's filter refused %d of %d nodes: the case should pass some and refuse some", n, len(nodeNames(&args)))
	}
	return &extenderv1.ExtenderArgs{Pod: args.Pod, NodeNames: got.NodeNames, Nodes: got.Nodes}
}

// checkPrioritize checks both sides' prioritize answers.
func (w *wireRun) checkPrioritize(tb testing.TB, ext *scheduler.Extender) {
	tb.Helper()
	args := unmarshal[*extenderv1.ExtenderArgs](tb, w.prioritize)
	w.post(tb, w.urls[trivial]+"/prioritize", w.prioritize)
	sameJSON(tb, "trivial prioritize", w.answer.Bytes(), marshal(tb, scoreAll(args)))
	list, err := ext.Prioritize(args)
	if err != nil {
		tb.Fatal(err)
	}
	want := marshal(tb, list)
	scheduler.ReleasePriorities(list)
	w.post(tb, w.urls[topolane]+"/prioritize", w.prioritize)
	sameJSON(tb, "topolane prioritize", w.answer.Bytes(), want)
}

func unmarshal[T any](tb testing.TB, b []byte) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		tb.Fatal(err)
	}
	return v
}

// sameJSON compares two answers as the scheduler reads them: decoded with encoding/json.
func sameJSON(tb testing.TB, what string, got, want []byte) {
	tb.Helper()
	norm := func(b []byte) string {
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			tb.Fatalf("%s: %v: %.200s", what, err, b)
		}
		return string(marshal(tb, v))
	}
	if diff := cmp.Diff(norm(want), norm(got)); diff != "" {
		tb.Fatalf("%s (-want +got):\n%.2000s", what, diff)
	}
}

// trivialExtender decodes ExtenderArgs with encoding/json and answers every node: filter passes
// them all, prioritize gives each a score.
func trivialExtender() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /filter", func(w http.ResponseWriter, r *http.Request) {
		if args, ok := decodeArgs(w, r); ok {
			encodeAnswer(w, extenderv1.ExtenderFilterResult{NodeNames: args.NodeNames, Nodes: args.Nodes})
		}
	})
	mux.HandleFunc("POST /prioritize", func(w http.ResponseWriter, r *http.Request) {
		if args, ok := decodeArgs(w, r); ok {
			encodeAnswer(w, scoreAll(args))
		}
	})
	return mux
}

func decodeArgs(w http.ResponseWriter, r *http.Request) (*extenderv1.ExtenderArgs, bool) {
	var args extenderv1.ExtenderArgs
	if err := json.NewDecoder(r.Body).Decode(&args); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, false
	}
	return &args, true
}

func encodeAnswer(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func scoreAll(args *extenderv1.ExtenderArgs) extenderv1.HostPriorityList {
	names := nodeNames(args)
	list := make(extenderv1.HostPriorityList, len(names))
	for i, name := range names {
		list[i] = extenderv1.HostPriority{Host: name, Score: 5}
	}
	return list
}

func nodeNames(args *extenderv1.ExtenderArgs) []string {
	if args.NodeNames != nil {
		return *args.NodeNames
	}
	var names []string
	if args.Nodes != nil {
		for i := range args.Nodes.Items {
			names = append(names, args.Nodes.Items[i].Name)
		}
	}
	return names
}

func newExtender(store *state.Store) *scheduler.Extender {
	return scheduler.New(store, fake.NewClientset(), scheduler.Config{NoPF: scheduler.NoPFReject}, nil)
}

// gpusOf is node i's GPUs: four DGX H100s to one PCIe server.
func gpusOf(i int) int {
	if i%5 == 4 {
		return len(topologytest.PCIeServer().Node().GPUs)
	}
	return len(topologytest.DGXH100().Node().GPUs)
}

// wireCluster is the cluster BenchmarkHTTPRoundTrip5000 measures (extender/internal/scheduler),
// scaled to n nodes: four DGX H100s to one PCIe server, 8 pods bound on each node, 4 of them
// one-GPU pods holding a macvlan (the PCIe servers are then full, the DGXs half full). A 2-GPU
// pod passes the DGXs and is refused by the PCIe servers.
func wireCluster(n int) (*state.Store, []string) {
	store := state.New(state.DefaultGPUResources, placement.DefaultWeights, nil)
	names := make([]string, n)
	dgx, pcie := topologytest.DGXH100(), topologytest.PCIeServer()
	for i := range names {
		names[i] = fmt.Sprintf("node-%04d", i)
		m, nic := dgx, "0000:42:00.0"
		if i%5 == 4 {
			m, nic = pcie, "0000:18:00.1"
		}
		nt := extendertest.Topology(names[i], m)
		store.SetNode(extendertest.Node(names[i], nt.Status.GPUs))
		store.SetTopology(names[i], nt, nil)
		for j := range 8 {
			pod := extendertest.Pod("ns", fmt.Sprintf("p-%05d", j*n+i), 0)
			if j < 4 {
				pod = extendertest.Pod("ns", fmt.Sprintf("p-%05d", j*n+i), 1)
				alloc := v1alpha1.Allocation{Node: names[i], PodUID: pod.UID, Devices: []v1alpha1.Device{{Rail: 1, Kind: placement.KindMacvlan, NIC: nic, Device: nic}}}
				pod.Annotations[v1alpha1.AnnotationAllocation] = alloc.String()
			}
			pod.Spec.NodeName = names[i]
			store.SetPodInfo(state.NewPodInfo(pod, state.DefaultGPUResources))
		}
	}
	return store, names
}

// TestWirePathAnswers runs BenchmarkWirePath's harness on a small cluster so that it cannot rot:
// both sides must answer as they should (topolane as its scheduler decides, decoded as the
// scheduler decodes), in both forms of request.
func TestWirePathAnswers(t *testing.T) {
	servers := startServers(t, 100)
	store, names := wireCluster(100)
	ext := newExtender(store)
	for _, full := range []bool{false, true} {
		w := newWireRun(t, servers, ext, names, full)
		for i := range 2 {
			w.round(t, i)
		}
	}
}
