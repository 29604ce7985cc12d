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

type cluster struct {
	t      *testing.T
	store  *state.Store
	client *fake.Clientset
	ext    *scheduler.Extender
}

// newCluster has dgx-a and dgx-b (DGX H100 fixtures), pcie-a (PCIe server), and bare, a GPU
// node without a NodeTopology.
func newCluster(t *testing.T, cfg scheduler.Config) *cluster {
	c := &cluster{t: t, store: state.New(state.DefaultGPUResources), client: fake.NewClientset()}
	extendertest.BindLikeTheAPIServer(c.client)
	for name, m := range map[string]topologytest.Machine{"dgx-a": topologytest.DGXH100(), "dgx-b": topologytest.DGXH100(), "pcie-a": topologytest.PCIeServer()} {
		c.store.SetNode(extendertest.Node(name, len(m.Node().GPUs)))
		c.store.SetTopology(name, extendertest.Topology(name, m), nil)
	}
	c.store.SetNode(extendertest.Node("bare", 8))
	if cfg.Weights == (placement.Weights{}) {
		cfg.Weights = placement.DefaultWeights
	}
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
	if current, getErr := c.client.CoreV1().Pods(pod.Namespace).Get(context.Background(), pod.Name, metav1.GetOptions{}); getErr == nil {
		c.store.SetPod(current)
	}
	return err
}

func (c *cluster) filter(pod *corev1.Pod, nodes ...string) *extenderv1.ExtenderFilterResult {
	c.t.Helper()
	res, err := c.ext.Filter(&extenderv1.ExtenderArgs{Pod: pod, NodeNames: &nodes})
	if err != nil {
		c.t.Fatal(err)
	}
	return res
}

func TestFilterNonGPUPodPassesUntouched(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	pod := extendertest.Pod("ns", "web", 0)
	res := c.filter(pod, "dgx-a", "bare")
	if len(*res.NodeNames) != 2 || len(res.FailedNodes) != 0 || len(res.FailedAndUnresolvableNodes) != 0 {
		t.Errorf("a pod without GPUs should pass every node: %+v", res)
	}
	nodes := &corev1.NodeList{Items: []corev1.Node{*extendertest.Node("dgx-a", 8), *extendertest.Node("bare", 8)}}
	full, err := c.ext.Filter(&extenderv1.ExtenderArgs{Pod: pod, Nodes: nodes})
	if err != nil || full.Nodes == nil || len(full.Nodes.Items) != 2 || full.NodeNames != nil {
		t.Errorf("full Node objects in, full Node objects out: %+v, %v", full, err)
	}
}

func TestFilterFullNodePodNeedsAFreePF(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	// dgx-a: every PF but NIC0 given away, and NIC0 has a VF in use.
	nt := extendertest.Topology("dgx-a", topologytest.DGXH100())
	for i, nic := range nt.Status.Topology.NICs {
		if !nic.RDMA() {
			continue
		}
		a := v1alpha1.Attachment{Pod: "ns/other", PodUID: types.UID("u" + nic.PCIAddress), Kind: placement.KindPF, NIC: nic.PCIAddress, Device: nic.PCIAddress}
		if nic.PCIAddress == "0000:1a:00.0" {
			a.Kind, a.Device = placement.KindVF, nt.Status.Topology.NICs[i].SRIOV.VFs[0].PCIAddress
		}
		nt.Status.Attachments = append(nt.Status.Attachments, a)
	}
	c.store.SetTopology("dgx-a", nt, nil)
	res := c.filter(extendertest.Pod("ns", "train", 8), "dgx-a", "dgx-b", "bare", "pcie-a")
	if got := *res.NodeNames; len(got) != 1 || got[0] != "dgx-b" {
		t.Errorf("passing nodes = %v, want [dgx-b]", got)
	}
	if why := res.FailedNodes["dgx-a"]; !strings.Contains(why, "needs a free PF for 8/8 GPUs: 0 of 8 PFs free (0000:1a:00.0 has 1 VFs in use; 0000:42:00.0 is given to ns/other") {
		t.Errorf("dgx-a reason = %q", why)
	}
	if why := res.FailedAndUnresolvableNodes["bare"]; !strings.Contains(why, "no NodeTopology") {
		t.Errorf("bare reason = %q", why)
	}
	if why := res.FailedAndUnresolvableNodes["pcie-a"]; !strings.Contains(why, "needs 8 GPUs: node has only 4") {
		t.Errorf("pcie-a reason = %q", why)
	}
}

