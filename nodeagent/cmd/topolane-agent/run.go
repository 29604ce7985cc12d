package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/topolane/topolane/nodeagent/internal/agent"
	"github.com/topolane/topolane/nodeagent/internal/attach"
	"github.com/topolane/topolane/nodeagent/internal/cniserver"
	"github.com/topolane/topolane/nodeagent/internal/discovery"
	"github.com/topolane/topolane/nodeagent/internal/gpu"
	"github.com/topolane/topolane/nodeagent/internal/kubelet"
	"github.com/topolane/topolane/nodeagent/internal/netbind"
	"github.com/topolane/topolane/nodeagent/internal/nri"
	"github.com/topolane/topolane/nodeagent/internal/publish"
	"github.com/topolane/topolane/nodeagent/internal/sysfs"
	"github.com/topolane/topolane/nodeagent/internal/validate"
	"github.com/topolane/topolane/topology"
)

type runOptions struct {
	nodeName, kubeconfig, sysfsRoot, socket, stateDir, accelDir, podResources, gpuResources, listen string
	netnsDirs, cniBinDirs, nri                                                                      string
	period                                                                                          time.Duration
	nics, excludeNICs                                                                               discovery.Selectors
	rails                                                                                           map[string]string
}

func parseRunFlags(args []string, stderr io.Writer) (runOptions, error) {
	var o runOptions
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.nodeName, "node-name", defaultNodeName(), "this node's name (default: $NODE_NAME, else the hostname)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; empty in a pod (in-cluster config)")
	fs.StringVar(&o.sysfsRoot, "sysfs-root", sysfs.DefaultRoot, "where sysfs is mounted")
	fs.StringVar(&o.socket, "socket", cniserver.DefaultSocket, "unix socket the topolane-cni plugin calls, in a directory of its own (made 0700), never under --accel-dir")
	fs.StringVar(&o.stateDir, "state-dir", "/var/lib/topolane", "the attachment journal (must survive agent restarts: a hostPath)")
	fs.StringVar(&o.accelDir, "accel-dir", "/run/topolane/pods", "where pods' acceleration configs are written (a hostPath pods mount)")
	fs.StringVar(&o.podResources, "pod-resources-socket", kubelet.DefaultSocket, "kubelet's PodResources socket")
	fs.StringVar(&o.gpuResources, "gpu-resources", strings.Join(kubelet.DefaultResources, ","), "extended resources that are GPUs, comma-separated; a pattern may use * (MIG devices of the mixed strategy)")
	fs.StringVar(&o.listen, "listen", ":9109", "address of /healthz, /readyz and /metrics")
	fs.StringVar(&o.netnsDirs, "netns-dirs", strings.Join(validate.DefaultNetnsDirs, ","), "directories where the runtime keeps pods' network namespaces, comma-separated (CNI_NETNS must be in one, or /proc/<pid>/ns/net)")
	fs.StringVar(&o.nri, "nri", "", "the container runtime's NRI socket (e.g. "+nri.DefaultSocket+"); when set, containers of a pod get the /dev/infiniband devices of its RDMA devices; empty: off")
	fs.StringVar(&o.cniBinDirs, "cni-bin-dirs", strings.Join(validate.DefaultCNIBinDirs, ","), "directories of CNI plugins, comma-separated (every CNI_PATH entry must be in one)")
	fs.DurationVar(&o.period, "period", 5*time.Minute, "how often to discover the node again")
	nics := addNICFlags(fs)
	rails := addRailsFlag(fs)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var err error
	if o.nics, o.excludeNICs, err = nics.parse(); err != nil {
		return o, err
	}
	if o.rails, err = readRails(*rails); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.nodeName == "":
		return o, fmt.Errorf("--node-name is empty: set it, or NODE_NAME from the downward API (spec.nodeName)")
	case o.period < time.Second:
		return o, fmt.Errorf("--period %v is too short: want at least 1s", o.period)
	case len(splitList(o.netnsDirs)) == 0 || len(splitList(o.cniBinDirs)) == 0:
		return o, fmt.Errorf("--netns-dirs and --cni-bin-dirs need at least one directory each")
	case o.nri != "" && !filepath.IsAbs(o.nri):
		return o, fmt.Errorf("--nri %q is not an absolute path: give the runtime's NRI socket, e.g. %s", o.nri, nri.DefaultSocket)
	}
	return o, cniserver.Apart(o.socket, o.accelDir)
}

func runCmd(args []string, _, stderr io.Writer) int {
	o, err := parseRunFlags(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "topolane-agent run: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := runAgent(ctx, o); err != nil {
		fmt.Fprintf(stderr, "topolane-agent run: %v\n", err)
		return 1
	}
	return 0
}

