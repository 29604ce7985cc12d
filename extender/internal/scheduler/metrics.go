package scheduler

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the decision counters; the HTTP layer adds latency.
type Metrics struct {
	rejected *prometheus.CounterVec
	binds    *prometheus.CounterVec
	problems *prometheus.CounterVec
}

// NewMetrics registers the counters with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "topolane_extender_nodes_rejected_total",
			Help: "Nodes the filter rejected, by reason.",
		}, []string{"reason"}),
		binds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "topolane_extender_binds_total",
			Help: "Bind requests by result: ok, repeated (already bound there), conflict (the node can no longer take the pod), forbidden (another scheduler's pod), not_found, error.",
		}, []string{"result"}),
		problems: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "topolane_extender_ledger_problems_total",
			Help: "Allocations the ledger refused to count (forged: not the pod's own or unreadable; device: a device the node does not offer; double: a device held by two pods), each counted once when it appears.",
		}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.rejected, m.binds, m.problems)
	}
	return m
}
