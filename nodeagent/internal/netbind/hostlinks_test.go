package netbind

import (
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestHostLinks builds, in a namespace standing for the host, a veth "PF" with global
// addresses and both default routes, one with nothing (its link-local address does not count),
// a bridge port, and a macvlan with an address on a fourth (as a VLAN would be: this kernel has no 8021q); HostLinks must report exactly how each is used.
func TestHostLinks(t *testing.T) {
	n, h := newNS(t)
	used := veth(t, h, "pf-used")
	addAddr(t, h, used, "10.201.0.2/24")
	addAddr(t, h, used, "2001:db8:201::2/64")
	addDefault(t, h, used, "10.201.0.1")
	addDefault(t, h, used, "2001:db8:201::1")
	veth(t, h, "pf-free")
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br-host"}}
	if err := h.LinkAdd(br); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetMaster(veth(t, h, "pf-port"), br); err != nil {
		t.Fatal(err)
	}
	low := veth(t, h, "pf-low")
	mv := &netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: "pf-low-mv", ParentIndex: low.Attrs().Index}, Mode: netlink.MACVLAN_MODE_BRIDGE}
	if err := h.LinkAdd(mv); err != nil {
		t.Fatal(err)
	}
	addAddr(t, h, up(t, h, "pf-low-mv")[0], "10.202.0.2/24")

	links, err := Netlink{HostNS: n.Path()}.HostLinks()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]HostLink{}
	for _, l := range links {
		got[l.Name] = l
	}
	want := map[string]HostLink{
		"pf-used":   {Name: "pf-used", Addrs: []net.IP{ip("10.201.0.2"), ip("2001:db8:201::2")}, DefaultRoutes: []string{"IPv4", "IPv6"}},
		"pf-free":   {Name: "pf-free"},
		"pf-port":   {Name: "pf-port", Master: "br-host"},
		"pf-low":    {Name: "pf-low"},
		"pf-low-mv": {Name: "pf-low-mv", Parent: "pf-low", Addrs: []net.IP{ip("10.202.0.2")}},
		"pf-free-p": {Name: "pf-free-p"}, // a veth's peer is not its parent
	}
	for name, w := range want {
		if diff := cmp.Diff(w, got[name]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}

func ip(s string) net.IP {
	addr := net.ParseIP(s)
	if v4 := addr.To4(); v4 != nil {
		return v4
	}
	return addr
}

func addAddr(t testing.TB, h *netlink.Handle, l netlink.Link, cidr string) {
	t.Helper()
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	a.Flags = unix.IFA_F_NODAD // usable at once, so that a route can go through it
	if err := h.AddrAdd(l, a); err != nil {
		t.Fatalf("adding %s to %s: %v", cidr, l.Attrs().Name, err)
	}
}

func addDefault(t testing.TB, h *netlink.Handle, l netlink.Link, gw string) {
	t.Helper()
	if err := h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.ParseIP(gw)}); err != nil {
		t.Fatalf("adding the default route via %s: %v", gw, err)
	}
}
