// Package server is the extender's HTTP face: routes, JSON in and out, limits, health, metrics
// and a debug view. Decisions are the scheduler package's.
package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"

	"github.com/topolane/topolane/extender/internal/scheduler"
	"github.com/topolane/topolane/extender/internal/state"
)

const notReady = "not ready: topolane has not yet taken in every Node, Pod and NodeTopology the API server listed; the scheduler retries"

// MaxBodyBytes bounds a request: 5,000 full Node objects are about 14 MB.
const MaxBodyBytes = 16 << 20

// Server routes the extender's endpoints.
type Server struct {
	ext     *scheduler.Extender
	store   *state.Store
	ready   func() bool
	latency *prometheus.HistogramVec
}

// New builds the handler. ready reports whether the informers have synced.
func New(ext *scheduler.Extender, store *state.Store, ready func() bool, reg *prometheus.Registry) http.Handler {
	s := &Server{ext: ext, store: store, ready: ready, latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "topolane_extender_request_duration_seconds",
		Help:    "Time to answer an extender verb.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	}, []string{"verb"})}
	reg.MustRegister(s.latency)
	r := mux.NewRouter()
	r.HandleFunc("/filter", s.timed("filter", s.filter)).Methods(http.MethodPost)
	r.HandleFunc("/prioritize", s.timed("prioritize", s.prioritize)).Methods(http.MethodPost)
	r.HandleFunc("/bind", s.timed("bind", s.bind)).Methods(http.MethodPost)
	r.HandleFunc("/preempt", s.timed("preempt", s.preempt)).Methods(http.MethodPost)
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }).Methods(http.MethodGet)
	r.HandleFunc("/readyz", s.readyz).Methods(http.MethodGet)
	r.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{})).Methods(http.MethodGet)
	r.HandleFunc("/debug/nodes/{node}", s.debugNode).Methods(http.MethodGet)
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeMessage(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path))
	})
	return r
}

// timed records the verb's latency, answers 503 until the store has taken in the informers'
// first lists (an answer before would reject nodes whose NodeTopology is not folded in yet, or
// give a reserved device again), and refuses bodies that are not JSON.
func (s *Server) timed(verb string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		defer func() { s.latency.WithLabelValues(verb).Observe(time.Since(start).Seconds()) }()
		if !s.ready() {
			writeMessage(w, http.StatusServiceUnavailable, notReady)
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			writeMessage(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type is %q: send application/json", r.Header.Get("Content-Type")))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		h(w, r)
	}
}

// decode reads the body into v, answering the client itself when it cannot.
func decode(w http.ResponseWriter, body io.Reader, v any) bool {
	err := json.NewDecoder(body).Decode(v)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeMessage(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes: use nodeCacheCapable: true so the scheduler sends node names", MaxBodyBytes))
	case err != nil:
		writeMessage(w, http.StatusBadRequest, "malformed JSON: "+err.Error())
	}
	return err == nil
}

// status maps a decision error to an HTTP status.
func status(err error) int {
	switch {
	case errors.Is(err, scheduler.ErrBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, scheduler.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, scheduler.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, scheduler.ErrConflict):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		klog.ErrorS(err, "Writing a response")
	}
}

type message struct {
	Error string `json:"error"`
}

func writeMessage(w http.ResponseWriter, code int, msg string) { writeJSON(w, code, message{msg}) }
