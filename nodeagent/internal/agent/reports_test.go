package agent_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/nodeagent/internal/agent"
	"github.com/topolane/topolane/nodeagent/internal/attach"
	"github.com/topolane/topolane/nodeagent/internal/attach/attachtest"
	"github.com/topolane/topolane/nodeagent/internal/publish"
	"github.com/topolane/topolane/topology"
)

// TestSlowAPIDoesNotDelayADD: while the API server holds the first pod's annotation, ADDs of
// other pods finish; their reports queue, are made in one batch with one NodeTopology write,
// and are all made before the agent stops.
func TestSlowAPIDoesNotDelayADD(t *testing.T) {
	ctx := context.Background()
	e := attachtest.New(t, cniPath)
	client := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "dgx-1", UID: "node-uid"}})
	pods := []string{"p1", "p2", "p3"}
	for i, p := range pods {
		e.AddPod(p, []int{i}, map[string]string{"topolane.io/nic": "vf"})
		_, _ = client.CoreV1().Pods("train").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "train", Name: p, UID: types.UID("uid-" + p)}}, metav1.CreateOptions{})
	}
	release, inPatch := make(chan struct{}), atomic.Int32{}
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	client.PrependReactor("create", "events", nameEvent)
	client.PrependReactor("patch", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		inPatch.Add(1)
		<-release // the API server is slow
		return false, nil, nil
	})
	dyn := extendertest.DynamicClient()
	a := &agent.Agent{Client: client, Attacher: e.Att, Metrics: agent.NewMetrics(prometheus.NewRegistry()),
		Publisher: &publish.Publisher{Client: client, Dyn: dyn, NodeName: "dgx-1"},
		Discover:  func() (*topology.Node, error) { return e.Node, nil }}
	e.Att.Topology, e.Att.Reporter = a.Topology, a
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	writesBefore := countActions(dyn.Actions(), "update") + countActions(dyn.Actions(), "create")

	q1 := add(t, e, "p1", unblock)
	waitFor(t, func() bool { return inPatch.Load() == 1 }, "the first pod's annotation to reach the API server")
	add(t, e, "p2", unblock)
	add(t, e, "p3", unblock)
	if n := inPatch.Load(); n != 1 {
		t.Errorf("%d annotations reached the API server while it held the first, want 1", n)
	}

	unblock()
	stop, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a.StopReports(stop); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		pod, _ := client.CoreV1().Pods("train").Get(ctx, p, metav1.GetOptions{})
		if !strings.Contains(pod.Annotations[agent.AnnotationAttachment], `"interface":"net1"`) {
			t.Errorf("pod %s not annotated after the agent stopped: %v", p, pod.Annotations)
		}
	}
	if events, _ := client.CoreV1().Events("train").List(ctx, metav1.ListOptions{}); len(events.Items) != 3 {
		t.Errorf("%d events, want 3", len(events.Items))
	}
	if nt := nodeTopology(t, dyn); len(nt.Status.Attachments) != 3 {
		t.Errorf("NodeTopology lists %v, want 3 attachments", nt.Status.Attachments)
	}
	// The NodeTopology is written from the journal: the first write, after the slow annotation,
	// lists all three; the next batch (p2 and p3) finds nothing to change.
	if writes := countActions(dyn.Actions(), "update") + countActions(dyn.Actions(), "create") - writesBefore; writes != 1 {
		t.Errorf("%d NodeTopology writes for three ADDs, want 1", writes)
	}

	// Once stopped, a report is made by its caller, never dropped.
	if err := e.Att.Del(ctx, q1); err != nil {
		t.Fatal(err)
	}
	if nt := nodeTopology(t, dyn); len(nt.Status.Attachments) != 2 {
		t.Errorf("after a DEL once stopped: %v, want 2 attachments", nt.Status.Attachments)
	}
}

// add runs an ADD and fails the test if it waits on the API server.
func add(t *testing.T, e *attachtest.Env, pod string, unblock func()) attach.Request {
	t.Helper()
	done := make(chan error, 1)
	q := e.Request(pod, e.NewPodNS())
	go func() { _, err := e.Att.Add(context.Background(), q); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ADD %s: %v", pod, err)
		}
	case <-time.After(10 * time.Second):
		unblock()
		t.Fatalf("ADD %s waited on the API server", pod)
	}
	return q
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// nameEvent gives an event the name the API server would generate (the fake keeps
// GenerateName empty, and a second event would collide).
func nameEvent(action k8stesting.Action) (bool, runtime.Object, error) {
	ev := action.(k8stesting.CreateAction).GetObject().(*corev1.Event)
	if ev.Name == "" {
		ev.Name = fmt.Sprintf("%s%d", ev.GenerateName, events.Add(1))
	}
	return false, nil, nil
}

var events atomic.Int32
