package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/extender/embedded"
	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/topologytest"
)

// topologies is how many DGX H100 NodeTopologies (14 KB of JSON each) and Nodes the readiness
// test creates: enough that the extender's first lists take a while to fold in. With readiness
// from the informers' HasSynced, the first filter after ready rejected 616, 1,637 and 1,666 of
// 2,000 nodes (183 to 555 of 1,000; none of 300). Creating 2,000 takes 10 to 34 s here.
var topologies = flag.Int("topologies", 2000, "NodeTopologies and Nodes the readiness test creates")

// TestFirstFilterAfterReadySeesEveryTopology is issue #11's point 5 on the real API server:
// with thousands of NodeTopologies listed, the verbs answer 503 until every one is folded into
// its node's summary, and the first filter after /readyz says ready passes every node. Serving
// readiness from the informers' own HasSynced (the cache is full, the handlers still behind)
// fails it: nodes rejected as "no NodeTopology".
func TestFirstFilterAfterReadySeesEveryTopology(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startAPIServer(t, ctx)
	installCRD(t, ctx, c.cfg)
	start := time.Now()
	names := createDGXNodes(t, ctx, c, *topologies)
	t.Logf("created %d NodeTopologies and their Nodes in %v", len(names), time.Since(start).Round(time.Millisecond))

	ext := embedded.New(c.client, embedded.Config{})
	start = time.Now()
	if err := ext.Start(ctx, c.client, c.dyn); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ext.Handler())
	defer srv.Close()
	p := prober{t: t, url: srv.URL, args: filterArgs(t, names), nodes: len(names)}
	unavailable := p.untilReady(ctx)
	t.Logf("ready %v after start; %d filters answered 503 before", time.Since(start).Round(time.Millisecond), unavailable)
	if unavailable == 0 {
		t.Errorf("no filter was answered 503 while %d NodeTopologies were being taken in", len(names))
	}
}

// createDGXNodes creates n DGX H100 NodeTopologies and their Nodes (each topology first, as an
// agent publishes it before kubelet's node is ready) from concurrent creators, and returns the
// node names.
func createDGXNodes(t *testing.T, ctx context.Context, c cluster, n int) []string {
	t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("dgx-%04d", i)
	}
	template := extendertest.Topology("template", topologytest.DGXH100())
	work := make(chan string)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for name := range work {
				errs <- createGPUNode(ctx, c, name, template)
			}
		})
	}
	for _, name := range names {
		work <- name
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return names
}

// createGPUNode publishes template's NodeTopology under name, then creates the Node with its
// GPUs allocatable.
func createGPUNode(ctx context.Context, c cluster, name string, template *v1alpha1.NodeTopology) error {
	nt := template.DeepCopy()
	nt.Name = name
	u, err := v1alpha1.ToUnstructured(nt)
	if err != nil {
		return err
	}
	if _, err := c.dyn.Resource(v1alpha1.GroupVersionResource).Create(ctx, u, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating NodeTopology %s: %w", name, err)
	}
	node := extendertest.Node(name, nt.Status.GPUs) // a Node's status is kept on create, as kubelet's
	node.UID = ""
	if _, err := c.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating Node %s: %w", name, err)
	}
	return nil
}

// filterArgs is the scheduler's filter request for an 8-GPU pod over the named nodes, as it sends
// it with nodeCacheCapable: true.
func filterArgs(t *testing.T, names []string) []byte {
	t.Helper()
	body, err := json.Marshal(extenderv1.ExtenderArgs{Pod: extendertest.Pod(ns, "probe", 8), NodeNames: &names})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// prober asks a starting extender, as the scheduler would, whether it is ready and to filter.
type prober struct {
	t     *testing.T
	url   string
	args  []byte
	nodes int // how many the filter names
}

// untilReady alternates /readyz and /filter until /readyz says ready, then sends one more
// filter. Every filter must be answered 503 (not ready) or pass every node; a 503 after
// /readyz said ready is wrong too. It returns how many filters were answered 503.
func (p prober) untilReady(ctx context.Context) (unavailable int) {
	p.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		ready := p.get("/readyz") == http.StatusOK
		if !p.filter(ready) {
			unavailable++
		}
		if ready {
			return unavailable
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatal("the extender never said ready")
	return unavailable
}

func (p prober) get(path string) int {
	p.t.Helper()
	resp, err := http.Get(p.url + path)
	if err != nil {
		p.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// filter sends the filter request and checks its answer; it reports whether it was answered
// (not 503).
func (p prober) filter(ready bool) bool {
	p.t.Helper()
	resp, err := http.Post(p.url+"/filter", "application/json", bytes.NewReader(p.args))
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable && !ready {
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), "not ready") {
			p.t.Errorf("a filter before ready was answered 503 %s, want a message saying it is not ready", body)
		}
		return false
	}
	var res extenderv1.ExtenderFilterResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != http.StatusOK {
		p.t.Fatalf("filter (readyz said ready: %v): HTTP %d, %v", ready, resp.StatusCode, err)
	}
	var names []string
	if res.NodeNames != nil {
		names = *res.NodeNames
	}
	if failed := len(res.FailedNodes) + len(res.FailedAndUnresolvableNodes); failed > 0 || res.Error != "" {
		p.t.Fatalf("the first filter answered (readyz said ready: %v) passed %d nodes and rejected %d: %s%s", ready, len(names), failed,
			sample(res.FailedNodes, res.FailedAndUnresolvableNodes), res.Error)
	}
	if len(names) != p.nodes {
		p.t.Fatalf("the first filter answered passed %d nodes, want all %d", len(names), p.nodes)
	}
	return true
}

// sample counts a filter's reasons and shows one node of each.
func sample(failed ...extenderv1.FailedNodesMap) string {
	count, example := map[string]int{}, map[string]string{}
	for _, m := range failed {
		for node, reason := range m {
			count[reason]++
			example[reason] = node
		}
	}
	var out []string
	for reason, n := range count {
		out = append(out, fmt.Sprintf("%d nodes like %s: %q", n, example[reason], reason))
	}
	return strings.Join(out, "; ")
}
