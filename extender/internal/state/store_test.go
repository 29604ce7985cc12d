package state_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/extender/internal/state"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
	"github.com/topolane/topolane/topology/topologytest"
)

// problems records what the store reports.
type problems struct {
	mu  sync.Mutex
	got []string
}

func (p *problems) Problem(node string, pr placement.Problem) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, node+": "+pr.Message+" ["+strings.Join(pr.Pods, ",")+"]")
}

func dgxStore(r state.Reporter) *state.Store {
	s := state.New(state.DefaultGPUResources, placement.DefaultWeights, r)
	s.SetNode(extendertest.Node("dgx", 8))
	s.SetTopology("dgx", extendertest.Topology("dgx", topologytest.DGXH100()), nil)
	return s
}

func bound(p *corev1.Pod, node string) *corev1.Pod {
	p.Spec.NodeName = node
	return p
}

// pfOn is an allocation of one whole PF on node dgx for the pod.
func pfOn(pod *corev1.Pod, nic string) v1alpha1.Allocation {
	return v1alpha1.Allocation{Node: "dgx", PodUID: pod.UID, Devices: []v1alpha1.Device{{Rail: 1, Kind: placement.KindPF, NIC: nic, Device: nic}}}
}

func withAllocation(p *corev1.Pod, a v1alpha1.Allocation) *corev1.Pod {
	p.Annotations[v1alpha1.AnnotationAllocation] = a.String()
	return p
}

func TestPodsCountWhereTheyAre(t *testing.T) {
	s := dgxStore(nil)
	s.SetPod(bound(extendertest.Pod("ns", "a", 2), "dgx"))
	reserved := extendertest.Pod("ns", "reserved", 1)
	s.SetPod(withAllocation(reserved, pfOn(reserved, "0000:42:00.0"))) // reserved, not yet bound
	s.SetPod(extendertest.Pod("ns", "pending", 4))                     // placed nowhere yet
	d, _ := s.DebugNode("dgx")
	if d.GPUsFree != 5 || d.PFsFree != 7 || len(d.Pods) != 2 {
		t.Errorf("free GPUs %d, PFs %d, pods %d; want 5, 7, 2", d.GPUsFree, d.PFsFree, len(d.Pods))
	}
	done := bound(extendertest.Pod("ns", "a", 2), "dgx")
	done.Status.Phase = corev1.PodSucceeded
	s.SetPod(done)
	s.DeletePod(reserved.UID)
	if d, _ := s.DebugNode("dgx"); d.GPUsFree != 8 || d.PFsFree != 8 {
		t.Errorf("after the pods finished or went: %d GPUs, %d PFs free", d.GPUsFree, d.PFsFree)
	}
}

func TestAgentReportOverridesReservation(t *testing.T) {
	s := dgxStore(nil)
	pod := extendertest.Pod("ns", "a", 1)
	s.SetPod(bound(withAllocation(pod, pfOn(pod, "0000:42:00.0")), "dgx"))
	// The agent bound the PF of the rail of the GPU kubelet gave: 0000:1a:00.0.
	att := v1alpha1.Attachment{Pod: "ns/a", PodUID: pod.UID, Kind: placement.KindPF, NIC: "0000:1a:00.0", Device: "0000:1a:00.0", Rail: 0,
		GPUs: []string{"0000:1b:00.0"}}
	s.SetTopology("dgx", extendertest.Topology("dgx", topologytest.DGXH100(), att), nil)
	d, _ := s.DebugNode("dgx")
	if len(d.Held) != 1 || d.Held[0].NIC != "0000:1a:00.0" {
		t.Errorf("held = %+v, want only the agent's report", d.Held)
	}
	if !d.Rails[1].PFFree || d.Rails[0].PFFree || d.Rails[0].FreeGPUs != 0 {
		t.Errorf("rails = %+v: want rail 0 given with its GPU, rail 1 free again", d.Rails[:2])
	}
}

func TestNodeOfferingFewerGPUsThanFound(t *testing.T) {
	s := dgxStore(nil)
	s.SetNode(extendertest.Node("dgx", 6)) // two GPUs unhealthy: the device plugin offers 6
	if d, _ := s.DebugNode("dgx"); d.GPUsFree != 6 {
		t.Errorf("free GPUs = %d, want 6", d.GPUsFree)
	}
}

