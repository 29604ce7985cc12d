package apiserver

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/topolane/topolane/extender/e2e/kubesched"
	"github.com/topolane/topolane/extender/embedded"
	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/topologytest"
)

// The load: pods racing onto nodes through two scheduler profiles that share one extender.
const (
	loadPods = 1000
	loadDGX  = 90 // DGX H100 nodes: 8 GPUs, 8 rails
	loadPCIe = 10 // two-socket PCIe servers: 4 GPUs, 2 rails
	schedA   = "topolane-scheduler"
	schedB   = "topolane-scheduler-b"
	// A pod runs this long, at random, once bound: long enough that the cluster fills and binds
	// race for the last free devices.
	minLifetime, maxLifetime = 3 * time.Second, 12 * time.Second
	// restartGap is how long the schedulers meet a closed port when the extender is killed.
	restartGap = 1500 * time.Millisecond
	// lostEvery: every 100th Binding of each extender goes through while its answer comes too
	// late (the scheduler's 5 s httpTimeout has cancelled the bind request): the release of the
	// failed bind must keep the reservation of the pod that is bound after all.
	lostEvery = 100
	// stall: no bind for this long while pods wait, and a node is touched (see kick).
	stall       = 3 * time.Second
	loadTimeout = 5 * time.Minute
)

// TestThousandPodsTwoSchedulersRestartStaleEvents is issue #11's "done when", under load, on the
// real API server: 1,000 GPU pods (1, 2, 4 and 8 GPUs; some topolane.io/nic: vf or pf) race onto
// 100 nodes through two real kube-schedulers (two profiles) that share one extender. Bound pods
// finish after 3 to 12 s, so that the cluster fills and every pod gets its turn. Halfway the
// extender is killed; the schedulers meet a closed port, then a fresh extender that answers 503
// until it has rebuilt its ledger from the API. Throughout, old copies of pods from before their
// bind are fed to the running extender as late informer events, and now and then a Binding goes
// through with its answer lost (the scheduler's request timed out). Checked against the API
// server's pods, never the extender's memory: no device is held by two pods, no node has more
// GPUs bound than it has, every bound pod's allocation is its own (its UID, its node), and every
// pod got bound.
func TestThousandPodsTwoSchedulersRestartStaleEvents(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startAPIServer(t, ctx)
	installCRD(t, ctx, c.cfg)
	l := newLoad(t, ctx, c)
	l.createNodes()
	l.ep.start()
	for _, name := range []string{schedA, schedB} {
		if err := kubesched.Start(ctx, c.client, l.ep.url(), name); err != nil {
			t.Fatal(err)
		}
	}
	l.observe()
	stop := l.background()
	defer stop()
	start := time.Now()
	l.createPods()
	last := l.waitAllBound(start)
	stop()
	l.completions.Wait()
	l.ep.stop()
	l.checkAPI()
	l.report(last.Sub(start))
}

// load is the test's side: the cluster it built, what it saw of the pods, what it injected.
type load struct {
	t    *testing.T
	ctx  context.Context
	c    cluster
	ep   *endpoint
	gpus map[string]int // by node

	mu      sync.Mutex
	rand    *rand.Rand
	stale   map[types.UID][]*corev1.Pod // copies from before the pod was bound: the first and the latest
	live    []types.UID                 // pods not deleted, with stale copies
	uids    map[string]types.UID        // by pod name
	bound   map[types.UID]time.Time
	deleted map[types.UID]bool
	wrong   map[string]bool // what the checks found, each once

	completions sync.WaitGroup
	injected    atomic.Int64 // stale copies fed to the extender
	afterBind   atomic.Int64 // … of pods already bound
	inFlight    atomic.Int64 // … of a pod as the extender sends its Binding
	kicks       atomic.Int64
	checks      atomic.Int64
	restarted   time.Duration // from the kill to the fresh extender's first answer
}

func newLoad(t *testing.T, ctx context.Context, c cluster) *load {
	cfg := embedded.Config{NoPF: embedded.NoPFReject, SchedulerNames: []string{schedA, schedB}}
	l := &load{t: t, ctx: ctx, c: c, ep: newEndpoint(t, ctx, c, cfg, lostEvery), gpus: map[string]int{},
		rand: rand.New(rand.NewPCG(12, 1000)), stale: map[types.UID][]*corev1.Pod{},
		uids: map[string]types.UID{}, bound: map[types.UID]time.Time{}, deleted: map[types.UID]bool{}, wrong: map[string]bool{}}
	l.ep.beforeBinding = l.lateEvent
	return l
}

