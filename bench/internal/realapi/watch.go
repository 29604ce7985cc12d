package realapi

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// BoundWatch counts the pods of a namespace that are bound, as the API server's watch shows
// them.
type BoundWatch struct {
	mu    sync.Mutex
	bound map[string]bool
	last  time.Time // when the latest pod was seen bound
	stop  context.CancelFunc
}

// WatchBound starts watching ns and returns once the watch has synced.
func (c *Cluster) WatchBound(ctx context.Context, ns string) (*BoundWatch, error) {
	ctx, cancel := context.WithCancel(ctx)
	w := &BoundWatch{bound: map[string]bool{}, stop: cancel}
	factory := informers.NewSharedInformerFactoryWithOptions(c.Client, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().Pods().Informer()
	seen := func(obj any) {
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
			w.mu.Lock()
			if !w.bound[p.Name] {
				w.bound[p.Name], w.last = true, time.Now()
			}
			w.mu.Unlock()
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: seen, UpdateFunc: func(_, obj any) { seen(obj) }}); err != nil {
		cancel()
		return nil, err
	}
	factory.Start(ctx.Done())
	for _, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			cancel()
			return nil, fmt.Errorf("watching pods in %s did not sync", ns)
		}
	}
	return w, nil
}

// Wait waits until the named pods are all bound, or timeout or ctx ends; progress hears the
// count bound twice a second. It returns the count bound and when the last of them was seen.
func (w *BoundWatch) Wait(ctx context.Context, names []string, timeout time.Duration, progress func(bound int)) (int, time.Time) {
	deadline := time.Now().Add(timeout)
	for {
		n, last := w.count(names)
		if progress != nil {
			progress(n)
		}
		if n == len(names) || time.Now().After(deadline) || ctx.Err() != nil {
			return n, last
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (w *BoundWatch) count(names []string) (int, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, name := range names {
		if w.bound[name] {
			n++
		}
	}
	return n, w.last
}

// Stop ends the watch.
func (w *BoundWatch) Stop() { w.stop() }