func TestNodeWithoutTopology(t *testing.T) {
	s := state.New(state.DefaultGPUResources, placement.DefaultWeights, nil)
	s.SetNode(extendertest.Node("n", 8))
	if v := s.Node("n"); !v.Known || v.Summary != nil || !strings.Contains(v.Problem, "no NodeTopology") {
		t.Errorf("a node without NodeTopology: %+v", v)
	}
	s.DeleteNode("n")
	if v := s.Node("n"); v.Known {
		t.Error("a deleted node should be unknown")
	}
}

// TestStaleEventKeepsReservation: after a bind reserved devices, the pod informer may still
// deliver the pod as it was when the bind read it (a late ADD, a resync), or as something else
// wrote it before the Binding (a label): the devices stay taken. The reservation ends when the
// informer shows the pod bound.
func TestStaleEventKeepsReservation(t *testing.T) {
	s := dgxStore(nil)
	pod := extendertest.Pod("ns", "a", 8)
	pod.ResourceVersion = "5"
	s.SetPod(pod)
	var devices []v1alpha1.Device
	for i, nic := range []string{"0000:1a:00.0", "0000:42:00.0"} {
		devices = append(devices, v1alpha1.Device{Rail: i, Kind: placement.KindPF, NIC: nic, Device: nic})
	}
	a := v1alpha1.Allocation{Node: "dgx", PodUID: pod.UID, Devices: devices}
	s.Reserve(state.Reservation{UID: pod.UID, Pod: "ns/a", GPUs: 8, Allocation: a, ResourceVersion: "5"})
	stale := pod.DeepCopy() // the informer's view as the bind read it
	labelled := pod.DeepCopy()
	labelled.ResourceVersion, labelled.Labels = "6", map[string]string{"team": "vision"}
	for _, p := range []*corev1.Pod{stale, labelled} {
		s.SetPod(p)
		if d, _ := s.DebugNode("dgx"); d.GPUsFree != 0 || d.PFsFree != 6 || len(d.Assumed) != 1 {
			t.Fatalf("after the pending pod at version %s: %d GPUs, %d PFs free, assumed %v; want 0, 6, the reservation", p.ResourceVersion, d.GPUsFree, d.PFsFree, d.Assumed)
		}
	}
	seen := withAllocation(labelled.DeepCopy(), a)
	seen.ResourceVersion, seen.Spec.NodeName = "7", "dgx"
	s.SetPod(seen)
	if d, _ := s.DebugNode("dgx"); d.GPUsFree != 0 || d.PFsFree != 6 || len(d.Assumed) != 0 {
		t.Errorf("once the informer shows it: %d GPUs, %d PFs free, assumed %v; want 0, 6, none", d.GPUsFree, d.PFsFree, d.Assumed)
	}
	s.SetPod(stale) // an older version than the store has: ignored
	if d, _ := s.DebugNode("dgx"); d.PFsFree != 6 {
		t.Errorf("a stale event after the confirmation freed PFs: %d free", d.PFsFree)
	}
}

// TestReservationEndsWhenAnotherBinderBoundThePod: the pod shows up bound without the
// reservation's allocation (another bind of the pod, or another binder won): the reservation
// holds nothing any more.
func TestReservationEndsWhenAnotherBinderBoundThePod(t *testing.T) {
	s := dgxStore(nil)
	pod := extendertest.Pod("ns", "a", 8)
	pod.ResourceVersion = "5"
	s.SetPod(pod)
	pf := v1alpha1.Device{Kind: placement.KindPF, NIC: "0000:1a:00.0", Device: "0000:1a:00.0"}
	s.Reserve(state.Reservation{UID: pod.UID, Pod: "ns/a", GPUs: 8, Allocation: v1alpha1.Allocation{Node: "dgx", PodUID: pod.UID, Devices: []v1alpha1.Device{pf}}, ResourceVersion: "5"})
	elsewhere := pod.DeepCopy()
	elsewhere.ResourceVersion, elsewhere.Spec.NodeName = "6", "other"
	s.SetPod(elsewhere)
	if d, _ := s.DebugNode("dgx"); d.GPUsFree != 8 || d.PFsFree != 8 || len(d.Assumed) != 0 {
		t.Errorf("dgx after the pod was bound elsewhere: %d GPUs, %d PFs free, assumed %v; want 8, 8, none", d.GPUsFree, d.PFsFree, d.Assumed)
	}
}

