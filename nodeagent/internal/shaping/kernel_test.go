package shaping_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/topolane/topolane/nodeagent/internal/netbind"
	"github.com/topolane/topolane/nodeagent/internal/shaping"
	"github.com/topolane/topolane/nodeagent/internal/shaping/shapingtest"
)

// The shaping measured: tens of Mbit/s, which this 2-core VM shapes and measures reliably beside
// other work. The burst lasts burst / (peak - average) = 0.5 s at the peak.
var measured = map[string]string{
	shaping.EgressBandwidth: "20M", shaping.EgressPeak: "100M", shaping.EgressBurst: "40M",
	shaping.IngressBandwidth: "20M", shaping.IngressPeak: "100M", shaping.IngressBurst: "40M",
}

const (
	average, peak = 20e6, 100e6
	burstPhase    = 500 * time.Millisecond
	flowTime      = 2500 * time.Millisecond
)

func TestShapesTCP(t *testing.T) {
	shapingtest.RequireRoot(t)
	for _, kind := range []shapingtest.Kind{shapingtest.Veth, shapingtest.Macvlan} {
		t.Run(string(kind), func(t *testing.T) {
			n := shapingtest.NewT(t, kind)
			p := apply(t, n, measured)
			t.Run("egress", func(t *testing.T) { measure(t, p, n.Pod, n.Peer, shapingtest.PeerAddr.IP) })
			t.Run("ingress", func(t *testing.T) { measure(t, p, n.Peer, n.Pod, shapingtest.PodAddr.IP) })
			if err := shaping.Remove(context.Background(), p); err != nil {
				t.Fatal(err)
			}
			nothingLeft(t, n)
		})
	}
}