// runAgent returns devices left by a crash or by pods that ended, discovers and publishes the
// node, then serves the CNI plugin and health until ctx ends.
func runAgent(ctx context.Context, o runOptions) error {
	release, err := lockStateDir(o.stateDir)
	if err != nil {
		return err
	}
	defer release()
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("loading the Kubernetes client config (pass --kubeconfig outside a cluster): %w", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	nd := &nodeDiscoverer{o: o, client: client}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a := &agent.Agent{Client: client, Metrics: agent.NewMetrics(reg),
		Publisher: &publish.Publisher{Client: client, Dyn: dyn, NodeName: o.nodeName},
		Discover:  func() (*topology.Node, error) { return nd.discover(ctx) }}
	a.Attacher = &attach.Attacher{Kernel: netbind.Netlink{}, Journal: attach.Journal{Dir: filepath.Join(o.stateDir, "journal")},
		AccelDir: o.accelDir, Topology: a.Topology, Pods: agent.APIPods{Client: client}, Reporter: a,
		GPUs: kubelet.PodResources{Socket: o.podResources, Resources: splitList(o.gpuResources), GPUs: gpuResolver(o, a)}}
	a.Attacher.Netdevs = sysfs.Paths{Root: o.sysfsRoot}
	a.Attacher.HostUse = discovery.HostGuard{Links: netbind.Netlink{}, NodeIPs: nd.nodeIPs}
	logger := klog.FromContext(ctx)
	a.Reconcile(ctx)
	if err := a.Refresh(ctx); err != nil {
		logger.Error(err, "First discovery and publication failed; retrying every period")
	}
	go a.Run(ctx, o.period)
	if o.nri != "" {
		plugin := &nri.Plugin{Attached: a.RDMADevices, Devices: nri.Devices{Sys: o.sysfsRoot, Dev: "/dev"}}
		go nri.Run(ctx, o.nri, plugin, 10*time.Second)
	}
	err = serveAll(ctx, o, a, reg)
	// The CNI server has finished its calls: make the reports they queued.
	stop, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if serr := a.StopReports(stop); serr != nil {
		logger.Error(serr, "Some reports were not made before stopping; the next start publishes the node again")
	}
	return err
}

// gpuResolver maps the device plugin's ids to the GPUs discovery found; MIG devices through
// NVML, which is asked only on the node itself (not for a fixture sysfs).
func gpuResolver(o runOptions, a *agent.Agent) kubelet.Resolver {
	r := kubelet.Resolver{Known: func(id string) bool {
		node := a.Topology()
		return node != nil && node.GPU(id) != nil
	}}
	if filepath.Clean(o.sysfsRoot) == sysfs.DefaultRoot {
		r.MIGParent = (&gpu.MIGParents{Lib: nvml.New()}).Parent
	}
	return r
}

// nodeDiscoverer discovers this node for the daemon: its --sysfs-root is this machine's, the
// Node's InternalIPs are read from the API each time, and the netdev names NICs had are
// remembered for when they are in pods (so that --nics globs still match them).
type nodeDiscoverer struct {
	o      runOptions
	client kubernetes.Interface

	mu        sync.Mutex
	lastNames map[string]string
	lastIPs   []net.IP
}

// nodeIPs are the Node's InternalIPs as the last discovery read them.
func (d *nodeDiscoverer) nodeIPs() []net.IP {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastIPs
}

func (d *nodeDiscoverer) discover(ctx context.Context) (*topology.Node, error) {
	ips, err := nodeInternalIPs(ctx, d.client, d.o.nodeName)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lastIPs = ips
	res, err := discover(discoverOptions{root: d.o.sysfsRoot, nodeName: d.o.nodeName, thisMachine: true, nodeIPs: ips,
		nics: d.o.nics, excludeNICs: d.o.excludeNICs, lastNames: d.lastNames, rails: d.o.rails})
	if err != nil {
		return nil, err
	}
	if d.lastNames == nil {
		d.lastNames = map[string]string{}
	}
	for _, nic := range res.Node.NICs {
		if nic.Name != "" {
			d.lastNames[nic.PCIAddress] = nic.Name
		}
	}
	for _, w := range res.Warnings {
		klog.FromContext(ctx).Info("Discovery warning", "warning", w)
	}
	return res.Node, nil
}

// nodeInternalIPs reads the Node's InternalIP addresses: the NIC that holds one is the node's own.
func nodeInternalIPs(ctx context.Context, client kubernetes.Interface, name string) ([]net.IP, error) {
	node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading Node %s for its InternalIP, so as never to hand out the NIC that holds it: %w", name, err)
	}
	var ips []net.IP
	for _, a := range node.Status.Addresses {
		if ip := net.ParseIP(a.Address); a.Type == corev1.NodeInternalIP && ip != nil {
			ips = append(ips, ip)
		}
	}
	return ips, nil
}

// serveAll serves the CNI socket and the health endpoint until ctx ends, then shuts both down.
func serveAll(ctx context.Context, o runOptions, a *agent.Agent, reg *prometheus.Registry) error {
	sock, err := cniserver.Listen(o.socket)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.socket, err)
	}
	health := http.NewServeMux()
	health.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	health.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := a.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	health.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	servers := []*http.Server{
		cniServer(o, a).HTTPServer(),
		{Addr: o.listen, Handler: health, ReadHeaderTimeout: 5 * time.Second},
	}
	errs := make(chan error, 2)
	go func() { errs <- servers[0].Serve(sock) }()
	go func() { errs <- servers[1].ListenAndServe() }()
	klog.FromContext(ctx).Info("Serving", "socket", o.socket, "health", o.listen)
	select {
	case err = <-errs:
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second) // let a running ADD finish
	defer cancel()
	for _, s := range servers {
		if serr := s.Shutdown(shutdown); serr != nil && err == nil {
			err = serr
		}
	}
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func cniServer(o runOptions, a *agent.Agent) *cniserver.Server {
	return &cniserver.Server{Agent: a.Attacher, Ready: a.Ready, Observe: a.Metrics.Observe,
		Paths: validate.Paths{NetnsDirs: splitList(o.netnsDirs), CNIBinDirs: splitList(o.cniBinDirs)}}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
