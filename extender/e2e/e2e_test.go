package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/topolane/topolane/extender/embedded"
	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
	"github.com/topolane/topolane/topology/topologytest"
)

const (
	schedA  = "topolane-scheduler"
	schedB  = "topolane-scheduler-b"
	timeout = 30 * time.Second
)

func defaults() embedded.Config {
	return embedded.Config{NoPF: embedded.NoPFReject, SchedulerNames: []string{schedA, schedB}}
}

// TestFullNodePodGetsThePFOfEveryRail: an 8-GPU pod lands where all 8 rails' PFs are free and
// reserves all 8.
func TestFullNodePodGetsThePFOfEveryRail(t *testing.T) {
	h := newHarness(t, defaults())
	h.addNode(extendertest.EveryPFShared("dgx-shared"))
	h.addNode(extendertest.Topology("dgx-free", topologytest.DGXH100()))
	h.addNode(extendertest.Topology("pcie", topologytest.PCIeServer()))
	h.startExtender()
	h.startScheduler(schedA)
	h.createPod("train-0", 8, schedA)
	node, a := h.waitBound("train-0", timeout)
	if node != "dgx-free" || a.Node != "dgx-free" || len(a.Devices) != 8 {
		t.Fatalf("bound to %s with %v, want the 8 PFs of dgx-free", node, a)
	}
	for i, d := range a.Devices {
		if d.Kind != placement.KindPF || d.Rail != i {
			t.Errorf("device %d = %+v, want rail %d's PF", i, d, i)
		}
	}
}

// TestNodeWithOneRailBrokenIsRefusedWithItsReason: the pod waits, and its events name the rail
// whose PF has a VF in use.
func TestNodeWithOneRailBrokenIsRefusedWithItsReason(t *testing.T) {
	h := newHarness(t, defaults())
	h.addNode(extendertest.Topology("dgx", topologytest.DGXH100(),
		v1alpha1.Attachment{Pod: "other/x", PodUID: "x", Kind: placement.KindVF, NIC: "0000:1a:00.0", Device: "0000:1a:00.2", Rail: 0}))
	h.startExtender()
	h.startScheduler(schedA)
	h.createPod("train-0", 8, schedA)
	events := h.staysPending("train-0", 3*time.Second)
	if !strings.Contains(events, "needs the whole PF of 8 rails for 8/8 GPUs: rail 0 (0000:1a:00.0 has 1 VF in use by other/x)") {
		t.Errorf("the pod's events should say which rail blocks it:\n%s", events)
	}
}

func TestSmallPodTakesAShareOfAnAlreadySharedRail(t *testing.T) {
	h := newHarness(t, defaults())
	h.addNode(extendertest.Topology("dgx", topologytest.DGXH100(),
		v1alpha1.Attachment{Pod: "other/x", PodUID: "x", Kind: placement.KindVF, NIC: "0000:1a:00.0", Device: "0000:1a:00.2", Rail: 0}))
	h.addNode(extendertest.Topology("small", topologytest.NoSRIOV())) // one NIC for two GPUs
	h.startExtender()
	h.startScheduler(schedA)
	h.createPod("one-gpu", 1, schedA)
	node, a := h.waitBound("one-gpu", timeout)
	if node != "dgx" || len(a.Devices) != 1 || a.Devices[0].Kind != placement.KindVF || a.Devices[0].NIC != "0000:1a:00.0" {
		t.Errorf("bound to %s with %v, want a VF of the already shared rail 0 on dgx", node, a)
	}
}

func TestTwoSchedulersRaceForOneNode(t *testing.T) {
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
	if len(h.allocations()) != 8 {
		t.Errorf("%d pods hold devices, want 8", len(h.allocations()))
	}
	if wrong := extendertest.DevicesHeldTwice(h.pods()); len(wrong) > 0 {
		t.Errorf("devices held twice: %v", wrong)
	}
}