func apply(t *testing.T, n *shapingtest.Net, annotations map[string]string) shaping.Plan {
	t.Helper()
	l, err := shaping.Parse(annotations, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := shaping.Prepare(n.Pod.Path(), shapingtest.Device, l)
	if err != nil {
		t.Fatal(err)
	}
	if err := shaping.Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if diffs, err := shaping.Check(p); err != nil || len(diffs) != 0 {
		t.Fatalf("Check after Apply: %v, %v", diffs, err)
	}
	return p
}

// measure sends TCP and checks the burst phase's rate against the peak and the sustained rate
// against the average, on the wire (shapingtest.Flow.Wire). A measurement that misses is
// repeated once, on filters applied afresh (the first try emptied their buckets): the CPUs are
// shared with other work, and one starved sender or timer is not the shaper's fault; two in a
// row are.
func measure(t *testing.T, p shaping.Plan, from, to ns.NetNS, addr net.IP) {
	var problems []string
	for try := range 2 {
		if try > 0 {
			reapply(t, p)
		}
		f, err := shapingtest.Send(from, to, addr, flowTime, 10*time.Millisecond, 1500)
		if err != nil {
			t.Fatal(err)
		}
		burst := f.Rate(50*time.Millisecond, burstPhase-100*time.Millisecond)
		sustained := f.Rate(burstPhase+500*time.Millisecond, flowTime)
		t.Logf("try %d: burst phase %.1f Mbit/s (peak %.0f), sustained %.2f Mbit/s (average %.0f); MSS %d",
			try+1, burst/1e6, peak/1e6, sustained/1e6, average/1e6, f.MSS)
		problems = problems[:0]
		if burst < 0.85*peak || burst > 1.05*peak {
			problems = append(problems, fmt.Sprintf("the burst phase ran at %.1f Mbit/s, not within 85%%-105%% of the peak %.0f", burst/1e6, peak/1e6))
		}
		if d := sustained/average - 1; d < -0.05 || d > 0.05 {
			problems = append(problems, fmt.Sprintf("the sustained rate is %.2f Mbit/s, %+.1f%% off the average %.0f", sustained/1e6, d*100, average/1e6))
		}
		if len(problems) == 0 {
			return
		}
		t.Logf("try %d missed: %s", try+1, strings.Join(problems, "; "))
	}
	t.Error(strings.Join(problems, "; "))
}

// reapply installs the filters again, with full buckets.
func reapply(t *testing.T, p shaping.Plan) {
	t.Helper()
	ctx := context.Background()
	if err := shaping.Remove(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := shaping.Apply(ctx, p); err != nil {
		t.Fatal(err)
	}
}

// nothingLeft checks that the pod's namespace holds only its device and loopback, without any
// qdisc or filter beyond the defaults.
func nothingLeft(t *testing.T, n *shapingtest.Net) {
	t.Helper()
	links, err := shapingtest.Links(n.Pod)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"lo device", shapingtest.Device + " " + string(kindType(n.Kind))}; !cmp.Equal(want, links) {
		t.Errorf("links left in the pod: %v, want %v", links, want)
	}
	tc, err := shapingtest.TC(n.Pod, shapingtest.Device)
	if err != nil {
		t.Fatal(err)
	}
	if len(tc) != 0 {
		t.Errorf("left on %s: %v", shapingtest.Device, tc)
	}
}

func kindType(k shapingtest.Kind) string {
	if k == shapingtest.Macvlan {
		return "macvlan"
	}
	return "veth"
}

// Apply converges from any state a crash may leave; Remove undoes any of them; Check lists what
// differs.
func TestApplyRemoveFromAnyState(t *testing.T) {
	shapingtest.RequireRoot(t)
	n := shapingtest.NewT(t, shapingtest.Veth)
	l, err := shaping.Parse(measured, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := shaping.Prepare(n.Pod.Path(), shapingtest.Device, l)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h, err := shapingtest.Handle(n.Pod)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	half := []struct {
		name  string
		do    func() error // leaves a half-applied plan
		diffs []string     // what Check finds then
	}{
		{name: "nothing", do: func() error { return nil }, diffs: []string{
			"egress of net1: no tbf installed (asked: rate 20000000 bit/s)",
			"ingress of net1: ifb ifb-net1 is missing"}},
		{name: "the ifb alone, down", do: func() error {
			return h.LinkAdd(&netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: p.IFB}})
		}, diffs: []string{
			"egress of net1: no tbf installed (asked: rate 20000000 bit/s)",
			"ingress of net1: ifb ifb-net1 is down",
			"ingress of net1: nothing redirects it to ifb-net1",
			"ingress of net1 (on ifb-net1): no tbf installed (asked: rate 20000000 bit/s)"}},
		{name: "everything but the filter", do: func() error {
			if err := shaping.Apply(ctx, p); err != nil {
				return err
			}
			dev, err := h.LinkByName(shapingtest.Device)
			if err != nil {
				return err
			}
			fs, err := h.FilterList(dev, netlink.MakeHandle(0xffff, 0))
			for _, f := range fs {
				err = errors.Join(err, h.FilterDel(f))
			}
			return err
		}, diffs: []string{"ingress of net1: nothing redirects it to ifb-net1"}},
		{name: "another rate", do: func() error {
			other := p
			other.Egress = &shaping.TBF{Rate: 1_000_000, Burst: 20_000, Limit: 300_000}
			return shaping.Apply(ctx, other)
		}, diffs: []string{
			"egress of net1: rate is 8000000 bit/s, asked 20000000 bit/s",
			"egress of net1: peak is none, asked 100000000 bit/s",
			"egress of net1: burst is 20000 bytes (312500 ticks), asked 5000000 bytes (31250000 ticks)",
			"egress of net1: limit is 300000 bytes, asked 312500 bytes"}},
	}
	for _, tt := range half {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); err != nil {
				t.Fatal(err)
			}
			diffs, err := shaping.Check(p)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.diffs, diffs); diff != "" {
				t.Errorf("Check (-want +got):\n%s", diff)
			}
			for range 2 { // Apply converges, twice
				if err := shaping.Apply(ctx, p); err != nil {
					t.Fatal(err)
				}
			}
			if diffs, err := shaping.Check(p); err != nil || len(diffs) != 0 {
				t.Errorf("Check after Apply: %v, %v", diffs, err)
			}
			if err := shaping.Remove(ctx, p); err != nil {
				t.Fatal(err)
			}
			nothingLeft(t, n)
			if err := tt.do(); err != nil {
				t.Fatal(err)
			}
			for range 2 { // Remove from the half-applied state, twice
				if err := shaping.Remove(ctx, p); err != nil {
					t.Fatal(err)
				}
			}
			nothingLeft(t, n)
		})
	}
}

func TestPrepareRefusesWhatTheDeviceCannotShape(t *testing.T) {
	shapingtest.RequireRoot(t)
	n := shapingtest.NewT(t, shapingtest.Veth)
	h, err := shapingtest.Handle(n.Pod)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	dev, err := h.LinkByName(shapingtest.Device)
	if err == nil {
		err = h.LinkSetMTU(dev, 9000)
	}
	if err != nil {
		t.Fatal(err)
	}
	l, err := shaping.Parse(map[string]string{shaping.EgressBandwidth: "1G", shaping.EgressBurst: "12112"}, nil)
	if err != nil {
		t.Fatal(err) // one 1514-byte frame: fine for Parse, which knows no MTU
	}
	_, err = shaping.Prepare(n.Pod.Path(), shapingtest.Device, l)
	want := `topolane.io/egress-burst: "12112" bits is below the least burst this device shapes with, 9014 bytes (one frame of MTU 9000 + 14, and rate/HZ): at least 72112 bits`
	if !errors.Is(err, shaping.ErrInvalid) || err.Error() != want {
		t.Errorf("Prepare: %v\nwant %s", err, want)
	}
	if _, err := shaping.Prepare(n.Pod.Path(), "net9", l); err == nil || errors.Is(err, shaping.ErrInvalid) {
		t.Errorf("Prepare of a missing device: %v, want a failure that is not the pod's fault", err)
	}
}