// createNodes publishes the NodeTopologies and creates the Nodes.
func (l *load) createNodes() {
	l.t.Helper()
	machines := []struct {
		prefix string
		n      int
		m      topologytest.Machine
	}{{"dgx", loadDGX, topologytest.DGXH100()}, {"pcie", loadPCIe, topologytest.PCIeServerOneNIC()}}
	for _, m := range machines {
		template := extendertest.Topology("template", m.m)
		for i := range m.n {
			name := fmt.Sprintf("%s-%03d", m.prefix, i)
			if err := createGPUNode(l.ctx, l.c, name, template); err != nil {
				l.t.Fatal(err)
			}
			l.gpus[name] = template.Status.GPUs
		}
	}
}

// loadPod is the i-th pod of the load: its GPUs and its NIC wish drawn from shapes, its
// scheduler every other one.
func loadPod(i int, shapes *rand.Rand) *corev1.Pod {
	gpus := []int{1, 1, 1, 2, 2, 4, 4, 8}[shapes.IntN(8)]
	var annotations []string
	switch shapes.IntN(10) {
	case 0:
		annotations = []string{v1alpha1.AnnotationNIC, "vf"}
	case 1:
		annotations = []string{v1alpha1.AnnotationNIC, "pf"}
	}
	pod := extendertest.Pod(ns, fmt.Sprintf("job-%04d", i), gpus, annotations...)
	pod.UID = ""
	pod.Spec.SchedulerName = []string{schedA, schedB}[i%2]
	return pod
}

// createPods creates every pod at once, from concurrent creators.
func (l *load) createPods() {
	l.t.Helper()
	pods := make(chan *corev1.Pod)
	errs := make(chan error, loadPods)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for pod := range pods {
				_, err := l.c.client.CoreV1().Pods(ns).Create(l.ctx, pod, metav1.CreateOptions{})
				errs <- err
			}
		})
	}
	shapes := rand.New(rand.NewPCG(11, 1000)) // the same pods every run
	for i := range loadPods {
		pods <- loadPod(i, shapes)
	}
	close(pods)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			l.t.Fatal(err)
		}
	}
}

// observe watches the pods: it keeps copies from before each pod's bind, checks each pod's
// allocation when it is bound, and deletes the pod after its lifetime.
func (l *load) observe() {
	factory := informers.NewSharedInformerFactoryWithOptions(l.c.client, 0, informers.WithNamespace(ns))
	pods := factory.Core().V1().Pods().Informer()
	_, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { l.seen(obj.(*corev1.Pod)) },
		UpdateFunc: func(_, obj any) { l.seen(obj.(*corev1.Pod)) },
	})
	if err != nil {
		l.t.Fatal(err)
	}
	factory.Start(l.ctx.Done())
	factory.WaitForCacheSync(l.ctx.Done())
}

func (l *load) seen(pod *corev1.Pod) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.deleted[pod.UID] {
		return
	}
	if pod.Spec.NodeName == "" {
		l.keepStale(pod)
		return
	}
	if _, ok := l.bound[pod.UID]; ok {
		return
	}
	l.bound[pod.UID] = time.Now()
	if problem := ownAllocation(pod); problem != "" {
		l.wrong[problem] = true
	}
	lifetime := minLifetime + time.Duration(l.rand.Int64N(int64(maxLifetime-minLifetime)))
	l.completions.Add(1)
	time.AfterFunc(lifetime, func() { defer l.completions.Done(); l.complete(pod) })
}

// keepStale keeps the first and the latest copy of a pod from before its bind.
func (l *load) keepStale(pod *corev1.Pod) {
	copies := l.stale[pod.UID]
	switch len(copies) {
	case 0:
		l.live = append(l.live, pod.UID)
		l.uids[pod.Name] = pod.UID
		l.stale[pod.UID] = []*corev1.Pod{pod}
	case 1:
		l.stale[pod.UID] = append(copies, pod)
	default:
		copies[1] = pod
	}
}

