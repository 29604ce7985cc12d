package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"k8s.io/klog/v2"
)

// healthPaths are what --health-listen serves: enough for kubelet's probes and Prometheus,
// never a verb (the verbs stay on the loopback --listen, as the extender does not authenticate
// its caller).
var healthPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// healthOnly passes GET requests for the health paths to h and refuses everything else.
func healthOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthPaths[r.URL.Path] || r.Method != http.MethodGet {
			http.Error(w, fmt.Sprintf("%s %s is not served on the health address: only GET /healthz, /readyz and /metrics", r.Method, r.URL.Path), http.StatusNotFound)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// serveHealth listens on addr now (so that a taken port fails the start) and serves the health
// paths of h until ctx ends.
func serveHealth(ctx context.Context, addr string, h http.Handler) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--health-listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: healthOnly(h), ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "Health server stopped", "address", addr)
		}
	}()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	klog.InfoS("Serving health and metrics", "address", l.Addr().String())
	return nil
}
