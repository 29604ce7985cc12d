package attach_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/topolane/topolane/nodeagent/internal/attach"
	"github.com/topolane/topolane/nodeagent/internal/attach/attachtest"
)

var ctx = context.Background()

var allGPUs = []int{0, 1, 2, 3, 4, 5, 6, 7}

// TestAddCheckDel round-trips through ADD, CHECK and DEL on the kernel: a pod of every GPU gets
// the 8 PFs of its 8 rails in one ADD, a pod of two GPUs a share on each of their rails, a pod
// with topolane.io/nics: one a single device.
func TestAddCheckDel(t *testing.T) {
	tests := []struct {
		name        string
		gpus        []int
		annotations map[string]string
		kinds       []string
		names       []string
	}{
		{"8 PFs", allGPUs, nil, repeat("pf", 8),
			[]string{"net1", "net1_1", "net1_2", "net1_3", "net1_4", "net1_5", "net1_6", "net1_7"}},
		{"a VF and a macvlan", []int{0, 1}, map[string]string{"topolane.io/allocation": reservation("p", "vf")},
			[]string{"vf", "macvlan"}, []string{"net1", "net1_1"}},
		{"one device", []int{0, 1}, map[string]string{"topolane.io/nics": "one", "topolane.io/nic": "vf"}, []string{"vf"}, []string{"net1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.AddPod("p", tt.gpus, tt.annotations)
			podNS := e.NewPodNS()
			before := e.Links(e.Fx.HostNS)
			q := e.Request("p", podNS)
			res, err := e.Att.Add(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, e, res, podNS.Path(), tt.names)
			checkAccel(t, e, tt.kinds, tt.names, len(tt.gpus))
			if err := e.Att.Check(ctx, q); err != nil {
				t.Errorf("CHECK after ADD: %v", err)
			}
			again, err := e.Att.Add(ctx, q)
			if err != nil || again.IPs[0].Address.String() != res.IPs[0].Address.String() {
				t.Errorf("a repeated ADD: %v %v", again, err)
			}
			if err := e.Att.Del(ctx, q); err != nil {
				t.Fatal(err)
			}
			if err := e.Att.Del(ctx, q); err != nil {
				t.Errorf("a repeated DEL: %v", err)
			}
			if after := e.Links(e.Fx.HostNS); !slices.Equal(before, after) {
				t.Errorf("host links after DEL:\nbefore %v\nafter  %v", before, after)
			}
			if left := e.Leftovers(); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// reservation is the extender's allocation of a device of kind for pod p.
func reservation(pod, kind string) string {
	return fmt.Sprintf(`{"node":"dgx","podUID":"uid-%s","devices":[{"rail":0,"kind":%q,"nic":"0000:1a:00.0","device":"0000:1a:00.2"}]}`, pod, kind)
}

// checkResult: every device is an interface in the pod, up, with its own address.
func checkResult(t *testing.T, e *attachtest.Env, res any, podNS string, names []string) {
	t.Helper()
	var r struct {
		Interfaces []struct{ Name, Sandbox, PciID string }
		IPs        []struct {
			Address   string
			Interface int
		}
	}
	data, _ := json.Marshal(res)
	_ = json.Unmarshal(data, &r)
	if len(r.Interfaces) != len(names) || len(r.IPs) != len(names) {
		t.Fatalf("result has %d interfaces and %d addresses, want %d each: %s", len(r.Interfaces), len(r.IPs), len(names), data)
	}
	seen := map[string]bool{}
	for i, ifc := range r.Interfaces {
		if ifc.Name != names[i] || ifc.Sandbox != podNS || ifc.PciID == "" || r.IPs[i].Interface != i || seen[r.IPs[i].Address] {
			t.Errorf("interface %d: %+v with %+v", i, ifc, r.IPs[i])
		}
		seen[r.IPs[i].Address] = true
	}
	h := e.Handle(podNS)
	defer h.Close()
	for _, n := range names {
		if l, err := h.LinkByName(n); err != nil || l.Attrs().Flags&1 == 0 {
			t.Errorf("%s in the pod: %v %v", n, l, err)
		}
	}
}

// checkAccel: accel.env lists every device in GPU order, with NCCL's exact-match prefix.
func checkAccel(t *testing.T, e *attachtest.Env, kinds, names []string, gpus int) {
	t.Helper()
	env, err := os.ReadFile(filepath.Join(e.Fx.Dir, "pods", "uid-p", "accel.env"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"TOPOLANE_MODE=" + kinds[0], "NCCL_SOCKET_IFNAME==" + strings.Join(names, ","), "TOPOLANE_INTERFACES=" + strings.Join(names, ",")}
	for _, w := range want {
		if !strings.Contains(string(env), w+"\n") {
			t.Errorf("accel.env lacks %q:\n%s", w, env)
		}
	}
	hcas := ""
	for _, line := range strings.Split(string(env), "\n") {
		if v, ok := strings.CutPrefix(line, "NCCL_IB_HCA=="); ok {
			hcas = v
		}
	}
	if list := strings.Split(hcas, ","); len(list) != len(names) || !strings.HasPrefix(list[0], "mlx5_") || !strings.HasSuffix(list[len(list)-1], ":1") {
		t.Errorf("accel.env NCCL_IB_HCA %q, want %d devices, each mlx5_*:1:\n%s", hcas, len(names), env)
	}
	if strings.Count(string(env), "_INTERFACE=") != gpus || !strings.Contains(string(env), "TOPOLANE_GPU0_LEVEL=") {
		t.Errorf("accel.env per GPU:\n%s", env)
	}
}

// TestCheckReportsDifferences breaks the attachment in two ways and expects CHECK to say both.
func TestCheckReportsDifferences(t *testing.T) {
	e := newEnv(t)
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
	podNS := e.NewPodNS()
	q := e.Request("p", podNS)
	res, err := e.Att.Add(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	h := e.Handle(podNS.Path())
	l, _ := h.LinkByName("net1")
	_ = h.LinkSetDown(l)
	_ = h.AddrDel(l, &netlink.Addr{IPNet: &res.IPs[0].Address})
	h.Close()
	err = e.Att.Check(ctx, q)
	if err == nil || !strings.Contains(err.Error(), "net1 is down") || !strings.Contains(err.Error(), "net1: address "+res.IPs[0].Address.String()+" is missing") {
		t.Errorf("CHECK: %v", err)
	}
	if err := e.Att.Del(ctx, q); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentAdds sends ADDs for several pods at once: each gets its own device.
func TestConcurrentAdds(t *testing.T) {
	e := newEnv(t)
	const n = 4
	requests := make([]attach.Request, n)
	for i := range n {
		name := string(rune('a' + i))
		e.AddPod(name, []int{0}, map[string]string{"topolane.io/nic": "vf"}) // all want the VFs near GPU0
		requests[i] = e.Request(name, e.NewPodNS())
	}
	var wg sync.WaitGroup
	devices := make([]string, n)
	for i, q := range requests {
		wg.Go(func() {
			res, err := e.Att.Add(ctx, q)
			if err != nil {
				t.Error(err)
				return
			}
			devices[i] = res.Interfaces[0].PciID
		})
	}
	wg.Wait()
	slices.Sort(devices)
	if len(slices.Compact(slices.Clone(devices))) != n {
		t.Errorf("devices handed out: %v, want %d different", devices, n)
	}
}

// TestBadInput: every refusal says why and changes nothing.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
	e.AddPod("bad-annotation", []int{0}, map[string]string{"topolane.io/nic": "fast"})
	e.AddPod("forged", []int{0}, map[string]string{"topolane.io/allocation": reservation("someone-else", "pf")})
	e.AddPod("bad-bandwidth", []int{0}, map[string]string{"kubernetes.io/egress-bandwidth": "lots"})
	e.AddPod("two", []int{0, 1}, nil)
	// Reserved by the extender, yet kubelet lists no GPU of it (its GPUs are an init container's,
	// or the agent's --gpu-resources lack the extender's).
	e.AddPod("no-gpus", nil, map[string]string{"topolane.io/allocation": reservation("no-gpus", "vf")})
	podNS := e.NewPodNS()
	before := e.Links(e.Fx.HostNS)
	ok := e.Request("p", podNS)
	tests := []struct {
		name string
		edit func(q *attach.Request)
		want string
		code uint
	}{
		{"malformed config", func(q *attach.Request) { q.NetConf = []byte("{") }, "not JSON", attach.CodeConfig},
		{"no IPAM", func(q *attach.Request) { q.NetConf = []byte(`{"name":"x"}`) }, `no "ipam"`, attach.CodeConfig},
		{"no pod name", func(q *attach.Request) { q.PodName = "" }, "K8S_POD_NAME", attach.CodeEnv},
		{"unknown pod", func(q *attach.Request) { q.PodName = "ghost" }, "not found", attach.CodePod},
		{"bad annotation", func(q *attach.Request) { q.PodName = "bad-annotation" }, "fast", attach.CodeDevice},
		{"forged allocation", func(q *attach.Request) { q.PodName = "forged" }, "names pod UID uid-someone-else, not its own", attach.CodeDevice},
		{"bad bandwidth", func(q *attach.Request) { q.PodName = "bad-bandwidth" }, "kubernetes.io/egress-bandwidth", attach.CodeConfig},
		{"IPAM failure", func(q *attach.Request) {
			q.NetConf = []byte(`{"cniVersion":"1.0.0","name":"x","ipam":{"type":"host-local","subnet":"not-a-subnet"}}`)
		}, "IPAM plugin host-local", attach.CodeIPAM},
		{"IPAM plugin missing", func(q *attach.Request) { q.CNIPath = []string{t.TempDir()} }, `IPAM plugin "host-local"`, attach.CodeIPAM},
		{"names too long for two devices", func(q *attach.Request) { q.PodName, q.IfName = "two", "abcdefghijklmn" }, "leaves no room", attach.CodeEnv},
		{"reserved, no GPUs from kubelet", func(q *attach.Request) { q.PodName = "no-gpus" }, "has no GPUs from kubelet", attach.CodeDevice},
	}
	for _, tt := range tests {
		q := ok
		tt.edit(&q)
		_, err := e.Att.Add(ctx, q)
		if err == nil || !strings.Contains(err.Error(), tt.want) || attach.CodeOf(err) != tt.code {
			t.Errorf("%s: %v (code %d), want an error saying %q, code %d", tt.name, err, attach.CodeOf(err), tt.want, tt.code)
		}
		if after := e.Links(e.Fx.HostNS); !slices.Equal(before, after) {
			t.Errorf("%s changed the host: %v", tt.name, after)
		}
		if left := e.Leftovers(); len(left) > 0 {
			t.Errorf("%s left: %v", tt.name, left)
		}
	}
}

// TestDevicesFoundByPCIAddress: the journal does not trust names. A device renamed on the host
// since discovery (udev) is still found, and returned under the name it had at ADD; one that
// left the host namespace is refused with a reason.
func TestDevicesFoundByPCIAddress(t *testing.T) {
	e := newEnv(t)
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
	e.Rename(e.Fx.HostNS, "enp26s0np0v0", "renamed0")
	q := e.Request("p", e.NewPodNS())
	if _, err := e.Att.Add(ctx, q); err != nil {
		t.Fatalf("ADD of a renamed VF: %v", err)
	}
	if err := e.Att.Del(ctx, q); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(e.Links(e.Fx.HostNS), func(s string) bool { return strings.HasPrefix(s, "renamed0 ") }) {
		t.Errorf("the VF did not come back under the name it had: %v", e.Links(e.Fx.HostNS))
	}
	// Someone else moved every VF of NIC0 away: nothing to give.
	elsewhere := e.NewPodNS()
	for _, name := range []string{"renamed0", "enp26s0np0v1", "enp26s0np0v2", "enp26s0np0v3"} {
		e.MoveTo(name, elsewhere.Path())
	}
	e.AddPod("q", []int{0}, map[string]string{"topolane.io/nics": "one", "topolane.io/allocation": reservation("q", "vf")})
	if _, err := e.Att.Add(ctx, e.Request("q", e.NewPodNS())); err == nil || !strings.Contains(err.Error(), "in another network namespace") {
		t.Errorf("ADD of a VF another namespace holds: %v", err)
	}
}

// TestNeverTakesWhatTheHostUses: NIC0 (GPU0's rail) gets the host's address and default route
// in the host namespace after discovery. No pod gets it or its VFs, whatever it asks.
func TestNeverTakesWhatTheHostUses(t *testing.T) {
	e := newEnv(t)
	e.HostUses("enp26s0np0")
	for name, tt := range map[string]struct {
		gpus        []int
		annotations map[string]string
	}{
		"full":   {allGPUs, nil},
		"vf":     {[]int{0}, map[string]string{"topolane.io/nic": "vf"}},
		"forged": {[]int{0}, map[string]string{"topolane.io/allocation": reservation("forged", "pf")}},
		"one":    {[]int{0}, map[string]string{"topolane.io/nics": "one", "topolane.io/nic": "pf"}},
	} {
		e.AddPod(name, tt.gpus, tt.annotations)
		q := e.Request(name, e.NewPodNS())
		if _, err := e.Att.Add(ctx, q); err != nil && !strings.Contains(err.Error(), "no free device") {
			t.Errorf("%s: %v", name, err)
		}
		if !e.HostStillUses("enp26s0np0") {
			t.Fatalf("%s: the host lost its NIC", name)
		}
		for _, pci := range []string{"0000:1a:00.0", "0000:1a:00.2", "0000:1a:00.3", "0000:1a:00.4", "0000:1a:00.5"} {
			if !e.InHost(pci) {
				t.Errorf("%s: the pod got %s, of the NIC the host uses", name, pci)
			}
		}
		_ = e.Att.Del(ctx, q)
	}
}

// TestChained: after a plugin that took CNI_IFNAME itself (the primary network), the pod's
// devices take the names that follow.
func TestChained(t *testing.T) {
	e := newEnv(t)
	e.AddPod("p", []int{0, 1}, nil)
	podNS := e.NewPodNS()
	e.AddLink(podNS.Path(), "net1")
	res, err := e.Att.Add(ctx, e.Request("p", podNS))
	if err != nil {
		t.Fatal(err)
	}
	if res.Interfaces[0].Name != "net1_1" || res.Interfaces[1].Name != "net1_2" {
		t.Errorf("interfaces %s, %s: want net1_1, net1_2", res.Interfaces[0].Name, res.Interfaces[1].Name)
	}
}

// TestNamespaceGone: the pod's namespace is deleted before DEL; the kernel returns physical
// devices to the host (here as the test does for its stand-ins, after a while). DEL waits for
// them, restores them and releases the rest.
func TestNamespaceGone(t *testing.T) {
	e := newEnv(t)
	e.AddPod("p", []int{0, 1}, map[string]string{"topolane.io/nic": "pf"})
	podNS := e.NewPodNS()
	q := e.Request("p", podNS)
	before := e.Links(e.Fx.HostNS)
	if _, err := e.Att.Add(ctx, q); err != nil {
		t.Fatal(err)
	}
	e.KillPodNS(podNS, 500*time.Millisecond)
	if err := e.Att.Del(ctx, q); err != nil {
		t.Errorf("DEL after the namespace went: %v", err)
	}
	if after := e.Links(e.Fx.HostNS); !slices.Equal(before, after) {
		t.Errorf("host links:\nbefore %v\nafter  %v", before, after)
	}
	if left := e.Leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestUndoCarriesOnPastAFailure: a VF's MAC cannot be restored (the PF refuses); DEL still
// returns the device and releases its address, keeps the record with what failed, and the next
// reconcile, the PF working again, finishes.
func TestUndoCarriesOnPastAFailure(t *testing.T) {
	e := newEnv(t)
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
	q := e.Request("p", e.NewPodNS())
	if _, err := e.Att.Add(ctx, q); err != nil {
		t.Fatal(err)
	}
	e.FailVFMAC("the PF is resetting")
	err := e.Att.Del(ctx, q)
	if err == nil || !strings.Contains(err.Error(), "the PF is resetting") {
		t.Fatalf("DEL: %v", err)
	}
	left := e.Leftovers()
	if slices.ContainsFunc(left, func(s string) bool { return strings.Contains(s, "ipam") }) || !slices.ContainsFunc(left, func(s string) bool { return strings.Contains(s, "journal") }) {
		t.Errorf("after a failed hardware step: %v; want the address released and the record kept", left)
	}
	e.FailVFMAC("")
	if _, err := e.Fx.Attacher(e.Node).Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if left := e.Leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestAfterAReboot: the devices were reset by the reboot; reconcile releases the addresses and
// files, and touches no device.
func TestAfterAReboot(t *testing.T) {
	e := newEnv(t)
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
	podNS := e.NewPodNS()
	q := e.Request("p", podNS)
	if _, err := e.Att.Add(ctx, q); err != nil {
		t.Fatal(err)
	}
	if err := e.Fx.Reboot("boot-2"); err != nil {
		t.Fatal(err)
	}
	undone, err := e.Fx.Attacher(e.Node).Reconcile(ctx)
	if err != nil || len(undone) != 1 {
		t.Fatalf("reconcile: %v %v", undone, err)
	}
	if left := e.Leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	// The stand-in is where the "reboot" left it: reconcile did not go looking for it.
	if !slices.ContainsFunc(e.Links(podNS.Path()), func(s string) bool { return strings.HasPrefix(s, "net1 ") }) {
		t.Errorf("reconcile after a reboot moved a device: %v", e.Links(podNS.Path()))
	}
}

// TestAJournalThatNoLongerFits: a record of a VF the node no longer has (fewer VFs after a
// reboot), or one that cannot be read at all, is reported, and the node's other pods are still
// served.
func TestAJournalThatNoLongerFits(t *testing.T) {
	for _, tt := range []struct {
		name  string
		write func(e *attachtest.Env) error
	}{
		{"a VF the node no longer has", func(e *attachtest.Env) error {
			stale := attach.Record{ContainerID: "old", IfName: "net1", Netns: "/var/run/netns/gone", Pod: "train/old", PodUID: "uid-old",
				BootID: e.Fx.BootID(), Step: attach.StepDone, Devices: []attach.Device{{IfName: "net1", Kind: "vf", NIC: "0000:1a:00.0", Device: "0000:1a:00.9"}}}
			return e.Att.Journal.Save(&stale)
		}},
		{"unreadable", func(e *attachtest.Env) error {
			if err := os.MkdirAll(e.Att.Journal.Dir, 0o700); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(e.Att.Journal.Dir, "old@net1.json"), []byte(`{"containerID": "old", "ifName": "net1", "devices": [`), 0o600)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if err := tt.write(e); err != nil {
				t.Fatal(err)
			}
			e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
			if _, err := e.Att.Add(ctx, e.Request("p", e.NewPodNS())); err != nil {
				t.Errorf("an ADD beside a record that no longer fits: %v", err)
			}
		})
	}
}

// TestUpgradeFromOneDeviceRecords: a record written before rails (one device, its fields the
// record's own, the old file name) is undone by DEL.
func TestUpgradeFromOneDeviceRecords(t *testing.T) {
	e := newEnv(t)
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf", "topolane.io/nics": "one"})
	podNS := e.NewPodNS()
	q := e.Request("p", podNS)
	before := e.Links(e.Fx.HostNS)
	if _, err := e.Att.Add(ctx, q); err != nil {
		t.Fatal(err)
	}
	e.DowngradeJournal(q)
	if err := e.Att.Del(ctx, q); err != nil {
		t.Fatal(err)
	}
	if after := e.Links(e.Fx.HostNS); !slices.Equal(before, after) {
		t.Errorf("host links:\nbefore %v\nafter  %v", before, after)
	}
	if left := e.Leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestGCOnlyItsNetwork: GC of one network leaves the attachments of another alone.
func TestGCOnlyItsNetwork(t *testing.T) {
	e := newEnv(t)
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
	q := e.Request("p", e.NewPodNS())
	if _, err := e.Att.Add(ctx, q); err != nil {
		t.Fatal(err)
	}
	if err := e.Att.GC(ctx, "another-network", nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Att.Check(ctx, q); err != nil {
		t.Errorf("GC of another network undid this one: %v", err)
	}
	if err := e.Att.GC(ctx, "rdma", nil); err != nil {
		t.Fatal(err)
	}
	if left := e.Leftovers(); len(left) > 0 {
		t.Errorf("GC of its own network left: %v", left)
	}
}

// TestThousandCycles runs 1,000 ADD/DEL cycles: no link, file descriptor or goroutine may leak.
func TestThousandCycles(t *testing.T) {
	e := newEnv(t)
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
	podNS := e.NewPodNS()
	q := e.Request("p", podNS)
	cycle := func() {
		if _, err := e.Att.Add(ctx, q); err != nil {
			t.Fatal(err)
		}
		if err := e.Att.Del(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	cycle() // warm up: lazily opened descriptors and started goroutines are not leaks
	links, fds, goroutines := e.Links(e.Fx.HostNS), openFDs(t), runtime.NumGoroutine()
	for range 1000 {
		cycle()
	}
	time.Sleep(100 * time.Millisecond) // let exited plugin processes' reapers finish
	if after := e.Links(e.Fx.HostNS); !slices.Equal(links, after) {
		t.Errorf("links: %v, then %v", links, after)
	}
	if after := openFDs(t); after > fds {
		t.Errorf("open file descriptors: %d, then %d", fds, after)
	}
	if after := runtime.NumGoroutine(); after > goroutines {
		t.Errorf("goroutines: %d, then %d", goroutines, after)
	}
	if left := e.Leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// TestOldSandboxLeavesTheNewOnesFiles: the agent missed the DEL of a pod's first sandbox (it was
// restarting) and the runtime made a second; undoing the first, when reconcile finds its
// namespace gone, must not remove the files the second sandbox's ADD wrote for the same pod.
func TestOldSandboxLeavesTheNewOnesFiles(t *testing.T) {
	e := newEnv(t)
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
	oldNS := e.NewPodNS()
	if _, err := e.Att.Add(ctx, e.Request("p", oldNS)); err != nil {
		t.Fatal(err)
	}
	e.KillPodNS(oldNS, 0)
	q := e.Request("p", e.NewPodNS())
	q.ContainerID = "c-p-second"
	if _, err := e.Att.Add(ctx, q); err != nil {
		t.Fatal(err)
	}
	undone, err := e.Fx.Attacher(e.Node).Reconcile(ctx)
	if err != nil || len(undone) != 1 {
		t.Fatalf("reconcile undid %v (%v); want the first sandbox's record", undone, err)
	}
	if _, err := os.Stat(filepath.Join(e.Fx.Dir, "pods", "uid-p", "accel.env")); err != nil {
		t.Errorf("the second sandbox's accel.env: %v", err)
	}
	if err := e.Att.Del(ctx, q); err != nil {
		t.Fatal(err)
	}
	if left := e.Leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}
