package scheduler

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/topolane/topolane/topology/placement"
)

// Problems reports what the ledger refused to count: a metric, a log line and an event on each
// pod concerned, so that its owner sees why its annotation is ignored. It implements
// state.Reporter: the store calls it under its lock, so events are queued, never awaited.
type Problems struct {
	client  kubernetes.Interface
	metrics *Metrics
	queue   chan problemEvent
}

type problemEvent struct {
	node string
	pod  string // namespace/name
	msg  string
}

// NewProblems makes a reporter; start it with Run. metrics may be nil.
func NewProblems(client kubernetes.Interface, metrics *Metrics) *Problems {
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Problems{client: client, metrics: metrics, queue: make(chan problemEvent, 1024)}
}

// Problem counts a problem and queues an event for each of its pods; a full queue drops events
// (the metric and the log keep the problem).
func (p *Problems) Problem(node string, pr placement.Problem) {
	p.metrics.problems.WithLabelValues(problemKind(pr.Message)).Inc()
	klog.InfoS("Ledger problem: not counted as the annotation says", "node", node, "problem", pr.Message)
	for _, pod := range pr.Pods {
		select {
		case p.queue <- problemEvent{node: node, pod: pod, msg: pr.Message}:
		default:
		}
	}
}

func problemKind(msg string) string {
	switch {
	case strings.Contains(msg, "held by both") || strings.Contains(msg, "held whole by both"):
		return "double"
	case strings.Contains(msg, "does not offer") || strings.Contains(msg, "is not a VF of"):
		return "device"
	}
	return "forged"
}

// Run posts the queued events until ctx ends.
func (p *Problems) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-p.queue:
			p.post(ctx, ev)
		}
	}
}

func (p *Problems) post(ctx context.Context, ev problemEvent) {
	ns, name, _ := strings.Cut(ev.pod, "/")
	now := metav1.Now()
	e := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: name + ".", Namespace: ns},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: name, APIVersion: "v1"},
		Reason:         "AllocationIgnored", Type: corev1.EventTypeWarning,
		Message:        "topolane: " + ev.msg + " (node " + ev.node + ")",
		Source:         corev1.EventSource{Component: "topolane-extender"},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
	if _, err := p.client.CoreV1().Events(ns).Create(ctx, e, metav1.CreateOptions{}); err != nil {
		klog.FromContext(ctx).V(2).Info("Could not record a ledger problem on the pod", "pod", ev.pod, "err", err)
	}
}
