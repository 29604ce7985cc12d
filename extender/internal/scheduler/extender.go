// Package scheduler answers the kube-scheduler extender verbs (filter, prioritize, bind) from
// the state store and the placement rule. It knows nothing of HTTP.
package scheduler

import (
	"errors"
	"fmt"

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

// Config tunes the decisions.
type Config struct {
	Weights placement.Weights
	NoPF    NoPFPolicy
}

// Errors the HTTP layer maps to status codes.
var (
	ErrBadRequest = errors.New("topolane: bad request") // 400
	ErrNotFound   = errors.New("topolane: not found")   // 404
	ErrConflict   = errors.New("topolane")              // 409: the node can no longer take the pod
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
	mode, err := placement.ParseMode(pod.Annotations[v1alpha1.AnnotationNIC])
	return placement.Request{GPUs: state.PodGPUs(pod, x.store.GPUResources()), Mode: mode}, err
}

// verdictOf decides one node from its view; an unknown node is the caller's error.
func verdictOf(view state.View, name string, req placement.Request) (placement.Verdict, error) {
	switch {
	case !view.Known:
		return placement.Verdict{}, fmt.Errorf("%w: node %q is unknown to topolane (not in its Node cache)", ErrBadRequest, name)
	case view.Summary == nil:
		return placement.Verdict{Code: placement.CodeNoTopology, Unresolvable: true, Reason: view.Problem}, nil
	}
	return view.Summary.Check(req), nil
}
