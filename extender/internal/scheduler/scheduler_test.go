package scheduler_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/extender/internal/scheduler"
	"github.com/topolane/topolane/extender/internal/state"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
	"github.com/topolane/topolane/topology/topologytest"
)

// DGX H100 fixture: rail i is GPU i and the NIC under its switch; NIC0 has 4 VFs.
var (
	dgxNICs = []string{"0000:1a:00.0", "0000:42:00.0", "0000:51:00.0", "0000:60:00.0", "0000:9c:00.0", "0000:c2:00.0", "0000:d0:00.0", "0000:de:00.0"}
	dgxGPUs = []string{"0000:1b:00.0", "0000:43:00.0", "0000:52:00.0", "0000:61:00.0", "0000:9d:00.0", "0000:c3:00.0", "0000:d1:00.0", "0000:df:00.0"}
)

type cluster struct {
	t      *testing.T
	store  *state.Store
	client *fake.Clientset
	ext    *scheduler.Extender
}

// newCluster has dgx-a and dgx-b (DGX H100 fixtures), pcie-a (a PCIe server with one NIC per
// socket: two GPUs per rail), and bare, a GPU node without a NodeTopology.
func newCluster(t *testing.T, cfg scheduler.Config) *cluster {
	c := &cluster{t: t, store: state.New(state.DefaultGPUResources, placement.DefaultWeights, nil), client: fake.NewClientset()}
	extendertest.BindLikeTheAPIServer(c.client)
	for name, m := range map[string]topologytest.Machine{"dgx-a": topologytest.DGXH100(), "dgx-b": topologytest.DGXH100(), "pcie-a": topologytest.PCIeServerOneNIC()} {
		c.store.SetNode(extendertest.Node(name, len(m.Node().GPUs)))
		c.store.SetTopology(name, extendertest.Topology(name, m), nil)
	}
	c.store.SetNode(extendertest.Node("bare", 8))
	c.ext = scheduler.New(c.store, c.client, cfg, nil)
	return c
}

// add creates a pending pod in the API and the store.
func (c *cluster) add(pod *corev1.Pod) *corev1.Pod {
	c.t.Helper()
	created, err := c.client.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	c.store.SetPod(created)
	return created
}

// bind binds and, like the pod informer would, tells the store the pod's new state.
func (c *cluster) bind(pod *corev1.Pod, node string) error {
	err := c.ext.Bind(context.Background(), &extenderv1.ExtenderBindingArgs{PodName: pod.Name, PodNamespace: pod.Namespace, PodUID: pod.UID, Node: node})
	c.sync(pod)
	return err
}

// sync tells the store the pod's state in the API, as the pod informer would.
func (c *cluster) sync(pod *corev1.Pod) {
	if current, err := c.client.CoreV1().Pods(pod.Namespace).Get(context.Background(), pod.Name, metav1.GetOptions{}); err == nil {
		c.store.SetPod(current)
	}
}

func (c *cluster) filter(pod *corev1.Pod, nodes ...string) *extenderv1.ExtenderFilterResult {
	c.t.Helper()
	res, err := c.ext.Filter(&extenderv1.ExtenderArgs{Pod: pod, NodeNames: &nodes})
	if err != nil {
		c.t.Fatal(err)
	}
	return res
}

func (c *cluster) scores(pod *corev1.Pod, nodes ...string) map[string]int64 {
	c.t.Helper()
	list, err := c.ext.Prioritize(&extenderv1.ExtenderArgs{Pod: pod, NodeNames: &nodes})
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]int64{}
	for _, h := range *list {
		out[h.Host] = h.Score
	}
	return out
}

// attach publishes a NodeTopology of the node's machine with the attachments, as its agent would.
func (c *cluster) attach(node string, m topologytest.Machine, atts ...v1alpha1.Attachment) {
	c.store.SetTopology(node, extendertest.Topology(node, m, atts...), nil)
}

