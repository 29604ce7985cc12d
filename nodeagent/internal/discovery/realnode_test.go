package discovery_test

import (
	"net"
	"os"
	"testing"

	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/topolane/topolane/nodeagent/internal/discovery"
	"github.com/topolane/topolane/nodeagent/internal/netbind"
	"github.com/topolane/topolane/nodeagent/internal/sysfs"
	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/topologytest"
)

// TestVFsWithoutNetdev: a VF on vfio-pci or on no driver cannot move into a pod as a netdev:
// it is left out with a note. A VF whose netdev is in a pod's namespace stays, nameless.
func TestVFsWithoutNetdev(t *testing.T) {
	root := writeMachine(t, topologytest.NoGPU())
	p := sysfs.Paths{Root: root}
	remove(t, p.PCIDevice("0000:01:00.3", "net"))
	remove(t, p.PCIDevice("0000:01:00.3", "driver"))
	if err := os.Symlink("../../../bus/pci/drivers/vfio-pci", p.PCIDevice("0000:01:00.3", "driver")); err != nil {
		t.Fatal(err)
	}
	remove(t, p.PCIDevice("0000:01:00.4", "net"))
	remove(t, p.PCIDevice("0000:01:00.4", "driver"))
	remove(t, p.PCIDevice("0000:01:00.5", "net")) // in a pod: mlx5_core still drives it
	res := discover(t, root, "cpu")
	if len(res.Warnings) > 0 {
		t.Errorf("warnings: %q", res.Warnings)
	}
	var got []string
	for _, vf := range res.Node.NIC("0000:01:00.0").SRIOV.VFs {
		got = append(got, vf.PCIAddress+" "+vf.Name)
	}
	if diff := cmp.Diff([]string{"0000:01:00.2 enp1s0np0v0", "0000:01:00.5 "}, got); diff != "" {
		t.Errorf("VFs (-want +got):\n%s", diff)
	}
	for _, want := range []string{
		"VF 1 of 0000:01:00.0 (0000:01:00.3) is left out: bound to vfio-pci, it has no netdev to move into a pod",
		"VF 2 of 0000:01:00.0 (0000:01:00.4) is left out: bound to no driver, it has no netdev to move into a pod",
	} {
		if !contains(res.Notes, want) {
			t.Errorf("no note %q in %q", want, res.Notes)
		}
	}
}

// TestInfiniBand: a ConnectX in InfiniBand mode is PCI class 0x0207; the RDMA port's
// link_layer says it too, and wins where they differ.
func TestInfiniBand(t *testing.T) {
	m := topologytest.NoGPU()
	m.Roots[0].Fns[0].Children[0].Class = topologytest.ClassInfiniBand
	root := writeMachine(t, m)
	res := discover(t, root, m.Name)
	if diff := cmp.Diff(m.Node(), res.Node); diff != "" {
		t.Errorf("discovered node differs (-want +got):\n%s", diff)
	}
	if got := res.Node.NIC("0000:01:00.0").LinkLayer; got != topology.LinkLayerInfiniBand {
		t.Errorf("link layer %q, want infiniband", got)
	}
	if got := res.Node.NIC("0000:02:00.0").LinkLayer; got != topology.LinkLayerEthernet {
		t.Errorf("management NIC's link layer %q, want ethernet", got)
	}
	write(t, sysfs.Paths{Root: root}.PCIDevice("0000:01:00.0", "infiniband", "mlx5_0", "ports", "1", "link_layer"), "Ethernet\n")
	if got := discover(t, root, "ib").Node.NIC("0000:01:00.0").LinkLayer; got != topology.LinkLayerEthernet {
		t.Errorf("link layer %q where the port says Ethernet", got)
	}
}

type rdmaMode struct {
	mode string
	err  error
}

func (r rdmaMode) RDMANetnsMode() (string, error) { return r.mode, r.err }

func TestRDMANetnsMode(t *testing.T) {
	noRDMA := topologytest.NoGPU()
	noRDMA.Roots[0].Fns = noRDMA.Roots[0].Fns[1:] // the management NIC alone
	missing := rdmaMode{err: netbind.ErrNoRDMA}
	for _, tt := range []struct {
		name        string
		machine     topologytest.Machine
		rdma        discovery.RDMAMode
		want        string
		wantWarning string
	}{
		{"exclusive", topologytest.NoGPU(), rdmaMode{mode: "exclusive"}, "exclusive", ""},
		{"shared", topologytest.NoGPU(), rdmaMode{mode: "shared"}, "shared", ""},
		{"not asked (a fixture)", topologytest.NoGPU(), nil, "", ""},
		{"unknown on a node with RDMA NICs", topologytest.NoGPU(), missing, "",
			"the kernel has no RDMA netlink: whether an RDMA device must move into the pod with its netdev is unknown"},
		{"unknown on a node without RDMA", noRDMA, missing, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := discovery.Discover(discovery.Options{Sysfs: sysfs.Paths{Root: writeMachine(t, tt.machine)}, RDMA: tt.rdma})
			if err != nil {
				t.Fatal(err)
			}
			if res.Node.RDMANetnsMode != tt.want {
				t.Errorf("mode %q, want %q", res.Node.RDMANetnsMode, tt.want)
			}
			if (tt.wantWarning == "") != (len(res.Warnings) == 0) || (tt.wantWarning != "" && !contains(res.Warnings, tt.wantWarning)) {
				t.Errorf("warnings %q, want %q", res.Warnings, tt.wantWarning)
			}
		})
	}
}

// TestDiscoveryOnTheKernel: in a namespace that stands for the host, the DGX fixture's first
// PF (enp26s0np0) is a veth with a global address and the default route, its second
// (enp66s0np0) a veth with nothing; discovery through the real netlink excludes the first only.
func TestDiscoveryOnTheKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test makes a network namespace: run it as root (CI does)")
	}
	host, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close(); _ = testutils.UnmountNS(host) })
	h, err := netlink.NewHandleAt(nsHandle(t, host.Path()))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	used := hostVeth(t, h, "enp26s0np0")
	addr, _ := netlink.ParseAddr("10.203.0.2/24")
	addr.Flags = unix.IFA_F_NODAD
	if err := h.AddrAdd(used, addr); err != nil {
		t.Fatal(err)
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: used.Attrs().Index, Gw: net.ParseIP("10.203.0.1")}); err != nil {
		t.Fatal(err)
	}
	hostVeth(t, h, "enp66s0np0")
	res, err := discovery.Discover(discovery.Options{Sysfs: sysfs.Paths{Root: writeMachine(t, topologytest.DGXH100())},
		Host: netbind.Netlink{HostNS: host.Path()}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Node.NIC("0000:1a:00.0").Excluded, "carries the default route; has the host address 10.203.0.2"; got != want {
		t.Errorf("enp26s0np0: excluded %q, want %q", got, want)
	}
	if got := res.Node.NIC("0000:42:00.0").Excluded; got != "" {
		t.Errorf("enp66s0np0 is not used by the host, but excluded: %q", got)
	}
}

func hostVeth(t *testing.T, h *netlink.Handle, name string) netlink.Link {
	t.Helper()
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{name + "p", name} {
		l, err := h.LinkByName(n)
		if err == nil {
			err = h.LinkSetUp(l)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func nsHandle(t *testing.T, path string) netns.NsHandle {
	t.Helper()
	h, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}
