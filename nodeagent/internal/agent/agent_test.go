package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/nodeagent/internal/agent"
	"github.com/topolane/topolane/nodeagent/internal/attach/attachtest"
	"github.com/topolane/topolane/nodeagent/internal/publish"
	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
)

var cniPath string

func TestMain(m *testing.M) { os.Exit(attachtest.Main(m, &cniPath)) }

func TestPublishAttachReport(t *testing.T) {
	ctx := context.Background()
	e := attachtest.New(t, cniPath)
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
	client := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "dgx-1", UID: "node-uid"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "train", Name: "p", UID: "uid-p"}},
	)
	dyn := extendertest.DynamicClient()
	discoveries := 0
	a := &agent.Agent{Client: client, Attacher: e.Att, Metrics: agent.NewMetrics(prometheus.NewRegistry()),
		Publisher: &publish.Publisher{Client: client, Dyn: dyn, NodeName: "dgx-1"},
		Discover:  func() (*topology.Node, error) { discoveries++; return e.Node, nil }}
	e.Att.Topology, e.Att.Reporter = a.Topology, a
	if a.Ready() == nil {
		t.Error("ready before discovery")
	}
	for range 2 { // the second finds nothing changed and writes nothing
		if err := a.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	nt := nodeTopology(t, dyn)
	if nt.OwnerReferences[0].UID != "node-uid" || nt.Status.GPUs != 8 || nt.Status.PFsFree != 8 || len(nt.Status.Attachments) != 0 {
		t.Errorf("NodeTopology: owners %v, status gpus %d pfs %d attachments %v", nt.OwnerReferences, nt.Status.GPUs, nt.Status.PFsFree, nt.Status.Attachments)
	}
	if updates := countActions(dyn.Actions(), "update") + countActions(dyn.Actions(), "create"); updates != 1 {
		t.Errorf("%d writes of the NodeTopology for one topology, want 1", updates)
	}
	node, _ := client.CoreV1().Nodes().Get(ctx, "dgx-1", metav1.GetOptions{})
	if node.Annotations[publish.AnnotationTopology] == "" {
		t.Error("the Node is not marked: pending pods would not be retried")
	}
	if err := a.Ready(); err != nil {
		t.Error(err)
	}

	q := e.Request("p", e.NewPodNS())
	if _, err := e.Att.Add(ctx, q); err != nil {
		t.Fatal(err)
	}
	if err := a.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if rdma := a.RDMADevices("uid-p"); len(rdma) != 1 || !strings.HasPrefix(rdma[0], "mlx5_") {
		t.Errorf("RDMA devices of the pod: %v, want its VF's", rdma)
	}
	if rdma := a.RDMADevices("uid-other"); len(rdma) != 0 {
		t.Errorf("RDMA devices of another pod: %v", rdma)
	}
	pod, _ := client.CoreV1().Pods("train").Get(ctx, "p", metav1.GetOptions{})
	if note := pod.Annotations[agent.AnnotationAttachment]; !strings.Contains(note, `"interface":"net1"`) || !strings.Contains(note, `"kind":"vf"`) {
		t.Errorf("pod annotation %q", note)
	}
	events, _ := client.CoreV1().Events("train").List(ctx, metav1.ListOptions{})
	if len(events.Items) != 1 || events.Items[0].Reason != "DeviceAttached" {
		t.Errorf("events %+v", events.Items)
	}
	if nt := nodeTopology(t, dyn); len(nt.Status.Attachments) != 1 || nt.Status.Attachments[0].Pod != "train/p" || nt.Status.VFsFree != 3 {
		t.Errorf("after ADD: attachments %v, VFs free %d", nt.Status.Attachments, nt.Status.VFsFree)
	}
	if err := e.Att.Del(ctx, q); err != nil {
		t.Fatal(err)
	}
	if err := a.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if nt := nodeTopology(t, dyn); len(nt.Status.Attachments) != 0 {
		t.Errorf("after DEL: attachments %v", nt.Status.Attachments)
	}
	if rdma := a.RDMADevices("uid-p"); len(rdma) != 0 {
		t.Errorf("RDMA devices after DEL: %v", rdma)
	}
	// DEL clears what ADD reported: a pod whose sandbox goes (and may come back) keeps no stale
	// attachment; and the node is discovered again, its devices home.
	pod, _ = client.CoreV1().Pods("train").Get(ctx, "p", metav1.GetOptions{})
	if note, has := pod.Annotations[agent.AnnotationAttachment]; has {
		t.Errorf("after DEL the pod still says %s", note)
	}
	if discoveries != 3 {
		t.Errorf("%d discoveries, want 3: two refreshes and one after the DEL", discoveries)
	}
}

// TestUnreadableRecordDoesNotStopPublishing: one journal record that cannot be read is left
// out of the NodeTopology's attachments (reconcile reports it); the node is still published and
// the agent ready, or the node would take no GPU pod at all.
func TestUnreadableRecordDoesNotStopPublishing(t *testing.T) {
	e := attachtest.New(t, cniPath)
	if err := os.MkdirAll(e.Att.Journal.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.Att.Journal.Dir, "old@net1.json"), []byte(`{"devices": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	client := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "dgx-1", UID: "node-uid"}})
	dyn := extendertest.DynamicClient()
	a := &agent.Agent{Client: client, Attacher: e.Att, Metrics: agent.NewMetrics(prometheus.NewRegistry()),
		Publisher: &publish.Publisher{Client: client, Dyn: dyn, NodeName: "dgx-1"},
		Discover:  func() (*topology.Node, error) { return e.Node, nil }}
	if err := a.Refresh(context.Background()); err != nil {
		t.Errorf("refresh: %v", err)
	}
	if err := a.Ready(); err != nil {
		t.Errorf("not ready: %v", err)
	}
}

func nodeTopology(t *testing.T, dyn *dynamicfake.FakeDynamicClient) *v1alpha1.NodeTopology {
	t.Helper()
	u, err := dyn.Resource(v1alpha1.GroupVersionResource).Get(context.Background(), "dgx-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nt, err := v1alpha1.FromUnstructured(u)
	if err != nil {
		t.Fatal(err)
	}
	return nt
}

func countActions[T interface{ GetVerb() string }](actions []T, verb string) int {
	n := 0
	for _, a := range actions {
		if a.GetVerb() == verb {
			n++
		}
	}
	return n
}

// TestAPIPodsUID: a pod UID that is not a UUID never names a directory.
func TestAPIPodsUID(t *testing.T) {
	client := fake.NewClientset(
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "train", Name: "ok", UID: "0c0f3b3e-6a8a-4c3e-9d4e-2f4a5b6c7d8e"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "train", Name: "bad", UID: "../../../etc"}},
	)
	pods := agent.APIPods{Client: client}
	if p, err := pods.Get(context.Background(), "train", "ok"); err != nil || p.UID != "0c0f3b3e-6a8a-4c3e-9d4e-2f4a5b6c7d8e" {
		t.Errorf("Get(ok) = %+v, %v", p, err)
	}
	if _, err := pods.Get(context.Background(), "train", "bad"); err == nil || !strings.Contains(err.Error(), "not a UUID") {
		t.Errorf("Get(bad) = %v, want a refusal", err)
	}
}
