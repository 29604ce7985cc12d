package agent

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topolane/topolane/nodeagent/internal/attach"
)

// Metrics are the agent's Prometheus metrics.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	bound    prometheus.Gauge
}

// NewMetrics registers the metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "topolane_agent_cni_requests_total", Help: "CNI calls served, by command and result."}, []string{"command", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "topolane_agent_cni_duration_seconds", Help: "Time to serve a CNI call.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}, []string{"command"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "topolane_agent_cni_errors_total", Help: "CNI calls failed, by CNI error code."}, []string{"code"}),
		bound:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "topolane_agent_devices_bound", Help: "Devices bound into pods on this node."}),
	}
	reg.MustRegister(m.requests, m.duration, m.errors, m.bound)
	return m
}

// Observe records one CNI call.
func (m *Metrics) Observe(command string, took time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
		m.errors.WithLabelValues(strconv.Itoa(int(attach.CodeOf(err)))).Inc()
	}
	m.requests.WithLabelValues(command, result).Inc()
	m.duration.WithLabelValues(command).Observe(took.Seconds())
}
