// Package scheduler answers the kube-scheduler extender verbs (filter, prioritize, bind,
// preempt) from the state store and the placement rule. It knows nothing of HTTP.
package scheduler

import (
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/topolane/topolane/extender/internal/state"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
)

// NoPFPolicy is what a pod that needs a whole PF gets when no node has one free.
type NoPFPolicy string

const (
	NoPFReject     NoPFPolicy = "reject"      // it waits for a PF
	NoPFFallbackVF NoPFPolicy = "fallback-vf" // it takes a VF instead
)

// ParseNoPFPolicy reads the --no-pf flag.
func ParseNoPFPolicy(s string) (NoPFPolicy, error) {
	switch p := NoPFPolicy(s); p {
	case NoPFReject, NoPFFallbackVF:
		return p, nil
	}
	return "", fmt.Errorf("no-PF policy %q: want reject or fallback-vf", s)
}

// DefaultSchedulerName is the profile the example configuration and the chart set up.
const DefaultSchedulerName = "topolane-scheduler"

// Config tunes the decisions. The score weights are the store's.
type Config struct {
	NoPF NoPFPolicy
	// SchedulerNames are the schedulers whose pods /bind binds; empty means DefaultSchedulerName.
	SchedulerNames []string
	// BindingInFlight is how long a Binding whose answer never came may still land, after
	// which its reservation is dropped unless the pod shows it; 0 means DefaultBindingInFlight.
	BindingInFlight time.Duration
}

func (c Config) bindingInFlight() time.Duration {
	if c.BindingInFlight > 0 {
		return c.BindingInFlight
	}
	return DefaultBindingInFlight
}

func (c Config) serves(name string) bool {
	if len(c.SchedulerNames) == 0 {
		return name == DefaultSchedulerName
	}
	return slices.Contains(c.SchedulerNames, name)
}

// Errors the HTTP layer maps to status codes.
var (
	ErrBadRequest = errors.New("topolane: bad request") // 400
	ErrForbidden  = errors.New("topolane: not mine")    // 403
	ErrNotFound   = errors.New("topolane: not found")   // 404
	ErrConflict   = errors.New("topolane")              // 409: the node can no longer take the pod
	ErrNotReady   = errors.New("topolane: not ready")   // 503
	errStop       = errors.New("stop the pass")         // internal: a pass has its answer
)

// Extender answers the verbs.
type Extender struct {
	store   *state.Store
	client  kubernetes.Interface
	cfg     Config
	metrics *Metrics
}

// New makes an Extender; metrics may be nil.
func New(store *state.Store, client kubernetes.Interface, cfg Config, metrics *Metrics) *Extender {
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Extender{store: store, client: client, cfg: cfg, metrics: metrics}
}

// request reads what a pod asks of topolane; a bad annotation is the pod's fault.
func (x *Extender) request(pod *corev1.Pod) (placement.Request, error) {
	return v1alpha1.ParseRequest(pod.Annotations, state.PodGPUs(pod, x.store.GPUResources()))
}

// acts reports whether topolane has anything to give the pod.
func acts(req placement.Request) bool { return req.GPUs > 0 && req.Mode != placement.ModeNone }

// shapeFor is the one decision of what a pod is decided as over a set of nodes, for every verb:
// its own request, or, under the fallback-vf policy, a share when none of the nodes can give it
// the whole PFs it needs.
func (x *Extender) shapeFor(req placement.Request, names []string, own ownView) placement.Shape {
	shape := placement.ShapeOf(req)
	if x.cfg.NoPF != NoPFFallbackVF || shape.Request.Mode != placement.ModeAuto {
		return shape
	}
	anyFits, noPF := false, false
	_ = x.store.Nodes(names, func(i int, v state.View) error {
		v = own.of(names[i], v)
		if v.Summary == nil {
			return nil
		}
		if fits, _ := v.Summary.Lookup(shape); fits {
			anyFits = true
			return errStop
		}
		noPF = noPF || v.Summary.Code(shape) == placement.CodeNoFreePF
		return nil
	})
	if !anyFits && noPF {
		req.Mode = placement.ModeVF
		return placement.ShapeOf(req)
	}
	return shape
}

// verdictOf words why a node rejects a pod (or says it fits).
func verdictOf(view state.View, name string, shape placement.Shape) placement.Verdict {
	switch {
	case !view.Known:
		return placement.Verdict{Code: placement.CodeUnknown,
			Reason: fmt.Sprintf("node %q is unknown to topolane (its Node is not in the extender's cache yet)", name)}
	case view.Summary == nil:
		return placement.Verdict{Code: placement.CodeNoTopology, Unresolvable: true, Reason: view.Problem}
	}
	return view.Summary.Check(shape.Request)
}

// ownView is the one node where the pod holds a reservation, seen as if it held nothing: a
// pod's own reservation never counts against it.
type ownView struct {
	node string
	view state.View
}

func (x *Extender) ownViewOf(pod *corev1.Pod) ownView {
	node := x.store.ReservedFor(pod.UID)
	if node == "" {
		return ownView{}
	}
	return ownView{node: node, view: x.store.NodeWithout(node, pod.UID)}
}

func (o ownView) of(name string, v state.View) state.View {
	if o.node != "" && name == o.node {
		return o.view
	}
	return v
}