// TestForgedAllocationIgnored: an allocation copied from another pod (kubectl get -o yaml) or
// naming a device the node lacks counts for nothing, is reported, and never blocks other pods.
func TestForgedAllocationIgnored(t *testing.T) {
	var r problems
	s := dgxStore(&r)
	victim := extendertest.Pod("ns", "running", 1)
	copied := extendertest.Pod("ns", "copy", 0)
	s.SetPod(bound(withAllocation(copied, pfOn(victim, "0000:42:00.0")), "dgx"))
	ghost := extendertest.Pod("ns", "ghost", 0)
	s.SetPod(bound(withAllocation(ghost, pfOn(ghost, "0000:ee:00.0")), "dgx"))
	d, _ := s.DebugNode("dgx")
	if d.PFsFree != 8 {
		t.Errorf("PFs free = %d, want 8: neither allocation counts", d.PFsFree)
	}
	want := []string{
		"dgx: pod ns/copy carries an allocation of pod UID uid-ns-running, not its own (uid-ns-copy; copied from another pod?): ignored [ns/copy]",
		"dgx: pod ns/ghost holds NIC 0000:ee:00.0, which node dgx does not offer (no such NIC): ignored [ns/ghost]",
	}
	if strings.Join(r.got, "\n") != strings.Join(want, "\n") {
		t.Errorf("reported:\n%s\nwant:\n%s", strings.Join(r.got, "\n"), strings.Join(want, "\n"))
	}
	if len(d.Problems) != 2 {
		t.Errorf("/debug problems = %v, want both", d.Problems)
	}
	s.SetPod(extendertest.Pod("ns", "other", 1)) // an event elsewhere does not report them again
	s.SetNode(extendertest.Node("dgx", 8))
	if len(r.got) != 2 {
		t.Errorf("problems reported again: %v", r.got)
	}
}

// TestTwoHoldersOfOneDevice: both kept, the device counted as taken, the problem reported.
func TestTwoHoldersOfOneDevice(t *testing.T) {
	var r problems
	s := dgxStore(&r)
	vf := func(p *corev1.Pod) v1alpha1.Allocation {
		return v1alpha1.Allocation{Node: "dgx", PodUID: p.UID, Devices: []v1alpha1.Device{{Rail: 0, Kind: placement.KindVF, NIC: "0000:1a:00.0", Device: "0000:1a:00.2"}}}
	}
	a, b := extendertest.Pod("ns", "a", 1), extendertest.Pod("ns", "b", 1)
	s.SetPod(bound(withAllocation(a, vf(a)), "dgx"))
	s.SetPod(bound(withAllocation(b, vf(b)), "dgx"))
	d, _ := s.DebugNode("dgx")
	if d.VFsFree != 3 || d.GPUsFree != 6 || len(d.Pods) != 2 {
		t.Errorf("VFs free %d, GPUs free %d, pods %d: want 3, 6, 2", d.VFsFree, d.GPUsFree, len(d.Pods))
	}
	if len(r.got) != 1 || !strings.Contains(r.got[0], "VF 0000:1a:00.2 is held by both") || !strings.Contains(r.got[0], "[ns/a,ns/b]") && !strings.Contains(r.got[0], "[ns/b,ns/a]") {
		t.Errorf("reported %v", r.got)
	}
}

func TestNodeWithoutPods(t *testing.T) {
	s := dgxStore(nil)
	a := extendertest.Pod("ns", "a", 8)
	s.SetPod(bound(withAllocation(a, pfOn(a, "0000:42:00.0")), "dgx"))
	if v := s.NodeWithout("dgx", a.UID); v.Summary.GPUsFree != 8 || v.Summary.FreePFs() != 8 {
		t.Errorf("without the pod: %d GPUs, %d PFs free", v.Summary.GPUsFree, v.Summary.FreePFs())
	}
	if v := s.Node("dgx"); v.Summary.GPUsFree != 0 {
		t.Error("NodeWithout changed the node")
	}
	if got := s.ReservedFor(a.UID); got != "dgx" {
		t.Errorf("ReservedFor = %q", got)
	}
	if h := s.Holders("dgx"); len(h) != 1 || h[0].Pod != "ns/a" || h[0].GPUs != 8 {
		t.Errorf("holders %+v", h)
	}
}

