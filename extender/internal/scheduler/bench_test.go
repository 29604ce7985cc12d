package scheduler_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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

const benchNodes, benchPods = 5000, 40000

// big is what a real extender holds for a cluster: the store, and what its informers cache
// (the NodeTopologies as their transform keeps them, the pods as PodInfos).
type big struct {
	store      *state.Store
	names      []string
	pods       []*state.PodInfo
	topologies []any
}

// bigCluster is 5,000 nodes, four DGX H100s to one PCIe server, with 8 pods bound on each.
// When gpuPodsPerNode is 4, half are one-GPU pods holding a macvlan (the PCIe servers are then
// full, the DGXs half full) and half use no GPU; when it is 8, every GPU is taken. The
// NodeTopologies arrive as the agent publishes them, through the informer's transform.
func bigCluster(b *testing.B, pods, gpuPodsPerNode int) big {
	b.Helper()
	c := big{store: state.New(state.DefaultGPUResources, placement.DefaultWeights, nil), names: make([]string, benchNodes)}
	published := map[string][]byte{}
	for _, m := range []topologytest.Machine{topologytest.DGXH100(), topologytest.PCIeServer()} {
		n := m.Node().WithoutPaths()
		published[m.Name], _ = json.Marshal(v1alpha1.NodeTopologyOf(n, nil))
	}
	for i := range c.names {
		c.names[i] = fmt.Sprintf("node-%04d", i)
		doc := published["dgx-h100"]
		if i%5 == 4 {
			doc = published["pcie-server"]
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(doc); err != nil {
			b.Fatal(err)
		}
		u.SetName(c.names[i])
		info, err := state.TransformTopology(u)
		if err != nil {
			b.Fatal(err)
		}
		c.topologies = append(c.topologies, info)
		t := info.(*state.TopologyInfo)
		c.store.SetNode(extendertest.Node(c.names[i], len(t.Topology.GPUs)))
		c.store.SetTopologyInfo(t)
	}
	c.pods = make([]*state.PodInfo, 0, pods)
	for i := range pods {
		node := c.names[i%benchNodes]
		nic := "0000:42:00.0"
		if i%5 == 4 {
			nic = "0000:18:00.1"
		}
		pod := extendertest.Pod("ns", fmt.Sprintf("p-%05d", i), 1)
		alloc := v1alpha1.Allocation{Node: node, PodUID: pod.UID, Devices: []v1alpha1.Device{{Rail: 1, Kind: placement.KindMacvlan, NIC: nic, Device: nic}}}
		pod.Annotations[v1alpha1.AnnotationAllocation] = alloc.String()
		if i/benchNodes >= gpuPodsPerNode {
			pod = extendertest.Pod("ns", fmt.Sprintf("p-%05d", i), 0)
		}
		pod.Spec.NodeName = node
		c.pods = append(c.pods, state.NewPodInfo(pod, state.DefaultGPUResources)) // what the pod informer keeps
		c.store.SetPodInfo(c.pods[i])
	}
	return c
}

// decoded copies names as the decoding of a request would: strings of their own, not the
// store's keys.
func decoded(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.Clone(n)
	}
	return out
}

// percentiles reports p50 and p99 of the recorded durations in milliseconds.
func percentiles(b *testing.B, d []time.Duration) {
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(d[len(d)*99/100])/1e6, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkFilterPrioritize5000 is one 2-GPU pod's filter and prioritize over 5,000 nodes,
// server side (no HTTP): the 1,000 full PCIe servers are rejected, the 4,000 DGXs pass and are
// scored (the scheduler asks prioritize of the nodes that passed). Budget: p99 ≤ 1 ms.
func BenchmarkFilterPrioritize5000(b *testing.B) {
	filterPrioritize(b, 4)
}

// BenchmarkFilterPrioritize5000Full is the same on a cluster without a free GPU: every node is
// rejected with its reason.
func BenchmarkFilterPrioritize5000Full(b *testing.B) {
	filterPrioritize(b, 8)
}

func filterPrioritize(b *testing.B, gpuPodsPerNode int) {
	c := bigCluster(b, benchPods, gpuPodsPerNode)
	ext := scheduler.New(c.store, fake.NewClientset(), scheduler.Config{NoPF: scheduler.NoPFReject}, nil)
	pod := extendertest.Pod("ns", "train", 2)
	names := decoded(c.names)
	var took []time.Duration
	runtime.GC() // measure the steady state, not the collection of the set-up's garbage
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		res, err := ext.Filter(&extenderv1.ExtenderArgs{Pod: pod, NodeNames: &names})
		if err != nil {
			b.Fatal(err)
		}
		list, err := ext.Prioritize(&extenderv1.ExtenderArgs{Pod: pod, NodeNames: res.NodeNames})
		if err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		scheduler.ReleaseFilter(res) // as the server does once the answers are written
		scheduler.ReleasePriorities(list)
	}
	percentiles(b, took)
}

// BenchmarkHTTPRoundTrip5000 is filter then prioritize over loopback HTTP with 5,000 node names,
// as the scheduler sends them with nodeCacheCapable: true.
func BenchmarkHTTPRoundTrip5000(b *testing.B) {
	c := bigCluster(b, benchPods, 4)
	names := c.names
	ext := scheduler.New(c.store, fake.NewClientset(), scheduler.Config{NoPF: scheduler.NoPFReject}, nil)
	srv := httptest.NewServer(server.New(ext, c.store, func() bool { return true }, prometheus.NewRegistry()))
	defer srv.Close()
	body, _ := json.Marshal(extenderv1.ExtenderArgs{Pod: extendertest.Pod("ns", "train", 2), NodeNames: &names})
	var took []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		for _, verb := range []string{"/filter", "/prioritize"} {
			resp, err := http.Post(srv.URL+verb, "application/json", bytes.NewReader(body))
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("%s: %v %v", verb, err, resp)
			}
			var sink json.RawMessage
			_ = json.NewDecoder(resp.Body).Decode(&sink)
			resp.Body.Close()
		}
		took = append(took, time.Since(start))
	}
	percentiles(b, took)
}

// BenchmarkMemory5000Nodes40000Pods is the heap held by the store and what the informers cache
// (the NodeTopologies as the agent publishes them, through the transform; the pods as
// PodInfos), for 5,000 nodes and 40,000 pods. Budget: ≤ 200 MiB. (The real process on the real
// API server is measured by the bench: make bench-throughput.)
func BenchmarkMemory5000Nodes40000Pods(b *testing.B) {
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c := bigCluster(b, benchPods, 4)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB")
		runtime.KeepAlive(c)
	}
	b.ReportMetric(0, "ns/op")
}
