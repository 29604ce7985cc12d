package apiserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

var (
	errKilled  = errors.New("the extender was killed")
	errRefused = errors.New("the Binding was refused")
)

// apiFaults are what an extender meets on its way to the API server.
type apiFaults struct {
	dead           atomic.Bool // killed: every request fails from now on
	refuseBindings bool        // every Binding fails without reaching the API server
	// Every lostEvery-th Binding reaches the API server, which binds the pod, but its answer
	// comes after the caller has given up (the scheduler's httpTimeout cancels the bind
	// request): the caller sees its context's error. 0: none.
	lostEvery int64
	bindings  atomic.Int64
	lost      atomic.Int64
	// beforeBinding, if set, is called with the pod's name before each Binding is sent.
	beforeBinding func(pod string)
}

// clients are clients of the API server that meet the faults.
func (f *apiFaults) clients(cfg *rest.Config) (kubernetes.Interface, dynamic.Interface) {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) { return f.roundTrip(rt, r) })
	})
	return kubernetes.NewForConfigOrDie(cfg), dynamic.NewForConfigOrDie(cfg)
}

func (f *apiFaults) roundTrip(rt http.RoundTripper, r *http.Request) (*http.Response, error) {
	binding := r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/binding")
	switch {
	case f.dead.Load():
		return nil, fmt.Errorf("%s %s: %w", r.Method, r.URL.Path, errKilled)
	case binding && f.refuseBindings:
		return nil, fmt.Errorf("%s %s: %w", r.Method, r.URL.Path, errRefused)
	}
	if binding && f.beforeBinding != nil {
		f.beforeBinding(path.Base(path.Dir(r.URL.Path)))
	}
	if binding && f.lostEvery > 0 && f.bindings.Add(1)%f.lostEvery == 0 {
		return f.loseAnswer(rt, r)
	}
	return rt.RoundTrip(r)
}

// loseAnswer sends the request on to the end, then holds its answer until the caller's context
// ends (30 s at most) and returns that error instead.
func (f *apiFaults) loseAnswer(rt http.RoundTripper, r *http.Request) (*http.Response, error) {
	resp, err := rt.RoundTrip(r.WithContext(context.WithoutCancel(r.Context())))
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	select {
	case <-r.Context().Done():
	case <-time.After(30 * time.Second):
	}
	f.lost.Add(1)
	return nil, fmt.Errorf("%s %s: the answer came too late: %w", r.Method, r.URL.Path, context.Canceled)
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