func TestFilterBadInput(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	res := c.filter(extendertest.Pod("ns", "p", 2, v1alpha1.AnnotationNIC, "whole"), "dgx-a")
	if why := res.FailedAndUnresolvableNodes["dgx-a"]; !strings.Contains(why, `topolane.io/nic is "whole": want one of auto, pf, vf, none`) {
		t.Errorf("bad annotation: %q", why)
	}
	names := []string{"dgx-a", "ghost"}
	if _, err := c.ext.Filter(&extenderv1.ExtenderArgs{Pod: extendertest.Pod("ns", "p", 2), NodeNames: &names}); !errors.Is(err, scheduler.ErrBadRequest) || !strings.Contains(err.Error(), `node "ghost" is unknown`) {
		t.Errorf("unknown node: %v", err)
	}
	if _, err := c.ext.Filter(&extenderv1.ExtenderArgs{NodeNames: &names}); !errors.Is(err, scheduler.ErrBadRequest) {
		t.Errorf("no pod: %v", err)
	}
}

// sharedPCIe makes every PF of pcie-a carry a share: no PF can go whole, shares remain.
func (c *cluster) sharedPCIe() {
	nt := extendertest.Topology("pcie-a", topologytest.PCIeServer(),
		v1alpha1.Attachment{Pod: "ns/a", PodUID: "a", Kind: placement.KindVF, NIC: "0000:18:00.0", Device: "0000:18:00.2"},
		v1alpha1.Attachment{Pod: "ns/b", PodUID: "b", Kind: placement.KindMacvlan, NIC: "0000:18:00.1", Device: "0000:18:00.1"},
		v1alpha1.Attachment{Pod: "ns/c", PodUID: "c", Kind: placement.KindMacvlan, NIC: "0000:b2:00.0", Device: "0000:b2:00.0"},
		v1alpha1.Attachment{Pod: "ns/d", PodUID: "d", Kind: placement.KindMacvlan, NIC: "0000:b2:00.1", Device: "0000:b2:00.1"})
	c.store.SetTopology("pcie-a", nt, nil)
}

func TestFallbackVF(t *testing.T) {
	for _, tt := range []struct {
		policy   scheduler.NoPFPolicy
		pass     bool
		bindKind placement.Kind
	}{{scheduler.NoPFReject, false, ""}, {scheduler.NoPFFallbackVF, true, placement.KindVF}} {
		c := newCluster(t, scheduler.Config{NoPF: tt.policy})
		c.sharedPCIe()
		pod := c.add(extendertest.Pod("ns", "full", 4))
		res := c.filter(pod, "pcie-a")
		if got := len(*res.NodeNames) == 1; got != tt.pass {
			t.Errorf("%s: passes = %v, want %v (%+v)", tt.policy, got, tt.pass, res)
		}
		err := c.bind(pod, "pcie-a")
		if !tt.pass {
			if !errors.Is(err, scheduler.ErrConflict) {
				t.Errorf("%s: bind err = %v, want a conflict", tt.policy, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.policy, err)
		}
		if a := allocation(t, c, pod); a.Kind != tt.bindKind || a.Device != "0000:18:00.3" {
			t.Errorf("%s: allocation %+v, want the free VF 0000:18:00.3", tt.policy, a)
		}
	}
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

func TestPrioritize(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	first := c.add(extendertest.Pod("ns", "small-1", 2))
	if err := c.bind(first, "dgx-a"); err != nil {
		t.Fatal(err)
	}
	nodes := []string{"dgx-a", "dgx-b", "pcie-a", "bare"}
	list, err := c.ext.Prioritize(&extenderv1.ExtenderArgs{Pod: extendertest.Pod("ns", "small-2", 2), NodeNames: &nodes})
	if err != nil {
		t.Fatal(err)
	}
	score := map[string]int64{}
	for _, h := range *list {
		score[h.Host] = h.Score
	}
	// dgx-a already shares NIC0's VFs and has 6 GPUs free: better than breaking a whole PF on dgx-b.
	if !(score["dgx-a"] > score["dgx-b"]) || score["bare"] != 0 {
		t.Errorf("scores %v: want dgx-a above dgx-b, bare 0", score)
	}
	list, _ = c.ext.Prioritize(&extenderv1.ExtenderArgs{Pod: extendertest.Pod("ns", "web", 0), NodeNames: &nodes})
	for _, h := range *list {
		if h.Score != 0 {
			t.Errorf("a pod without GPUs should score 0 everywhere: %+v", *list)
		}
	}
}
