package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/topolane/topolane/extender/extendertest"
	extscheduler "github.com/topolane/topolane/extender/internal/scheduler"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
	"github.com/topolane/topolane/topology/topologytest"
)

const (
	schedA  = "topolane-scheduler"
	schedB  = "topolane-scheduler-b"
	timeout = 30 * time.Second
)

func defaults() extscheduler.Config {
	return extscheduler.Config{Weights: placement.DefaultWeights, NoPF: extscheduler.NoPFReject}
}

func TestFullNodePodLandsOnlyWhereAPFIsFree(t *testing.T) {
	h := newHarness(t, defaults())
	h.addNode(extendertest.EveryPFShared("dgx-shared"))
	h.addNode(extendertest.Topology("dgx-free", topologytest.DGXH100()))
	h.addNode(extendertest.Topology("pcie", topologytest.PCIeServer()))
	h.startExtender()
	h.startScheduler(schedA)
	h.createPod("train-0", 8, schedA)
	node, a := h.waitBound("train-0", timeout)
	if node != "dgx-free" || a.Kind != placement.KindPF || a.Node != "dgx-free" {
		t.Errorf("bound to %s with %+v, want a whole PF on dgx-free", node, a)
	}
}

func TestFullNodePodWaitsWithItsReason(t *testing.T) {
	h := newHarness(t, defaults())
	h.addNode(extendertest.EveryPFShared("dgx-shared"))
	h.startExtender()
	h.startScheduler(schedA)
	h.createPod("train-0", 8, schedA)
	events := h.staysPending("train-0", 3*time.Second)
	if !strings.Contains(events, "needs a free PF for 8/8 GPUs: 0 of 8 PFs free") {
		t.Errorf("the pod's events should say why it waits:\n%s", events)
	}
}

func TestSmallPodLeavesTheLastWholePFAlone(t *testing.T) {
	h := newHarness(t, defaults())
	dgx := extendertest.Topology("dgx", topologytest.DGXH100(),
		v1alpha1.Attachment{Pod: "other/x", PodUID: "x", Kind: placement.KindVF, NIC: "0000:1a:00.0", Device: "0000:1a:00.2"})
	h.addNode(dgx)
	h.addNode(extendertest.Topology("small", topologytest.NoSRIOV())) // one whole NIC, no SR-IOV
	h.startExtender()
	h.startScheduler(schedA)
	h.createPod("one-gpu", 1, schedA)
	node, a := h.waitBound("one-gpu", timeout)
	if node != "dgx" || a.Kind != placement.KindVF || a.NIC != "0000:1a:00.0" {
		t.Errorf("bound to %s with %+v, want a VF of the already shared NIC on dgx", node, a)
	}
}

func TestTwoSchedulersRaceForOnePF(t *testing.T) {
	h := newHarness(t, defaults())
	h.addNode(extendertest.Topology("dgx-1", topologytest.DGXH100()))
	h.startExtender()
	h.startScheduler(schedA)
	h.startScheduler(schedB)
	h.createPod("a", 8, schedA)
	h.createPod("b", 8, schedB)
	deadline := time.Now().Add(timeout)
	for len(h.allocations()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // both have had their turn: the loser has been turned away by now
	bound := h.allocations()
	if len(bound) != 1 {
		t.Fatalf("%d pods bound to the one node, want exactly 1: %v", len(bound), bound)
	}
	loser := "a"
	if _, won := bound["b"]; !won {
		loser = "b"
	}
	if events := h.events(loser); !strings.Contains(events, "topolane") {
		t.Errorf("the loser's events should carry topolane's reason:\n%s", events)
	}
	h.addNode(extendertest.Topology("dgx-2", topologytest.DGXH100()))
	if node, _ := h.waitBound(loser, timeout); node != "dgx-2" {
		t.Errorf("the loser landed on %s, want dgx-2 once it appeared", node)
	}
}

// TestExtenderRestartGivesNothingTwice restarts the extender between two waves of pods: the
// fresh extender rebuilds its ledger from the pods' allocations and gives no device twice.
func TestExtenderRestartGivesNothingTwice(t *testing.T) {
	h := newHarness(t, defaults())
	h.addNode(extendertest.Topology("dgx-1", topologytest.DGXH100()))
	h.addNode(extendertest.Topology("dgx-2", topologytest.DGXH100()))
	h.startExtender()
	h.startScheduler(schedA)
	for i := range 4 {
		h.createPod(fmt.Sprintf("p%d", i), 2, schedA)
		h.waitBound(fmt.Sprintf("p%d", i), timeout)
	}
	h.stopExtender()
	for i := 4; i < 8; i++ {
		h.createPod(fmt.Sprintf("p%d", i), 2, schedA)
	}
	time.Sleep(500 * time.Millisecond) // the scheduler meets a dead extender and backs off
	h.startExtender()
	for i := 4; i < 8; i++ {
		h.waitBound(fmt.Sprintf("p%d", i), timeout)
	}
	checkNoDeviceTwice(t, h.allocations())
}

// checkNoDeviceTwice: every PF and VF has one holder, and no NIC is held whole and shared.
func checkNoDeviceTwice(t *testing.T, allocs map[string]v1alpha1.Allocation) {
	t.Helper()
	holder := map[string]string{}
	whole, shared := map[string]bool{}, map[string]bool{}
	for pod, a := range allocs {
		key := a.Node + "/" + a.Device
		if prev, taken := holder[key]; taken && a.Kind != placement.KindMacvlan {
			t.Errorf("%s given to both %s and %s", key, prev, pod)
		}
		holder[key] = pod
		nic := a.Node + "/" + a.NIC
		if a.Kind == placement.KindPF {
			whole[nic] = true
		} else {
			shared[nic] = true
		}
	}
	for nic := range whole {
		if shared[nic] {
			t.Errorf("%s is held whole and shared at once: %v", nic, allocs)
		}
	}
	if len(allocs) != 8 {
		t.Errorf("%d pods hold devices, want 8", len(allocs))
	}
}
