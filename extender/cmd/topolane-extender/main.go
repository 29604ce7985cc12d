// Command topolane-extender is topolane's kube-scheduler extender: it filters and scores nodes
// by whether the NIC a GPU pod needs is free next to its GPUs, and reserves it at bind time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/topolane/topolane/extender/internal/scheduler"
	"github.com/topolane/topolane/extender/internal/server"
	"github.com/topolane/topolane/extender/internal/state"
	"github.com/topolane/topolane/topology/placement"
)

type options struct {
	kubeconfig, listen, certFile, keyFile string
	healthListen                          string
	gpuResources, schedulerNames          string
	weights                               placement.Weights
	noPF                                  string
	profiling                             bool
	qps                                   float64
	burst                                 int
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("topolane-extender", flag.ContinueOnError)
	klog.InitFlags(fs)
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; empty means in-cluster")
	fs.StringVar(&o.listen, "listen", ":8888", "address to serve the extender on")
	fs.StringVar(&o.healthListen, "health-listen", "", "also serve GET /healthz, /readyz and /metrics (and nothing else) here, e.g. :8889 for probes and Prometheus when --listen is loopback")
	fs.StringVar(&o.certFile, "tls-cert-file", "", "serve HTTPS with this certificate (the scheduler's enableHTTPS)")
	fs.StringVar(&o.keyFile, "tls-key-file", "", "key of --tls-cert-file")
	fs.StringVar(&o.gpuResources, "gpu-resources", "nvidia.com/gpu", "comma-separated extended resources counted as GPUs")
	fs.IntVar(&o.weights.Fit, "weight-fit", placement.DefaultWeights.Fit, "score weight: the pod takes exactly the node's free GPUs")
	fs.IntVar(&o.weights.NIC, "weight-nic", placement.DefaultWeights.NIC, "score weight: the NIC is near the GPUs")
	fs.IntVar(&o.weights.Whole, "weight-whole", placement.DefaultWeights.Whole, "score weight: shares come from NICs already shared")
	fs.IntVar(&o.weights.GDR, "weight-gdr", placement.DefaultWeights.GDR, "score weight: the pod's GPUs reach their NICs at PXB or nearer (GPUDirect RDMA; pods with topolane.io/gdr: preferred)")
	fs.StringVar(&o.schedulerNames, "scheduler-names", scheduler.DefaultSchedulerName, "comma-separated schedulerNames whose pods /bind binds (the profiles that call this extender)")
	fs.Float64Var(&o.qps, "kube-api-qps", 100, "requests per second to the API server, sustained (client-go's rate limiter; each bind makes three)")
	fs.IntVar(&o.burst, "kube-api-burst", 200, "requests to the API server allowed at once above --kube-api-qps")
	fs.BoolVar(&o.profiling, "profiling", false, "also serve Go's profiler (/debug/pprof/: heap, CPU, goroutines) on --listen, which must then be loopback; never on --health-listen")
	fs.StringVar(&o.noPF, "no-pf", string(scheduler.NoPFReject), "a pod that needs a whole PF when none is free anywhere: reject (wait) or fallback-vf")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if (o.certFile == "") != (o.keyFile == "") {
		return o, errors.New("--tls-cert-file and --tls-key-file go together")
	}
	if o.weights.Fit < 0 || o.weights.NIC < 0 || o.weights.Whole < 0 || o.weights.GDR < 0 {
		return o, errors.New("score weights cannot be negative")
	}
	if o.qps <= 0 || o.burst <= 0 {
		return o, errors.New("--kube-api-qps and --kube-api-burst must be positive")
	}
	if o.profiling && !loopback(o.listen) {
		return o, fmt.Errorf("--profiling needs a loopback --listen (the profiler has no authentication and shows the command line), not %q: e.g. --listen=127.0.0.1:8888, as the chart sets", o.listen)
	}
	if len(list(o.schedulerNames)) == 0 {
		return o, errors.New("--scheduler-names is empty: name the scheduler profiles that call this extender, e.g. topolane-scheduler")
	}
	return o, nil
}

// loopback reports whether a listen address is reachable from this host only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// list splits a comma-separated flag, dropping blanks.
func list(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (o options) resources() []corev1.ResourceName {
	var rs []corev1.ResourceName
	for _, r := range list(o.gpuResources) {
		rs = append(rs, corev1.ResourceName(r))
	}
	return rs
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "topolane-extender: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		klog.ErrorS(err, "topolane-extender stopped")
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	noPF, err := scheduler.ParseNoPFPolicy(o.noPF)
	if err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("loading the Kubernetes client config (pass --kubeconfig outside a cluster): %w", err)
	}
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := scheduler.NewMetrics(reg)
	problems := scheduler.NewProblems(client, metrics)
	go problems.Run(ctx)
	store := state.New(o.resources(), o.weights, problems)
	synced, err := state.Watch(ctx, store, client, dyn)
	if err != nil {
		return err
	}
	ext := scheduler.New(store, client, scheduler.Config{NoPF: noPF, SchedulerNames: list(o.schedulerNames)}, metrics)
	h := server.New(ext, store, synced, reg)
	if o.healthListen != "" {
		if err := serveHealth(ctx, o.healthListen, h); err != nil {
			return err
		}
	}
	if o.profiling {
		h = withProfiling(h)
	}
	return serve(ctx, o, h)
}

// withProfiling serves net/http/pprof's handlers under /debug/pprof/ and everything else by h.
func withProfiling(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}

func serve(ctx context.Context, o options, h http.Handler) error {
	srv := &http.Server{Addr: o.listen, Handler: h, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	errs := make(chan error, 1)
	go func() {
		klog.InfoS("Serving the scheduler extender", "address", o.listen, "tls", o.certFile != "")
		if o.certFile != "" {
			errs <- srv.ListenAndServeTLS(o.certFile, o.keyFile)
		} else {
			errs <- srv.ListenAndServe()
		}
	}()
	select {
	case err := <-errs:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