// ownAllocation says what is wrong with a bound pod's allocation: it must be there (every pod
// here asks for a NIC), be the pod's own and name the pod's node.
func ownAllocation(pod *corev1.Pod) string {
	a, err := v1alpha1.ParseAllocation(pod.Annotations[v1alpha1.AnnotationAllocation])
	switch {
	case err != nil:
		return fmt.Sprintf("pod %s bound to %s without a usable allocation: %v", pod.Name, pod.Spec.NodeName, err)
	case a.PodUID != pod.UID:
		return fmt.Sprintf("pod %s (%s) carries the allocation of pod UID %s", pod.Name, pod.UID, a.PodUID)
	case a.Node != pod.Spec.NodeName:
		return fmt.Sprintf("pod %s is bound to %s with an allocation for %s", pod.Name, pod.Spec.NodeName, a.Node)
	}
	return ""
}

// complete ends a pod as kubelet would once it has finished: deleted at once. From then on no
// stale copy of it is injected (an informer sends nothing of a pod after its deletion).
func (l *load) complete(pod *corev1.Pod) {
	l.mu.Lock()
	l.deleted[pod.UID] = true
	if i := slices.Index(l.live, pod.UID); i >= 0 {
		l.live[i] = l.live[len(l.live)-1]
		l.live = l.live[:len(l.live)-1]
	}
	l.mu.Unlock()
	err := l.c.client.CoreV1().Pods(ns).Delete(l.ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64),
		Preconditions: &metav1.Preconditions{UID: &pod.UID}})
	if err != nil && !apierrors.IsNotFound(err) && l.ctx.Err() == nil {
		l.fail(fmt.Sprintf("deleting pod %s: %v", pod.Name, err))
	}
}

func (l *load) fail(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.wrong[msg] = true
}

// background starts the injector of stale events and the checker of the API's pods; the
// returned function stops them and waits.
func (l *load) background() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { l.every(done, time.Millisecond, l.injectOne) })
	wg.Go(func() { l.every(done, 500*time.Millisecond, l.checkAPI) })
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

func (l *load) every(done <-chan struct{}, d time.Duration, fn func()) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			fn()
		}
	}
}

// injectOne feeds the running extender an old copy of a live pod, as a late informer event.
func (l *load) injectOne() {
	ext := l.ep.current()
	l.mu.Lock()
	defer l.mu.Unlock()
	if ext == nil || len(l.live) == 0 {
		return
	}
	uid := l.live[l.rand.IntN(len(l.live))]
	copies := l.stale[uid]
	ext.SetPod(copies[l.rand.IntN(len(copies))])
	l.injected.Add(1)
	if _, ok := l.bound[uid]; ok {
		l.afterBind.Add(1)
	}
}

// lateEvent feeds the extender the stale copies of a pod whose Binding it is about to send:
// its reservation is assumed and, unless its informer has been quick, not yet confirmed, the
// moment a late event must not erase it.
func (l *load) lateEvent(ext *embedded.Extender, name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	uid := l.uids[name]
	if l.deleted[uid] {
		return
	}
	for _, stale := range l.stale[uid] {
		ext.SetPod(stale)
		l.injected.Add(1)
		l.inFlight.Add(1)
	}
}

// checkAPI lists the pods from the API server and checks what the bound ones hold.
func (l *load) checkAPI() {
	list, err := l.c.client.CoreV1().Pods(ns).List(l.ctx, metav1.ListOptions{})
	if err != nil {
		if l.ctx.Err() == nil {
			l.fail(fmt.Sprintf("listing pods: %v", err))
		}
		return
	}
	l.checks.Add(1)
	wrong := extendertest.DevicesHeldTwice(list.Items)
	used := map[string]int{}
	for _, pod := range list.Items {
		if pod.Spec.NodeName == "" {
			continue
		}
		used[pod.Spec.NodeName] += int(pod.Spec.Containers[0].Resources.Requests.Name(extendertest.GPU, "").Value())
		if problem := ownAllocation(&pod); problem != "" {
			wrong = append(wrong, problem)
		}
	}
	for node, n := range used {
		if n > l.gpus[node] {
			wrong = append(wrong, fmt.Sprintf("%s has pods bound for %d GPUs, has %d", node, n, l.gpus[node]))
		}
	}
	for _, w := range wrong {
		l.fail(w)
	}
}

