// Package embedded runs topolane's extender in-process: the same state store, decisions and
// HTTP handler as topolane-extender, fed either by the caller (a simulation's events) or by
// informers. The bench uses it.
package embedded

import (
	"context"
	"net/http"
	"sync/atomic"
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
	"github.com/topolane/topolane/topology/placement"
)

// Config tunes the extender: score weights, what a pod that needs a PF gets when none is free,
// which schedulers' pods it binds.
type Config struct {
	Weights        placement.Weights // zero: placement.DefaultWeights
	NoPF           scheduler.NoPFPolicy
	SchedulerNames []string
}

// The no-PF policies.
const (
	NoPFReject     = scheduler.NoPFReject
	NoPFFallbackVF = scheduler.NoPFFallbackVF
)

// Extender is one extender: its store and its verbs.
type Extender struct {
	store    *state.Store
	ext      *scheduler.Extender
	problems *scheduler.Problems
	registry *prometheus.Registry
	synced   atomic.Pointer[func() bool] // nil: fed by the caller, always ready
}

// New makes an extender with an empty store; bind writes through client. Problems the ledger
// finds become events once Run is started.
func New(client kubernetes.Interface, cfg Config) *Extender {
	if cfg.Weights == (placement.Weights{}) {
		cfg.Weights = placement.DefaultWeights
	}
	reg := prometheus.NewRegistry()
	metrics := scheduler.NewMetrics(reg)
	problems := scheduler.NewProblems(client, metrics)
	store := state.New(state.DefaultGPUResources, cfg.Weights, problems)
	ext := scheduler.New(store, client, scheduler.Config{NoPF: cfg.NoPF, SchedulerNames: cfg.SchedulerNames}, metrics)
	return &Extender{store: store, ext: ext, problems: problems, registry: reg}
}

// Start feeds the store from informers until ctx ends, posts the ledger's problems as events,
// and returns at once, as topolane-extender does before it serves: from then on the HTTP verbs
// answer 503 until the store has taken in the first lists (Ready).
func (e *Extender) Start(ctx context.Context, client kubernetes.Interface, dyn dynamic.Interface) error {
	synced, err := state.Watch(ctx, e.store, client, dyn)
	if err != nil {
		return err
	}
	e.synced.Store(&synced)
	go e.problems.Run(ctx)
	return nil
}

// Watch is Start, then waits until the store has taken in the first lists.
func (e *Extender) Watch(ctx context.Context, client kubernetes.Interface, dyn dynamic.Interface, timeout time.Duration) error {
	if err := e.Start(ctx, client, dyn); err != nil {
		return err
	}
	if !state.WaitForSync(ctx, e.Ready, timeout) {
		return context.DeadlineExceeded
	}
	return nil
}

// Ready reports whether the verbs answer: always when the caller feeds the store, once the
// informers' first lists are in when Watch feeds it.
func (e *Extender) Ready() bool {
	if f := e.synced.Load(); f != nil {
		return (*f)()
	}
	return true
}

// Handler serves the extender's HTTP endpoints.
func (e *Extender) Handler() http.Handler {
	return server.New(e.ext, e.store, e.Ready, e.registry)
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

// Preempt is the preemption verb.
func (e *Extender) Preempt(args *extenderv1.ExtenderPreemptionArgs) (*extenderv1.ExtenderPreemptionResult, error) {
	return e.ext.Preempt(args)
}

// Bind is the bind verb: it reserves the pod's devices and binds it through the client, the
// allocation on the Binding.
func (e *Extender) Bind(ctx context.Context, args *extenderv1.ExtenderBindingArgs) error {
	return e.ext.Bind(ctx, args)
}
