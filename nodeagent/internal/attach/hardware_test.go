package attach_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/topolane/topolane/topology"
)

// The calls this kernel cannot make (RDMA devices, InfiniBand GUIDs, VF rates) go through the
// fake; everything else of these ADDs and DELs runs on the kernel.

// TestRDMAMovesWithTheNetdev: in exclusive mode each device's RDMA device moves into the pod
// with it, and back on DEL; in shared mode none moves.
func TestRDMAMovesWithTheNetdev(t *testing.T) {
	e := newEnv(t)
	e.Node.RDMANetnsMode = topology.RDMANetnsExclusive
	e.SetRDMANetnsMode(topology.RDMANetnsExclusive)
	e.AddPod("p", []int{0, 1}, map[string]string{"topolane.io/nic": "pf"})
	q := e.Request("p", e.NewPodNS())
	if _, err := e.Att.Add(ctx, q); err != nil {
		t.Fatal(err)
	}
	if e.RDMANamespace("mlx5_0") != q.Netns || e.RDMANamespace("mlx5_1") != q.Netns {
		t.Errorf("RDMA devices in %q and %q, want the pod's %s", e.RDMANamespace("mlx5_0"), e.RDMANamespace("mlx5_1"), q.Netns)
	}
	if err := e.Att.Del(ctx, q); err != nil {
		t.Fatal(err)
	}
	if left := e.Leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestInfiniBandVFGetsGUIDs: a VF of an InfiniBand NIC gets node and port GUIDs derived from its
// address (no MAC), and its own back on DEL.
func TestInfiniBandVFGetsGUIDs(t *testing.T) {
	e := newEnv(t)
	e.Node.NIC("0000:1a:00.0").LinkLayer = topology.LinkLayerInfiniBand
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
	q := e.Request("p", e.NewPodNS())
	res, err := e.Att.Add(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	ip := res.IPs[0].Address.IP.To4()
	calls := strings.Join(e.KernelCalls(), "\n")
	if !strings.Contains(calls, "SetVFGUID(enp26s0np0, 0, 02:") || !strings.Contains(calls, net4(ip)) || strings.Contains(calls, "SetVFMAC") {
		t.Errorf("kernel calls:\n%s\nwant GUIDs from %s and no MAC", calls, ip)
	}
	if err := e.Att.Del(ctx, q); err != nil {
		t.Fatal(err)
	}
	if left := e.Leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// net4 writes an IPv4 address as the last bytes of a GUID.
func net4(ip []byte) string {
	var parts []string
	for _, b := range ip {
		parts = append(parts, fmt.Sprintf("%02x", b))
	}
	return strings.Join(parts, ":")
}

// TestBandwidthOnEveryDevice: a pod with limits gets them on each of its devices (tbf on the
// device, ingress through an ifb, in its namespace) and, on a VF, the hardware ceiling; DEL
// removes them and restores the VF's rates.
func TestBandwidthOnEveryDevice(t *testing.T) {
	e := newEnv(t)
	e.AddPod("p", []int{0, 1}, map[string]string{"topolane.io/nic": "vf",
		"kubernetes.io/egress-bandwidth": "100M", "topolane.io/egress-peak-bandwidth": "400M", "kubernetes.io/ingress-bandwidth": "50M"})
	podNS := e.NewPodNS()
	q := e.Request("p", podNS)
	if _, err := e.Att.Add(ctx, q); err != nil {
		t.Fatal(err)
	}
	h := e.Handle(podNS.Path())
	for _, dev := range []string{"net1", "net1_1"} {
		l, err := h.LinkByName(dev)
		if err != nil {
			t.Fatal(err)
		}
		qs, _ := h.QdiscList(l)
		if !slices.ContainsFunc(qs, func(q netlink.Qdisc) bool { return q.Type() == "tbf" }) {
			t.Errorf("%s has no tbf: %v", dev, qs)
		}
		if _, err := h.LinkByName("ifb-" + dev); err != nil {
			t.Errorf("%s has no ifb: %v", dev, err)
		}
	}
	h.Close()
	_, rates, _ := e.Att.Kernel.(interface {
		VFRateCalls() ([]string, map[string][2]int, error)
	}).VFRateCalls()
	if rates["enp26s0np0/0"] != [2]int{0, 400} {
		t.Errorf("VF rates %v, want the peak as the VF's ceiling", rates)
	}
	if err := e.Att.Check(ctx, q); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	if err := e.Att.Del(ctx, q); err != nil {
		t.Fatal(err)
	}
	if left := e.Leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestIPAMGetsTheRuntimesArgs: the IPAM plugin sees the CNI_ARGS the runtime passed, and a
// route without a gateway takes its subnet's.
func TestIPAMGetsTheRuntimesArgs(t *testing.T) {
	e := newEnv(t)
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
	dir := t.TempDir()
	script := "#!/bin/sh\necho \"$CNI_ARGS\" >> " + filepath.Join(dir, "args") + "\nexec " + filepath.Join(cniPath, "host-local") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "recorder"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	podNS := e.NewPodNS()
	q := e.Request("p", podNS)
	q.CNIPath = []string{dir}
	q.Args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=train;K8S_POD_NAME=p;K8S_POD_INFRA_CONTAINER_ID=c-p;K8S_POD_UID=uid-p"
	q.NetConf = []byte(`{"cniVersion":"1.0.0","name":"rdma","type":"topolane","ipam":{"type":"recorder","subnet":"10.78.0.0/24","gateway":"10.78.0.1",` +
		`"routes":[{"dst":"10.200.0.0/16"}],"dataDir":"` + filepath.Join(e.Fx.Dir, "ipam") + `"}}`)
	if _, err := e.Att.Add(ctx, q); err != nil {
		t.Fatal(err)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	if !strings.Contains(string(args), q.Args) {
		t.Errorf("the IPAM plugin got CNI_ARGS %q, want the runtime's %q", args, q.Args)
	}
	h := e.Handle(podNS.Path())
	routes, _ := h.RouteList(nil, netlink.FAMILY_V4)
	h.Close()
	if !slices.ContainsFunc(routes, func(r netlink.Route) bool {
		return r.Dst != nil && r.Dst.String() == "10.200.0.0/16" && r.Gw.String() == "10.78.0.1"
	}) {
		t.Errorf("routes %v: want 10.200.0.0/16 via the subnet's gateway 10.78.0.1", routes)
	}
	if err := e.Att.Del(ctx, q); err != nil {
		t.Fatal(err)
	}
}

// TestSeveralDevicesAnswerForTheirOwn: a pod's devices share one subnet; each answers ARP only for
// its own address and sends what comes from it through itself (a rule and a table of its own), so
// that RoCE peers reach each rail at its own MAC. DEL leaves no rule.
func TestSeveralDevicesAnswerForTheirOwn(t *testing.T) {
	e := newEnv(t)
	e.AddPod("p", []int{0, 1, 2}, nil)
	podNS := e.NewPodNS()
	q := e.Request("p", podNS)
	res, err := e.Att.Add(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	err = ns.WithNetNSPath(podNS.Path(), func(ns.NetNS) error {
		for _, dev := range []string{"net1", "net1_1", "net1_2"} {
			for key, want := range map[string]string{"arp_ignore": "1", "arp_announce": "2"} {
				got, err := os.ReadFile(filepath.Join("/proc/sys/net/ipv4/conf", dev, key))
				if err != nil || strings.TrimSpace(string(got)) != want {
					t.Errorf("%s %s = %q (%v), want %s", dev, key, got, err, want)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h := e.Handle(podNS.Path())
	rules, _ := h.RuleList(netlink.FAMILY_V4)
	for i, ip := range res.IPs {
		if !slices.ContainsFunc(rules, func(r netlink.Rule) bool { return r.Src != nil && r.Src.IP.Equal(ip.Address.IP) && r.Table == 1000+i }) {
			t.Errorf("no rule from %s to table %d: %v", ip.Address.IP, 1000+i, rules)
		}
	}
	if err := e.Att.Del(ctx, q); err != nil {
		t.Fatal(err)
	}
	rules, _ = h.RuleList(netlink.FAMILY_V4)
	h.Close()
	if slices.ContainsFunc(rules, func(r netlink.Rule) bool { return r.Table >= 1000 }) {
		t.Errorf("rules left after DEL: %v", rules)
	}
}