// waitAllBound waits until every pod has been bound; halfway it kills the extender and starts a
// fresh one. It returns when the last pod was bound.
func (l *load) waitAllBound(start time.Time) time.Time {
	l.t.Helper()
	restarted := false
	progress, lastCount := time.Now(), 0
	for time.Since(start) < loadTimeout {
		n, last := l.boundSoFar()
		switch {
		case n == loadPods:
			return last
		case n >= loadPods/2 && !restarted:
			l.restart()
			restarted, progress = true, time.Now()
		case n != lastCount:
			progress, lastCount = time.Now(), n
		case time.Since(progress) > stall:
			l.kick()
			progress = time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	n, _ := l.boundSoFar()
	l.t.Fatalf("%d of %d pods bound after %v; pending:\n%s", n, loadPods, loadTimeout, l.pending())
	return time.Time{}
}

func (l *load) boundSoFar() (n int, last time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, at := range l.bound {
		if at.After(last) {
			last = at
		}
	}
	return len(l.bound), last
}

// restart kills the extender, leaves the schedulers facing a closed port, and starts a fresh
// extender.
func (l *load) restart() {
	l.t.Helper()
	killed := time.Now()
	l.ep.stop()
	time.Sleep(restartGap)
	l.ep.start()
	for !l.ep.current().Ready() {
		if time.Since(killed) > time.Minute {
			l.t.Fatal("the fresh extender did not take in the API's lists within a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.restarted = time.Since(killed)
}

// kick touches a node as topolane-agent does when its devices change (topolane.io/topology-hash):
// the scheduler retries pods it parked as unschedulable on a Node event. Without it a pod the
// extender rejected while its informer had not yet seen the last pod deletion would wait for
// the scheduler's five-minute flush.
func (l *load) kick() {
	l.kicks.Add(1)
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"topolane.io/topology-hash":"kick-%d"}}}`, l.kicks.Load())
	if _, err := l.c.client.CoreV1().Nodes().Patch(l.ctx, "dgx-000", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		l.fail(fmt.Sprintf("touching node dgx-000: %v", err))
	}
}

// pending lists the pods not bound yet with the scheduler's last word on each.
func (l *load) pending() string {
	pods, err := l.c.client.CoreV1().Pods(ns).List(l.ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	events, _ := l.c.client.EventsV1().Events(ns).List(l.ctx, metav1.ListOptions{})
	said := map[string]string{}
	for _, e := range events.Items {
		said[e.Regarding.Name] = e.Reason + ": " + e.Note
	}
	var out []string
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" {
			out = append(out, fmt.Sprintf("%s (%s GPUs): %s", p.Name, p.Spec.Containers[0].Resources.Requests.Name(extendertest.GPU, ""), said[p.Name]))
		}
	}
	return strings.Join(out, "\n")
}

// report fails the test with what the checks found, and logs the figures.
func (l *load) report(elapsed time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range slices.Sorted(maps.Keys(l.wrong)) {
		l.t.Error(w)
	}
	if len(l.bound) != loadPods {
		l.t.Errorf("%d pods were bound, want %d", len(l.bound), loadPods)
	}
	l.t.Logf("%d pods bound in %v (%.1f pods/s) through 2 schedulers; extender killed at %d bound, back %v later, %d verbs answered 503",
		len(l.bound), elapsed.Round(time.Millisecond), float64(len(l.bound))/elapsed.Seconds(), loadPods/2, l.restarted.Round(time.Millisecond), l.ep.unavailable.Load())
	l.t.Logf("%d stale pod events injected (%d of pods already bound, %d as their Binding was sent); %d Bindings went through with their answer lost; %d checks of the API's pods; %d stalls kicked",
		l.injected.Load(), l.afterBind.Load(), l.inFlight.Load(), l.ep.lostAnswers(), l.checks.Load(), l.kicks.Load())
	for _, k := range slices.Sorted(maps.Keys(l.ep.counters)) {
		l.t.Logf("%s %.0f", k, l.ep.counters[k])
	}
}
