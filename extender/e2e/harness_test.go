// Package e2e runs topolane's extender over HTTP under the real kube-scheduler
// (k8s.io/kubernetes/pkg/scheduler, in-process) configured by extender/examples/scheduler-config.yaml.
// The cluster is client-go's fake clientset; the extender watches it through real informers.
package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/topolane/topolane/extender/e2e/kubesched"
	"github.com/topolane/topolane/extender/embedded"
	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
)

const ns = "training"

type harness struct {
	t      *testing.T
	ctx    context.Context
	client *fake.Clientset
	dyn    *dynamicfake.FakeDynamicClient
	srv    *httptest.Server

	mu        sync.Mutex
	extender  http.Handler // the running extender; nil while it is down
	stopExt   context.CancelFunc
	extConfig embedded.Config
}

func newHarness(t *testing.T, cfg embedded.Config) *harness {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := &harness{t: t, ctx: ctx, client: fake.NewClientset(), extConfig: cfg,
		dyn: extendertest.DynamicClient()}
	extendertest.BindLikeTheAPIServer(h.client)
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

// serve hands requests to the running extender; while it is restarting it is unavailable.
func (h *harness) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	ext := h.extender
	h.mu.Unlock()
	if ext == nil {
		http.Error(w, "extender restarting", http.StatusServiceUnavailable)
		return
	}
	ext.ServeHTTP(w, r)
}

// startExtender starts a fresh extender: an empty store rebuilt from the cluster by informers.
func (h *harness) startExtender() {
	ctx, cancel := context.WithCancel(h.ctx)
	ext := embedded.New(h.client, h.extConfig)
	if err := ext.Watch(ctx, h.client, h.dyn, 10*time.Second); err != nil {
		h.t.Fatalf("extender informers did not sync: %v", err)
	}
	h.mu.Lock()
	h.extender, h.stopExt = ext.Handler(), cancel
	h.mu.Unlock()
}

func (h *harness) stopExtender() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.extender = nil
	if h.stopExt != nil {
		h.stopExt()
	}
}

// startScheduler runs a real kube-scheduler with the shipped example configuration, pointed at
// the harness's extender, under the given profile name.
func (h *harness) startScheduler(schedulerName string) {
	if err := kubesched.Start(h.ctx, h.client, h.srv.URL, schedulerName); err != nil {
		h.t.Fatal(err)
	}
}

// addNode creates a GPU node's NodeTopology, then the Node. The order matters: the scheduler
// retries a rejected pod on Node events, not on NodeTopology ones, so a NodeTopology that
// arrives after the last Node event leaves the pod waiting for the scheduler's periodic flush.
func (h *harness) addNode(nt *v1alpha1.NodeTopology) {
	h.t.Helper()
	u, err := v1alpha1.ToUnstructured(nt)
	if err == nil {
		_, err = h.dyn.Resource(v1alpha1.GroupVersionResource).Create(h.ctx, u, metav1.CreateOptions{})
	}
	if err != nil {
		h.t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the extender's informer see it first
	node := extendertest.Node(nt.Name, nt.Status.GPUs)
	if _, err := h.client.CoreV1().Nodes().Create(h.ctx, node, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) createPod(name string, gpus int, schedulerName string, annotations ...string) *corev1.Pod {
	h.t.Helper()
	pod := extendertest.Pod(ns, name, gpus, annotations...)
	pod.Spec.SchedulerName = schedulerName
	created, err := h.client.CoreV1().Pods(ns).Create(h.ctx, pod, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return created
}

// waitBound waits for the pod to be bound and returns its node and allocation.
func (h *harness) waitBound(name string, timeout time.Duration) (string, v1alpha1.Allocation) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		pod, err := h.client.CoreV1().Pods(ns).Get(h.ctx, name, metav1.GetOptions{})
		if err == nil && pod.Spec.NodeName != "" {
			a, _ := v1alpha1.ParseAllocation(pod.Annotations[v1alpha1.AnnotationAllocation])
			return pod.Spec.NodeName, a
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("pod %s was not bound within %v; events:\n%s", name, timeout, h.events(name))
	return "", v1alpha1.Allocation{}
}

// staysPending checks the pod is still unbound after a while and returns its events.
func (h *harness) staysPending(name string, d time.Duration) string {
	h.t.Helper()
	time.Sleep(d)
	pod, err := h.client.CoreV1().Pods(ns).Get(h.ctx, name, metav1.GetOptions{})
	if err != nil || pod.Spec.NodeName != "" {
		h.t.Fatalf("pod %s should be pending, is on %q (%v)", name, pod.Spec.NodeName, err)
	}
	return h.events(name)
}

func (h *harness) events(name string) string {
	list, _ := h.client.EventsV1().Events(ns).List(h.ctx, metav1.ListOptions{})
	out := ""
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			out += e.Reason + ": " + e.Note + "\n"
		}
	}
	return out
}

// pods lists the namespace's pods as the API holds them.
func (h *harness) pods() []corev1.Pod {
	pods, err := h.client.CoreV1().Pods(ns).List(h.ctx, metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return pods.Items
}

// allocations returns every bound pod's allocation, by pod name.
func (h *harness) allocations() map[string]v1alpha1.Allocation {
	pods, err := h.client.CoreV1().Pods(ns).List(h.ctx, metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]v1alpha1.Allocation{}
	for _, p := range pods.Items {
		if a, err := v1alpha1.ParseAllocation(p.Annotations[v1alpha1.AnnotationAllocation]); err == nil && p.Spec.NodeName != "" {
			out[p.Name] = a
		}
	}
	return out
}