func allocation(t *testing.T, c *cluster, pod *corev1.Pod) v1alpha1.Allocation {
	t.Helper()
	current, err := c.client.CoreV1().Pods(pod.Namespace).Get(context.Background(), pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := v1alpha1.ParseAllocation(current.Annotations[v1alpha1.AnnotationAllocation])
	if err != nil {
		t.Fatalf("pod %s: %v", pod.Name, err)
	}
	return a
}

func TestFilterNonGPUPodPassesUntouched(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	pod := extendertest.Pod("ns", "web", 0)
	res := c.filter(pod, "dgx-a", "bare", "not-yet-known")
	if len(*res.NodeNames) != 3 || len(res.FailedNodes) != 0 || len(res.FailedAndUnresolvableNodes) != 0 {
		t.Errorf("a pod without GPUs should pass every node: %+v", res)
	}
	nodes := &corev1.NodeList{Items: []corev1.Node{*extendertest.Node("dgx-a", 8), *extendertest.Node("bare", 8)}}
	full, err := c.ext.Filter(&extenderv1.ExtenderArgs{Pod: pod, Nodes: nodes})
	if err != nil || full.Nodes == nil || len(full.Nodes.Items) != 2 || full.NodeNames != nil {
		t.Errorf("full Node objects in, full Node objects out: %+v, %v", full, err)
	}
}

// TestFilterFullNodePodNeedsEveryRail: a pod of every free GPU needs the whole PF of each of
// their rails; one rail's PF with a VF in use rejects the node, naming the rail and the holder.
func TestFilterFullNodePodNeedsEveryRail(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	// dgx-a: a 1-GPU pod on GPU5 was given a VF on rail 0's NIC (its own rail's share was taken).
	c.attach("dgx-a", topologytest.DGXH100(), v1alpha1.Attachment{Pod: "ns/small", PodUID: "small", Kind: placement.KindVF, NIC: dgxNICs[0],
		Device: "0000:1a:00.2", Rail: 5, GPUs: []string{dgxGPUs[5]}})
	small := extendertest.Pod("ns", "small", 1)
	small.UID, small.Spec.NodeName = "small", "dgx-a"
	c.store.SetPod(small)
	res := c.filter(extendertest.Pod("ns", "train", 7), "dgx-a", "dgx-b", "bare", "pcie-a")
	if got := *res.NodeNames; len(got) != 1 || got[0] != "dgx-b" {
		t.Errorf("passing nodes = %v, want [dgx-b]", got)
	}
	if why := res.FailedNodes["dgx-a"]; why != "topolane: needs the whole PF of 7 rails for 7/7 GPUs: rail 0 (0000:1a:00.0 has 1 VF in use by ns/small)" {
		t.Errorf("dgx-a reason = %q", why)
	}
	if why := res.FailedAndUnresolvableNodes["bare"]; !strings.Contains(why, "no NodeTopology") {
		t.Errorf("bare reason = %q", why)
	}
	if why := res.FailedAndUnresolvableNodes["pcie-a"]; !strings.Contains(why, "needs 7 GPUs: node has only 4") {
		t.Errorf("pcie-a reason = %q", why)
	}
}

func TestFilterGDRRequired(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	res := c.filter(extendertest.Pod("ns", "p", 2, v1alpha1.AnnotationGDR, "required"), "dgx-a", "pcie-a")
	if got := *res.NodeNames; len(got) != 1 || got[0] != "dgx-a" {
		t.Errorf("passing nodes = %v, want [dgx-a]", got)
	}
	if why := res.FailedAndUnresolvableNodes["pcie-a"]; !strings.Contains(why, "needs GPUDirect RDMA for 2 GPUs (topolane.io/gdr: required): only 0 of 4 GPUs") {
		t.Errorf("pcie-a reason = %q", why)
	}
}

func TestFilterBadInput(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	for key, value := range map[string]string{v1alpha1.AnnotationNIC: "whole", v1alpha1.AnnotationNICs: "all", v1alpha1.AnnotationGDR: "yes"} {
		res := c.filter(extendertest.Pod("ns", "p", 2, key, value), "dgx-a")
		if why := res.FailedAndUnresolvableNodes["dgx-a"]; !strings.Contains(why, key+` is "`+value+`"`) {
			t.Errorf("bad %s: %q", key, why)
		}
	}
	names := []string{"dgx-a"}
	if _, err := c.ext.Filter(&extenderv1.ExtenderArgs{NodeNames: &names}); !errors.Is(err, scheduler.ErrBadRequest) {
		t.Errorf("no pod: %v", err)
	}
}

// TestUnknownNodeIsOneFailedNode: a node the extender has not heard of yet (its Node event is
// still on the way) fails alone, with a reason; the others are decided as usual.
func TestUnknownNodeIsOneFailedNode(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	pod := extendertest.Pod("ns", "p", 2)
	res := c.filter(pod, "dgx-a", "new-node")
	if got := *res.NodeNames; len(got) != 1 || got[0] != "dgx-a" {
		t.Errorf("passing = %v", got)
	}
	if why := res.FailedNodes["new-node"]; !strings.Contains(why, `node "new-node" is unknown to topolane`) {
		t.Errorf("new-node: %q (unresolvable: %q)", why, res.FailedAndUnresolvableNodes["new-node"])
	}
	if s := c.scores(pod, "dgx-a", "new-node"); s["new-node"] != 0 || s["dgx-a"] == 0 {
		t.Errorf("scores %v: want the unknown node 0", s)
	}
}

// sharedPCIe gives each of pcie-a's two NICs a share in use by a pod on one of its GPUs: no PF
// can go whole, and 2 GPUs, one per rail, are free with shares left.
func (c *cluster) sharedPCIe() {
	c.attach("pcie-a", topologytest.PCIeServerOneNIC(),
		v1alpha1.Attachment{Pod: "ns/a", PodUID: "a", Kind: placement.KindVF, NIC: "0000:18:00.0", Device: "0000:18:00.2", Rail: 0, GPUs: []string{"0000:17:00.0"}},
		v1alpha1.Attachment{Pod: "ns/c", PodUID: "c", Kind: placement.KindMacvlan, NIC: "0000:b2:00.0", Device: "0000:b2:00.0", Rail: 1, GPUs: []string{"0000:b1:00.0"}})
	for _, uid := range []string{"a", "c"} {
		p := extendertest.Pod("ns", uid, 1)
		p.UID, p.Spec.NodeName = types.UID(uid), "pcie-a"
		c.store.SetPod(p)
	}
}

// TestFallbackVF: under fallback-vf a pod that needs whole PFs nowhere free is filtered,
// scored and bound as a pod of shares, all three alike.
func TestFallbackVF(t *testing.T) {
	for _, tt := range []struct {
		policy scheduler.NoPFPolicy
		pass   bool
	}{{scheduler.NoPFReject, false}, {scheduler.NoPFFallbackVF, true}} {
		c := newCluster(t, scheduler.Config{NoPF: tt.policy})
		c.sharedPCIe()
		pod := c.add(extendertest.Pod("ns", "rest", 2))
		res := c.filter(pod, "pcie-a")
		if got := len(*res.NodeNames) == 1; got != tt.pass {
			t.Errorf("%s: passes = %v, want %v (%+v)", tt.policy, got, tt.pass, res)
		}
		score := c.scores(pod, "pcie-a")["pcie-a"]
		err := c.bind(pod, "pcie-a")
		if !tt.pass {
			if score != 0 || !errors.Is(err, scheduler.ErrConflict) {
				t.Errorf("%s: score %d, bind err %v: want 0 and a conflict", tt.policy, score, err)
			}
			continue
		}
		if score == 0 || err != nil {
			t.Fatalf("%s: score %d, bind %v: want scored as it was filtered, and bound", tt.policy, score, err)
		}
		a := allocation(t, c, pod)
		if len(a.Devices) != 2 || a.Devices[0].Device != "0000:18:00.3" || a.Devices[1].Kind != placement.KindMacvlan {
			t.Errorf("%s: allocation %+v, want the free VF of rail 0 and a macvlan on rail 1", tt.policy, a)
		}
	}
}

func TestPrioritize(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	first := c.add(extendertest.Pod("ns", "small-1", 2))
	if err := c.bind(first, "dgx-a"); err != nil {
		t.Fatal(err)
	}
	score := c.scores(extendertest.Pod("ns", "small-2", 2), "dgx-a", "dgx-b", "pcie-a", "bare")
	// dgx-a has 6 GPUs free, a closer fit than dgx-b's 8.
	if !(score["dgx-a"] > score["dgx-b"]) || score["bare"] != 0 {
		t.Errorf("scores %v: want dgx-a above dgx-b, bare 0", score)
	}
	// The PCIe server is no GPUDirect RDMA node: below a DGX, and the same without GDR.
	if !(score["dgx-b"] > score["pcie-a"]) {
		t.Errorf("scores %v: want dgx-b above pcie-a", score)
	}
	for _, s := range c.scores(extendertest.Pod("ns", "web", 0), "dgx-a", "bare") {
		if s != 0 {
			t.Error("a pod without GPUs should score 0 everywhere")
		}
	}
}

// TestFilterAnswersFollowTheNode: a pending pod is filtered again and again; the store keeps
// each node's answer and the reason it was refused, and both must follow the node's changes.
func TestFilterAnswersFollowTheNode(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	train := extendertest.Pod("ns", "train", 8)
	reason := func() string {
		t.Helper()
		res := c.filter(train, "dgx-a")
		if len(*res.NodeNames) == 1 {
			return ""
		}
		return res.FailedNodes["dgx-a"] + res.FailedAndUnresolvableNodes["dgx-a"]
	}
	if r := reason(); r != "" {
		t.Fatalf("an empty DGX refuses a full-node pod: %s", r)
	}
	small := extendertest.Pod("ns", "small", 1)
	small.UID, small.Spec.NodeName = "small", "dgx-a"
	c.store.SetPod(small)
	busy := reason()
	if busy == "" || reason() != busy {
		t.Fatalf("with a GPU held, the full-node pod is refused twice alike: %q, %q", busy, reason())
	}
	c.store.DeletePod(small.UID)
	if r := reason(); r != "" {
		t.Fatalf("after the holder went, the node still refuses: %s", r)
	}
	c.store.SetNode(extendertest.Node("dgx-a", 6)) // two GPUs kept back from the node
	if r := reason(); r == "" || r == busy {
		t.Errorf("with 6 GPUs offered, the reason should say so, not the old reason %q: %q", busy, r)
	}
}
