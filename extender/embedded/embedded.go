// Package embedded runs topolane's extender in-process: the same state store, decisions and
// HTTP handler as topolane-extender, fed either by the caller (a simulation's events) or by
// informers. The bench uses it.
package embedded

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/extender/internal/scheduler"
	"github.com/topolane/topolane/extender/internal/server"
	"github.com/topolane/topolane/extender/internal/state"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
)

// Config tunes the decisions (score weights, what a pod that needs a PF gets when none is free).
type Config = scheduler.Config

// The no-PF policies.
const (
	NoPFReject     = scheduler.NoPFReject
	NoPFFallbackVF = scheduler.NoPFFallbackVF
)

// Extender is one extender: its store and its verbs.
type Extender struct {
	store    *state.Store
	ext      *scheduler.Extender
	registry *prometheus.Registry
}

// New makes an extender with an empty store; bind writes through client.
func New(client kubernetes.Interface, cfg Config) *Extender {
	reg := prometheus.NewRegistry()
	store := state.New(state.DefaultGPUResources)
	return &Extender{store: store, ext: scheduler.New(store, client, cfg, scheduler.NewMetrics(reg)), registry: reg}
}

// Watch feeds the store from informers until ctx ends, and waits for them to sync.
func (e *Extender) Watch(ctx context.Context, client kubernetes.Interface, dyn dynamic.Interface, timeout time.Duration) error {
	synced, err := state.Watch(ctx, e.store, client, dyn)
	if err != nil {
		return err
	}
	if !state.WaitForSync(ctx, synced, timeout) {
		return context.DeadlineExceeded
	}
	return nil
}

// Handler serves the extender's HTTP endpoints.
func (e *Extender) Handler() http.Handler {
	return server.New(e.ext, e.store, func() bool { return true }, e.registry)
}

// SetNode, SetTopology, SetPod and DeletePod feed the store as its informers would.
func (e *Extender) SetNode(n *corev1.Node) { e.store.SetNode(n) }

// SetTopology records a node's NodeTopology.
func (e *Extender) SetTopology(nt *v1alpha1.NodeTopology) { e.store.SetTopology(nt.Name, nt, nil) }

// SetPod counts a pod where it is placed.
func (e *Extender) SetPod(pod *corev1.Pod) { e.store.SetPod(pod) }

// DeletePod stops counting a pod.
func (e *Extender) DeletePod(uid types.UID) { e.store.DeletePod(uid) }

// Filter is the filter verb.
func (e *Extender) Filter(args *extenderv1.ExtenderArgs) (*extenderv1.ExtenderFilterResult, error) {
	return e.ext.Filter(args)
}

// Prioritize is the prioritize verb.
func (e *Extender) Prioritize(args *extenderv1.ExtenderArgs) (*extenderv1.HostPriorityList, error) {
	return e.ext.Prioritize(args)
}

// Bind is the bind verb: it reserves a device, annotates the pod and binds it through the client.
func (e *Extender) Bind(ctx context.Context, args *extenderv1.ExtenderBindingArgs) error {
	return e.ext.Bind(ctx, args)
}
