package apiserver

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/topolane/topolane/extender/embedded"
)

// endpoint is the extender's address as the schedulers know it, across restarts of the
// extender: while none runs nothing listens there (connection refused); a fresh one listens at
// once and answers 503 until its store has taken in the informers' first lists, as
// topolane-extender does when its pod restarts.
type endpoint struct {
	t    *testing.T
	ctx  context.Context
	c    cluster
	cfg  embedded.Config
	addr string

	mu   sync.Mutex
	ext  *embedded.Extender // nil while none runs
	kill func()

	lostEvery int64 // each extender's every n-th Binding loses its answer (0: none)
	// beforeBinding, if set, is called as an extender is about to send a pod's Binding.
	beforeBinding func(ext *embedded.Extender, pod string)
	faults        []*apiFaults
	unavailable   atomic.Int64 // verbs answered 503
	counters      map[string]float64
}

func newEndpoint(t *testing.T, ctx context.Context, c cluster, cfg embedded.Config, lostEvery int64) *endpoint {
	return &endpoint{t: t, ctx: ctx, c: c, cfg: cfg, addr: "127.0.0.1:0", lostEvery: lostEvery, counters: map[string]float64{}}
}

// lostAnswers counts the Bindings that went through with their answer lost.
func (e *endpoint) lostAnswers() (n int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range e.faults {
		n += f.lost.Load()
	}
	return n
}

// url is where the schedulers send their requests; valid once start has run.
func (e *endpoint) url() string { return "http://" + e.addr }

// start runs a fresh extender, with an empty store, on the endpoint's address.
func (e *endpoint) start() {
	e.t.Helper()
	faults := &apiFaults{lostEvery: e.lostEvery}
	client, dyn := faults.clients(e.c.cfg)
	ctx, cancel := context.WithCancel(e.ctx)
	ext := embedded.New(client, e.cfg)
	if e.beforeBinding != nil {
		faults.beforeBinding = func(pod string) { e.beforeBinding(ext, pod) }
	}
	if err := ext.Start(ctx, client, dyn); err != nil {
		e.t.Fatal(err)
	}
	l := e.listen()
	srv := &http.Server{Handler: e.counting(ext.Handler()), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.addr, e.ext = l.Addr().String(), ext
	e.kill = func() { faults.dead.Store(true); e.scrape(); srv.Close(); cancel() }
	e.faults = append(e.faults, faults)
}

// listen listens on the endpoint's address, again after a restart. An outgoing connection may
// hold the port for a moment: retry.
func (e *endpoint) listen() net.Listener {
	e.t.Helper()
	var err error
	for range 50 {
		var l net.Listener
		if l, err = net.Listen("tcp", e.addr); err == nil {
			return l
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("listening on %s again: %v", e.addr, err)
	return nil
}

// stop kills the running extender as a SIGKILL would: its API calls fail from this moment
// (a bind in flight stops where it is, a reservation possibly left on its pod), its connections
// close, its informers stop. Its bind and ledger counters are kept.
func (e *endpoint) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.kill != nil {
		e.kill()
	}
	e.ext, e.kill = nil, nil
}

// current is the running extender, nil while none runs.
func (e *endpoint) current() *embedded.Extender {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ext
}

// counting counts the verbs answered 503.
func (e *endpoint) counting(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		if rec.code == http.StatusServiceUnavailable {
			e.unavailable.Add(1)
		}
	})
}

// scrape adds the running extender's topolane_extender_binds_total and
// topolane_extender_ledger_problems_total to the counters.
func (e *endpoint) scrape() {
	resp, err := http.Get(e.url() + "/metrics")
	if err != nil {
		e.t.Errorf("scraping the extender's metrics: %v", err)
		return
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		name, value, ok := strings.Cut(lines.Text(), " ")
		if !ok || !(strings.HasPrefix(name, "topolane_extender_binds_total{") || strings.HasPrefix(name, "topolane_extender_ledger_problems_total{")) {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			e.counters[name] += v
		}
	}
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}
