package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes/fake"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/extender/internal/scheduler"
	"github.com/topolane/topolane/extender/internal/server"
	"github.com/topolane/topolane/extender/internal/state"
	"github.com/topolane/topolane/topology/placement"
	"github.com/topolane/topolane/topology/topologytest"
)

func newServer(t testing.TB, ready bool) (*httptest.Server, *state.Store) {
	store := state.New(state.DefaultGPUResources, placement.DefaultWeights, nil)
	for _, name := range []string{"dgx-a", "dgx-b"} {
		store.SetNode(extendertest.Node(name, 8))
		store.SetTopology(name, extendertest.Topology(name, topologytest.DGXH100()), nil)
	}
	ext := scheduler.New(store, fake.NewClientset(), scheduler.Config{NoPF: scheduler.NoPFReject}, nil)
	srv := httptest.NewServer(server.New(ext, store, func() bool { return ready }, prometheus.NewRegistry()))
	t.Cleanup(srv.Close)
	return srv, store
}

func post(t testing.TB, url, contentType string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func args(t testing.TB, gpus int, nodes ...string) []byte {
	b, err := json.Marshal(extenderv1.ExtenderArgs{Pod: extendertest.Pod("ns", "p", gpus), NodeNames: &nodes})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFilterAndPrioritizeOverHTTP(t *testing.T) {
	srv, _ := newServer(t, true)
	code, body := post(t, srv.URL+"/filter", "application/json", args(t, 8, "dgx-a", "dgx-b"))
	var res extenderv1.ExtenderFilterResult
	if err := json.Unmarshal([]byte(body), &res); code != 200 || err != nil || len(*res.NodeNames) != 2 {
		t.Fatalf("filter: %d %s", code, body)
	}
	code, body = post(t, srv.URL+"/prioritize", "application/json; charset=utf-8", args(t, 8, "dgx-a"))
	var list extenderv1.HostPriorityList
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || len(list) != 1 || list[0].Score != 10 {
		t.Fatalf("prioritize: %d %s", code, body)
	}
}

// TestConcurrentAnswersAreTheirOwn runs different requests at once: answers are recycled
// after they are written, and no request may see another's.
func TestConcurrentAnswersAreTheirOwn(t *testing.T) {
	srv, store := newServer(t, true)
	busy := extendertest.Pod("ns", "busy", 8)
	busy.Spec.NodeName = "dgx-b"
	store.SetPod(busy)
	requests := []struct{ verb, body string }{
		{"/filter", string(args(t, 8, "dgx-a", "dgx-b"))},
		{"/filter", string(args(t, 0, "dgx-a", "dgx-b"))},
		{"/filter", string(args(t, 2, "dgx-b"))},
		{"/prioritize", string(args(t, 2, "dgx-a", "dgx-b"))},
		{"/prioritize", string(args(t, 0, "dgx-b"))},
	}
	want := make([]string, len(requests))
	for i, r := range requests {
		_, want[i] = post(t, srv.URL+r.verb, "application/json", []byte(r.body))
	}
	var wg sync.WaitGroup
	for i, r := range requests {
		wg.Go(func() {
			for range 50 {
				if code, got := post(t, srv.URL+r.verb, "application/json", []byte(r.body)); code != 200 || got != want[i] {
					t.Errorf("%s %s: %d %s, want %s", r.verb, r.body, code, got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestBadRequests(t *testing.T) {
	srv, store := newServer(t, true)
	before, _ := store.DebugNode("dgx-a")
	huge := append([]byte(`{"Pod":{"metadata":{"name":"`), bytes.Repeat([]byte("x"), server.MaxBodyBytes)...)
	for _, tt := range []struct {
		name, method, path, contentType string
		body                            []byte
		code                            int
		want                            string
	}{
		{"wrong method", http.MethodGet, "/filter", "", nil, 405, "GET is not allowed on /filter"},
		{"wrong content type", http.MethodPost, "/filter", "text/plain", args(t, 1, "dgx-a"), 415, "send application/json"},
		{"no content type", http.MethodPost, "/bind", "", []byte(`{}`), 415, "send application/json"},
		{"malformed JSON", http.MethodPost, "/filter", "application/json", []byte(`{"Pod": [`), 400, "malformed JSON"},
		{"body over the limit", http.MethodPost, "/filter", "application/json", huge, 413, "nodeCacheCapable"},
		// A node the extender has not heard of yet fails alone, with its reason.
		{"unknown node", http.MethodPost, "/filter", "application/json", args(t, 1, "ghost", "dgx-a"), 200,
			`"NodeNames":["dgx-a"],"FailedNodes":{"ghost":"topolane: node \"ghost\" is unknown to topolane`},
		{"unknown node, prioritize", http.MethodPost, "/prioritize", "application/json", args(t, 1, "ghost"), 200, `[{"Host":"ghost","Score":0}]`},
		{"preemption without a pod", http.MethodPost, "/preempt", "application/json", []byte(`{}`), 400, "carry no pod"},
		{"no pod", http.MethodPost, "/prioritize", "application/json", []byte(`{"NodeNames": ["dgx-a"]}`), 400, "carry no pod"},
		{"bind without a node", http.MethodPost, "/bind", "application/json", []byte(`{"PodName": "p", "PodNamespace": "ns"}`), 400, "need PodName, PodNamespace and Node"},
		{"bind of an unknown pod", http.MethodPost, "/bind", "application/json", []byte(`{"PodName": "p", "PodNamespace": "ns", "Node": "dgx-a"}`), 404, "does not exist"},
		{"unknown path", http.MethodGet, "/nope", "", nil, 404, ""},
	} {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, bytes.NewReader(tt.body))
		if tt.contentType != "" {
			req.Header.Set("Content-Type", tt.contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code || !strings.Contains(string(b), tt.want) {
			t.Errorf("%s: %d %s; want %d and %q", tt.name, resp.StatusCode, b, tt.code, tt.want)
		}
	}
	if after, _ := store.DebugNode("dgx-a"); after.GPUsFree != before.GPUsFree || after.PFsFree != before.PFsFree {
		t.Error("bad requests changed the state")
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHealthReadinessMetricsDebug(t *testing.T) {
	srv, _ := newServer(t, false)
	if code, _ := get(t, srv.URL+"/healthz"); code != 200 {
		t.Errorf("healthz %d", code)
	}
	if code, body := get(t, srv.URL+"/readyz"); code != 503 || !strings.Contains(body, "not ready: topolane has not yet taken in") {
		t.Errorf("readyz before sync: %d %s", code, body)
	}
	// Before the store has taken in the first lists, no verb answers: a filter now could reject
	// nodes whose NodeTopology is on its way, a bind could give a reserved device again.
	for _, verb := range []string{"/filter", "/prioritize", "/bind", "/preempt"} {
		if code, body := post(t, srv.URL+verb, "application/json", args(t, 8, "dgx-a")); code != 503 || !strings.Contains(body, "not ready") {
			t.Errorf("%s before sync: %d %s", verb, code, body)
		}
	}
	if code, body := get(t, srv.URL+"/metrics"); code != 200 || !strings.Contains(body, `topolane_extender_request_duration_seconds_count{verb="filter"} 1`) {
		t.Errorf("metrics: %d\n%s", code, body)
	}
	if code, body := get(t, srv.URL+"/debug/nodes/dgx-a"); code != 200 || !strings.Contains(body, `"pfsFree":8`) ||
		!strings.Contains(body, `"rails":[{"index":0,"nic":"0000:1a:00.0","gpus":["0000:1b:00.0"],"freeGPUs":1,"pfFree":true,"freeShares":4}`) {
		t.Errorf("debug: %d %s", code, body)
	}
	if code, body := get(t, srv.URL+"/debug/nodes/ghost"); code != 404 || !strings.Contains(body, "knows nothing of node ghost") {
		t.Errorf("debug of an unknown node: %d %s", code, body)
	}
	ready, _ := newServer(t, true)
	if code, _ := get(t, ready.URL+"/readyz"); code != 200 {
		t.Errorf("readyz after sync: %d", code)
	}
}

// FuzzHandlers sends arbitrary bodies to every verb: the answer is always a status and JSON,
// never a panic, and a 5xx never.
func FuzzHandlers(f *testing.F) {
	f.Add("/filter", string(args(f, 8, "dgx-a")))
	f.Add("/prioritize", `{"Pod":{"spec":{"containers":[{"resources":{"limits":{"nvidia.com/gpu":"-3"}}}]}},"NodeNames":["dgx-a"]}`)
	f.Add("/bind", `{"PodName":"p","PodNamespace":"ns","Node":"dgx-a","PodUID":"x"}`)
	f.Add("/filter", `{"Pod":{"metadata":{"annotations":{"topolane.io/nic":"pf"}}},"Nodes":{"items":[{"metadata":{"name":"dgx-b"}}]}}`)
	f.Add("/filter", `null`)
	f.Add("/preempt", `{"Pod":{"metadata":{"uid":"u"},"spec":{"containers":[{"resources":{"limits":{"nvidia.com/gpu":"8"}}}]}},"NodeNameToMetaVictims":{"dgx-a":{"Pods":[{"UID":"x"}]}}}`)
	srv, _ := newServer(f, true)
	f.Fuzz(func(t *testing.T, path, body string) {
		if path != "/filter" && path != "/prioritize" && path != "/bind" && path != "/preempt" {
			return
		}
		code, resp := post(t, srv.URL+path, "application/json", []byte(body))
		if code >= 500 || !json.Valid([]byte(resp)) {
			t.Errorf("%s %q: %d %s", path, body, code, resp)
		}
	})
}

// TestFailedNodesInTheRequestsOrder: a filter answer lists its failed nodes as the request
// named them (not sorted: the same JSON object), and sorted, each once, when the request
// named a node twice; either way the scheduler reads what the filter decided.
func TestFailedNodesInTheRequestsOrder(t *testing.T) {
	srv, store := newServer(t, true)
	for _, name := range []string{"z-full", "m-full", "a-full"} {
		store.SetNode(extendertest.Node(name, 8))
		store.SetTopology(name, extendertest.Topology(name, topologytest.DGXH100()), nil)
		busy := extendertest.Pod("ns", "busy-"+name, 8)
		busy.Spec.NodeName = name
		store.SetPod(busy)
	}
	for _, c := range []struct {
		names []string
		want  string // the order of the failed nodes' keys in the answer
	}{
		{[]string{"z-full", "dgx-a", "unknown", "a-full", "dgx-b", "m-full"}, "z-full unknown a-full m-full"},
		{[]string{"m-full", "dgx-a", "a-full", "m-full"}, "a-full m-full"},
	} {
		code, body := post(t, srv.URL+"/filter", "application/json", args(t, 2, c.names...))
		var res extenderv1.ExtenderFilterResult
		if err := json.Unmarshal([]byte(body), &res); code != 200 || err != nil {
			t.Fatalf("filter: %d %s", code, body)
		}
		order := keysInOrder(body, c.names)
		if got := strings.Join(order, " "); got != c.want {
			t.Errorf("%v: failed nodes written in the order %q, want %q:\n%s", c.names, got, c.want, body)
		}
		for _, name := range c.names {
			if strings.Count(body, `"`+name+`":`) > 1 {
				t.Errorf("%v: %s is a key twice:\n%s", c.names, name, body)
			}
		}
		if n := len(res.FailedNodes) + len(res.FailedAndUnresolvableNodes); n != len(strings.Fields(c.want)) {
			t.Errorf("%v: %d failed nodes, want %s", c.names, n, c.want)
		}
	}
}

// keysInOrder lists the names that are keys in body, in the order they first appear there.
func keysInOrder(body string, names []string) []string {
	at := map[string]int{}
	for _, name := range names {
		if i := strings.Index(body, `"`+name+`":`); i >= 0 {
			at[name] = i
		}
	}
	keys := slices.Collect(maps.Keys(at))
	slices.SortFunc(keys, func(a, b string) int { return at[a] - at[b] })
	return keys
}