func TestPodInfoKeepsWhatCounts(t *testing.T) {
	a := v1alpha1.Allocation{Node: "dgx", PodUID: "u", Devices: []v1alpha1.Device{{Kind: placement.KindVF, NIC: "0000:1a:00.0", Device: "0000:1a:00.2"}}}
	pod := bound(extendertest.Pod("ns", "a", 3, v1alpha1.AnnotationAllocation, a.String(), "other", "x"), "dgx")
	pod.Spec.InitContainers = []corev1.Container{{Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{extendertest.GPU: resource.MustParse("5")}}}}
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "sidecar", Image: "busybox"})
	prio := int32(1000)
	pod.Spec.Priority = &prio
	pod.Status.Phase = corev1.PodRunning
	out, _ := state.New(state.DefaultGPUResources, placement.DefaultWeights, nil).TransformPod(pod)
	info := out.(*state.PodInfo)
	if info.GPUs != 5 || info.NodeName != "dgx" || info.UID != pod.UID || info.Finished || info.Priority != 1000 ||
		info.Annotations[v1alpha1.AnnotationAllocation] != a.String() || len(info.Annotations) != 1 {
		t.Errorf("pod info lost or kept the wrong things: %+v", info)
	}
	if c := info.DeepCopyObject().(*state.PodInfo); c.Annotations[v1alpha1.AnnotationAllocation] != a.String() {
		t.Error("deep copy lost the annotation")
	}
}

// TestNodeHeartbeatKeepsTheSummary: kubelet updates every Node's status every few seconds; an
// update that leaves the GPUs as they were changes nothing the store decides with, so the node's
// summary is not built again (5,000 nodes would rebuild hundreds a second).
func TestNodeHeartbeatKeepsTheSummary(t *testing.T) {
	s := dgxStore(nil)
	before := s.Node("dgx").Summary
	heartbeat := extendertest.Node("dgx", 8)
	heartbeat.ResourceVersion = "2"
	s.SetNode(heartbeat)
	if s.Node("dgx").Summary != before {
		t.Error("a Node update with the same GPUs rebuilt the summary")
	}
	s.SetNode(extendertest.Node("dgx", 4))
	if s.Node("dgx").Summary == before {
		t.Error("a Node update that changed its GPUs kept the old summary")
	}
}

// TestPassesWhileNodesChange runs passes of several shapes (each building its column) that
// keep reasons, while pods come and go and nodes are added and removed: for the race detector.
func TestPassesWhileNodesChange(t *testing.T) {
	s := dgxStore(nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	loop(&wg, stop, func(i int) {
		pod := bound(extendertest.Pod("ns", "p", 1+i%8), "dgx")
		s.SetPod(pod)
		name := fmt.Sprintf("n%d", i%50)
		s.SetNode(extendertest.Node(name, 8))
		s.SetTopology(name, extendertest.Topology(name, topologytest.DGXH100()), nil)
		s.DeletePod(pod.UID)
		if i%3 == 0 {
			s.DeleteNode(fmt.Sprintf("n%d", (i+25)%50))
		}
	})
	names := []string{"dgx", "n1", "n2", "n3", "n30", "unknown"}
	for g := range 2 {
		loop(&wg, stop, func(i int) {
			shape := placement.ShapeOf(placement.Request{GPUs: 1 + (g+i)%8})
			s.Pass(names, shape, "", func(_, score int) {
				if score < 0 || score > placement.MaxScore {
					t.Errorf("score %d", score)
				}
			}, func(i int, v state.View, memo *state.Memo) {
				if memo != nil && memo.Load() == nil {
					memo.Store(&state.Rejection{Reason: names[i]})
				}
			})
		})
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
}

// loop calls fn(0), fn(1), … in a goroutine of its own until stop is closed.
func loop(wg *sync.WaitGroup, stop <-chan struct{}, fn func(i int)) {
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
				fn(i)
			}
		}
	})
}