// DEL after the pod's namespace is gone: nothing to do.
func TestRemoveWhenTheNamespaceIsGone(t *testing.T) {
	shapingtest.RequireRoot(t)
	n := shapingtest.NewT(t, shapingtest.Veth)
	p := apply(t, n, measured)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := shaping.Remove(context.Background(), p); err != nil {
		t.Errorf("Remove: %v", err)
	}
}

// Remove takes only what is topolane's.
func TestRemoveLeavesOthersAlone(t *testing.T) {
	shapingtest.RequireRoot(t)
	n := shapingtest.NewT(t, shapingtest.Veth)
	h, err := shapingtest.Handle(n.Pod)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	dev, err := h.LinkByName(shapingtest.Device)
	if err != nil {
		t.Fatal(err)
	}
	foreign := []error{
		h.QdiscAdd(&netlink.Tbf{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: dev.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
			Rate: 1_000_000, Limit: 100_000, Buffer: 100_000}),
		h.QdiscAdd(&netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: dev.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_INGRESS}}),
		h.FilterAdd(&netlink.U32{FilterAttrs: netlink.FilterAttrs{LinkIndex: dev.Attrs().Index, Parent: netlink.MakeHandle(0xffff, 0), Priority: 1, Protocol: unix.ETH_P_ALL},
			ClassId: netlink.MakeHandle(1, 1)}),
		h.LinkAdd(&netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: shaping.IFBName(shapingtest.Device), Alias: "someone else's"}}),
	}
	if err := errors.Join(foreign...); err != nil {
		t.Fatal(err)
	}
	ifb, err := h.LinkByName(shaping.IFBName(shapingtest.Device))
	if err == nil {
		err = h.LinkSetAlias(ifb, "someone else's")
	}
	if err != nil {
		t.Fatal(err)
	}
	before, _ := shapingtest.TC(n.Pod, shapingtest.Device)
	p := shaping.Plan{Netns: n.Pod.Path(), Device: shapingtest.Device, IFB: shaping.IFBName(shapingtest.Device)}
	if err := shaping.Remove(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	after, _ := shapingtest.TC(n.Pod, shapingtest.Device)
	links, _ := shapingtest.Links(n.Pod)
	if diff := cmp.Diff(before, after); diff != "" || len(links) != 3 {
		t.Errorf("Remove took what is not topolane's: tc (-before +after):\n%s\nlinks %v", diff, links)
	}
	l, _ := shaping.Parse(measured, nil)
	p, err = shaping.Prepare(n.Pod.Path(), shapingtest.Device, l)
	if err == nil {
		err = shaping.Apply(context.Background(), p)
	}
	if err == nil || !strings.Contains(err.Error(), "ifb-net1 exists and is not topolane's ifb") {
		t.Errorf("Apply over someone else's ifb: %v", err)
	}
}

// A veth has no VF rate limiter: the kernel answers EOPNOTSUPP, which the ceiling turns into a
// warning, through the real netbind.Netlink.
func TestVFCeilingOnADeviceWithout(t *testing.T) {
	shapingtest.RequireRoot(t)
	n := shapingtest.NewT(t, shapingtest.Macvlan) // its parent, dev0, stays in Host
	k := netbind.Netlink{HostNS: n.Host.Path()}
	c := shaping.VFCeiling{PF: "dev0", VF: 0, MaxMbps: 100}
	if err := shaping.ApplyVFCeiling(k, c); !errors.Is(err, shaping.ErrVFRateUnsupported) {
		t.Errorf("ApplyVFCeiling on a veth: %v, want ErrVFRateUnsupported", err)
	}
	if err := shaping.RestoreVFCeiling(k, c); err != nil {
		t.Errorf("RestoreVFCeiling on a veth: %v", err)
	}
	if _, _, err := k.VFRate("dev0", 0); err == nil || !strings.Contains(err.Error(), "PF dev0 reports no VF 0") {
		t.Errorf("VFRate on a veth: %v", err)
	}
}
