package scheduler_test

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/extender/internal/scheduler"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
	"github.com/topolane/topolane/topology/topologytest"
)

func withPriority(p *corev1.Pod, prio int32) *corev1.Pod {
	p.Spec.Priority = &prio
	return p
}

// lowHolders puts two 1-GPU pods of priority prio on pcie-a (one NIC per socket, two GPUs per
// rail): a on GPU0 with a VF of rail 0, b on GPU2 with a macvlan on rail 1.
func (c *cluster) lowHolders(prio int32) {
	c.attach("pcie-a", topologytest.PCIeServerOneNIC(),
		v1alpha1.Attachment{Pod: "ns/a", PodUID: "a", Kind: placement.KindVF, NIC: "0000:18:00.0", Device: "0000:18:00.2", Rail: 0, GPUs: []string{"0000:17:00.0"}},
		v1alpha1.Attachment{Pod: "ns/b", PodUID: "b", Kind: placement.KindMacvlan, NIC: "0000:b2:00.0", Device: "0000:b2:00.0", Rail: 1, GPUs: []string{"0000:b1:00.0"}})
	for _, uid := range []string{"a", "b"} {
		p := withPriority(extendertest.Pod("ns", uid, 1), prio)
		p.UID, p.Spec.NodeName = types.UID(uid), "pcie-a"
		c.store.SetPod(p)
	}
}

func victims(uids ...string) *extenderv1.MetaVictims {
	v := &extenderv1.MetaVictims{}
	for _, u := range uids {
		v.Pods = append(v.Pods, &extenderv1.MetaPod{UID: u})
	}
	return v
}

func uidsOf(v *extenderv1.MetaVictims) []string {
	if v == nil {
		return nil
	}
	var out []string
	for _, p := range v.Pods {
		out = append(out, p.UID)
	}
	slices.Sort(out)
	return out
}

func TestPreempt(t *testing.T) {
	tests := []struct {
		name       string
		holders    int32 // the low pods' priority
		pod        *corev1.Pod
		given      *extenderv1.MetaVictims
		want       []string
		wantNoNode bool
	}{
		// The scheduler frees a GPU by evicting b; the 3 free GPUs then need rail 0's PF whole,
		// which a's VF breaks: a is added.
		{name: "adds the holder of the blocking VF", holders: 1, pod: withPriority(extendertest.Pod("ns", "high", 3), 100),
			given: victims("b"), want: []string{"a", "b"}},
		{name: "keeps victims that free enough", holders: 1, pod: withPriority(extendertest.Pod("ns", "high", 3), 100),
			given: victims("a", "b"), want: []string{"a", "b"}},
		{name: "equal priority: nothing more to evict, the node goes", holders: 100, pod: withPriority(extendertest.Pod("ns", "high", 3), 100),
			given: victims("b"), wantNoNode: true},
		{name: "no victims and none needed: never a node without victims", holders: 1, pod: withPriority(extendertest.Pod("ns", "one", 1), 100),
			given: victims(), wantNoNode: true},
		{name: "a pod topolane leaves alone keeps the scheduler's victims", holders: 1,
			pod: withPriority(extendertest.Pod("ns", "none", 3, v1alpha1.AnnotationNIC, "none"), 100), given: victims("b"), want: []string{"b"}},
	}
	for _, tt := range tests {
		c := newCluster(t, scheduler.Config{})
		c.lowHolders(tt.holders)
		res, err := c.ext.Preempt(&extenderv1.ExtenderPreemptionArgs{Pod: tt.pod, NodeNameToMetaVictims: map[string]*extenderv1.MetaVictims{"pcie-a": tt.given}})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got, ok := res.NodeNameToMetaVictims["pcie-a"]
		switch {
		case tt.wantNoNode && ok:
			t.Errorf("%s: node kept with victims %v", tt.name, uidsOf(got))
		case !tt.wantNoNode && !slices.Equal(uidsOf(got), tt.want):
			t.Errorf("%s: victims %v, want %v", tt.name, uidsOf(got), tt.want)
		}
	}
}

// TestPreemptFullVictims: the scheduler sends whole pods when it is not nodeCacheCapable.
func TestPreemptFullVictims(t *testing.T) {
	c := newCluster(t, scheduler.Config{})
	c.lowHolders(1)
	b := extendertest.Pod("ns", "b", 1)
	b.UID = "b"
	res, err := c.ext.Preempt(&extenderv1.ExtenderPreemptionArgs{Pod: withPriority(extendertest.Pod("ns", "high", 3), 100),
		NodeNameToVictims: map[string]*extenderv1.Victims{"pcie-a": {Pods: []*corev1.Pod{b}}}})
	if err != nil || !slices.Equal(uidsOf(res.NodeNameToMetaVictims["pcie-a"]), []string{"a", "b"}) {
		t.Errorf("victims %v, %v", res, err)
	}
}
