package realapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// repoRoot is the topolane module's directory, relative to this package.
var repoRoot = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}()

// BuildExtender builds the real topolane-extender binary (the main module's, as `make build`
// does) into dir and returns its path.
func BuildExtender(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "topolane-extender")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./extender/cmd/topolane-extender")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building topolane-extender: %v\n%s", err, out)
	}
	return bin, nil
}

// Extender is a running topolane-extender process.
type Extender struct {
	URL    string // the verbs, and /debug/pprof/ (--profiling)
	health string // /readyz and /metrics
	cmd    *exec.Cmd
	log    string
	done   chan error
}

// StartExtender runs the binary against the API server in kubeconfig, serving on loopback,
// binding the pods of schedulerName, with its other flags as given (its defaults, as the chart
// deploys it, when there are none), and waits until it is ready: its informers synced and
// their contents in its store. Its log goes to dir/topolane-extender.log.
func StartExtender(ctx context.Context, bin, kubeconfig, dir, schedulerName string, flags ...string) (*Extender, error) {
	listen, err := freePort()
	if err != nil {
		return nil, err
	}
	health, err := freePort()
	if err != nil {
		return nil, err
	}
	e := &Extender{URL: fmt.Sprintf("http://127.0.0.1:%d", listen), health: fmt.Sprintf("http://127.0.0.1:%d", health),
		log: filepath.Join(dir, "topolane-extender.log"), done: make(chan error, 1)}
	logFile, err := os.Create(e.log)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	e.cmd = exec.Command(bin, append([]string{"--kubeconfig=" + kubeconfig, "--profiling",
		fmt.Sprintf("--listen=127.0.0.1:%d", listen), fmt.Sprintf("--health-listen=127.0.0.1:%d", health),
		"--scheduler-names=" + schedulerName}, flags...)...)
	e.cmd.Stdout, e.cmd.Stderr = logFile, logFile
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := e.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting topolane-extender: %w", err)
	}
	go func() { e.done <- e.cmd.Wait() }()
	if err := e.waitReady(ctx, 5*time.Minute); err != nil {
		e.Stop()
		return nil, err
	}
	return e, nil
}

func (e *Extender) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := e.get(ctx, e.health+"/readyz"); err == nil {
			return nil
		}
		select {
		case err := <-e.done:
			e.done <- err
			return fmt.Errorf("topolane-extender exited (%v):\n%s", err, tail(e.log))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("topolane-extender not ready within %v:\n%s", timeout, tail(e.log))
}

func (e *Extender) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(body))
	}
	return body, err
}

// Metrics scrapes the extender's /metrics.
func (e *Extender) Metrics(ctx context.Context) ([]*dto.MetricFamily, error) {
	body, err := e.get(ctx, e.health+"/metrics")
	if err != nil {
		return nil, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("the extender's /metrics: %w", err)
	}
	return slices.Collect(maps.Values(byName)), nil
}

// HeapProfile runs a garbage collection in the extender and returns its heap profile (pprof's
// format), taken after it.
func (e *Extender) HeapProfile(ctx context.Context) ([]byte, error) {
	return e.get(ctx, e.URL+"/debug/pprof/heap?gc=1")
}

// Memory is what the extender process holds.
type Memory struct {
	RSS, PeakRSS, Heap, HeapLive float64 // bytes
	// Unreturned is heap memory the collector freed that the runtime has not yet given back to
	// the operating system: still resident.
	Unreturned float64
}

// Memory reads the process's resident set and Go heap from its /metrics
// (process_resident_memory_bytes, go_memstats_heap_inuse_bytes and heap_alloc_bytes), and its
// peak resident set from /proc (VmHWM; 0 where there is none).
func (e *Extender) Memory(ctx context.Context) (Memory, error) {
	mf, err := e.Metrics(ctx)
	if err != nil {
		return Memory{}, err
	}
	m := Memory{RSS: gauge(mf, "process_resident_memory_bytes"), Heap: gauge(mf, "go_memstats_heap_inuse_bytes"),
		HeapLive: gauge(mf, "go_memstats_heap_alloc_bytes"), Unreturned: gauge(mf, "go_memstats_heap_idle_bytes") - gauge(mf, "go_memstats_heap_released_bytes")}
	if m.RSS == 0 || m.Heap == 0 {
		return m, fmt.Errorf("the extender's /metrics has no process_resident_memory_bytes or go_memstats_heap_inuse_bytes")
	}
	m.PeakRSS = peakRSS(e.cmd.Process.Pid)
	return m, nil
}

func gauge(families []*dto.MetricFamily, name string) float64 {
	for _, f := range families {
		if f.GetName() == name && len(f.Metric) > 0 && f.Metric[0].Gauge != nil {
			return f.Metric[0].Gauge.GetValue()
		}
	}
	return 0
}

// peakRSS is VmHWM of /proc/pid/status in bytes, or 0.
func peakRSS(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb * 1024
		}
	}
	return 0
}

// Stop ends the extender (SIGTERM, SIGKILL after 10 s) and waits for it.
func (e *Extender) Stop() { stopChild(e.cmd, e.done, 10*time.Second) }

// LogTail is the end of the extender's log.
func (e *Extender) LogTail() string { return tail(e.log) }

func tail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
		data = data[bytes.IndexByte(data, '\n')+1:]
	}
	return string(data)
}

// Counted is what the extender counts on a node (its /debug/nodes/NODE).
type Counted struct {
	Pods     []json.RawMessage `json:"pods"`
	Held     []json.RawMessage `json:"devicesHeld"`
	Problems []string          `json:"problems"`
}

// Counted reads what the extender counts on the node.
func (e *Extender) Counted(ctx context.Context, node string) (Counted, error) {
	var c Counted
	body, err := e.get(ctx, e.URL+"/debug/nodes/"+node)
	if err == nil {
		err = json.Unmarshal(body, &c)
	}
	return c, err
}

// Problems is the count of allocations the extender refused (its
// topolane_extender_ledger_problems_total, all kinds).
func Problems(families []*dto.MetricFamily) float64 {
	n := 0.0
	for _, f := range families {
		if f.GetName() == "topolane_extender_ledger_problems_total" {
			for _, m := range f.Metric {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}
