package agent

import (
	"context"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"

	"github.com/topolane/topolane/nodeagent/internal/attach"
)

// Reporting after an ADD or a DEL (the pod's annotation and event, the NodeTopology) talks to
// the API server, which can be slow; the attacher serialises every ADD and DEL of the node, so
// these calls run on a worker of their own and the attacher only queues them. The queue is
// unbounded (a report is never dropped), taken in order, and drained when the agent stops.
// NodeTopology writes are coalesced: it is written from the journal, so one write after a
// batch of reports says all of them.

// reportTimeout bounds the API calls of one report.
const reportTimeout = 30 * time.Second

// patchRetries are the waits before retrying a pod's annotation that failed.
var patchRetries = []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}

// item is a report, or a barrier that Drain waits on.
type item struct {
	record   attach.Record
	attached bool
	barrier  chan struct{}
}

type reportQueue struct {
	mu       sync.Mutex
	items    []item
	started  bool
	stopping bool
	wake     chan struct{} // one token: there is something to do
	done     chan struct{} // closed when the worker has stopped
}

// Attached queues the pod's annotation, an event and a NodeTopology write; it does not wait
// for them.
func (a *Agent) Attached(ctx context.Context, r *attach.Record) {
	a.enqueue(ctx, item{record: *r, attached: true})
}

// Detached queues an event (the pod may be gone) and a NodeTopology write.
func (a *Agent) Detached(ctx context.Context, r *attach.Record) {
	a.enqueue(ctx, item{record: *r})
}

// enqueue starts the worker on the first report. Once the agent is stopping, a report is made
// at once by the caller rather than lost.
func (a *Agent) enqueue(ctx context.Context, it item) {
	q := &a.reports
	q.mu.Lock()
	if q.stopping {
		q.mu.Unlock()
		a.report(ctx, it, false)
		a.publishLogged(ctx, !it.attached)
		return
	}
	if !q.started {
		q.started, q.wake, q.done = true, make(chan struct{}, 1), make(chan struct{})
		go a.reportLoop(klog.NewContext(context.Background(), klog.FromContext(ctx)))
	}
	q.items = append(q.items, it)
	q.mu.Unlock()
	q.signal()
}

func (q *reportQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take waits for work and takes everything queued; ok is false once stopping and empty.
func (q *reportQueue) take() (batch []item, ok bool) {
	for {
		q.mu.Lock()
		batch, q.items = q.items, nil
		stopping := q.stopping
		q.mu.Unlock()
		if len(batch) > 0 || stopping {
			return batch, len(batch) > 0
		}
		<-q.wake
	}
}

func (a *Agent) reportLoop(ctx context.Context) {
	defer close(a.reports.done)
	for {
		batch, ok := a.reports.take()
		if !ok {
			return
		}
		a.reportBatch(ctx, batch)
	}
}

// reportBatch makes the batch's reports in order, then one NodeTopology write; a barrier is
// released once everything before it, its write included, is done. Devices that came back from
// pods are discovered again before the write: their names and RDMA devices are the host's once
// more, and discovery may have run while they were away.
func (a *Agent) reportBatch(ctx context.Context, batch []item) {
	publish, rediscover := false, false
	flush := func() {
		if publish {
			a.publishLogged(ctx, rediscover)
		}
		publish, rediscover = false, false
	}
	for _, it := range batch {
		if it.barrier != nil {
			flush()
			close(it.barrier)
			continue
		}
		a.report(ctx, it, true)
		publish, rediscover = true, rediscover || !it.attached
	}
	flush()
}

// Drain waits until every report queued before it is made, or ctx ends.
func (a *Agent) Drain(ctx context.Context) error {
	q := &a.reports
	q.mu.Lock()
	if !q.started || q.stopping {
		q.mu.Unlock()
		return nil
	}
	barrier := make(chan struct{})
	q.items = append(q.items, item{barrier: barrier})
	q.mu.Unlock()
	q.signal()
	select {
	case <-barrier:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StopReports drains the queue and stops the worker; reports that come later are made by
// their caller. It returns when all is reported or ctx ends.
func (a *Agent) StopReports(ctx context.Context) error {
	if err := a.Drain(ctx); err != nil {
		return err
	}
	q := &a.reports
	q.mu.Lock()
	started := q.started
	q.stopping = true
	q.mu.Unlock()
	if !started {
		return nil
	}
	q.signal()
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// report makes one report's pod-side calls: annotation and event on ADD, an event on DEL.
func (a *Agent) report(ctx context.Context, it item, retry bool) {
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	r := &it.record
	if !it.attached {
		a.eventDetached(ctx, r)
		return
	}
	waits := patchRetries
	if !retry {
		waits = nil
	}
	a.annotateAttached(ctx, r, waits)
	a.eventAttached(ctx, r)
}

// annotateAttached patches the pod, retrying after each wait unless the pod is gone.
func (a *Agent) annotateAttached(ctx context.Context, r *attach.Record, waits []time.Duration) {
	err := a.annotate(ctx, r)
	for _, w := range waits {
		if err == nil || apierrors.IsNotFound(err) {
			break
		}
		select {
		case <-time.After(w):
		case <-ctx.Done():
		}
		err = a.annotate(ctx, r)
	}
	if err != nil {
		klog.FromContext(ctx).Error(err, "Annotating the pod", "pod", r.Pod)
	}
}

// publishLogged writes the NodeTopology, discovering the node again first if asked.
func (a *Agent) publishLogged(ctx context.Context, rediscover bool) {
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	var err error
	if rediscover && a.Discover != nil {
		err = a.Refresh(ctx)
	} else {
		err = a.publish(ctx)
	}
	if err != nil {
		klog.FromContext(ctx).Error(err, "Publishing the node's attachments; the next refresh retries")
	}
}
