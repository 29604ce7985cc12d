// Package shapingtest is the kernel fixture of the shaping tests and bench: a stand-in device
// moved into a throwaway pod namespace, wired to a peer namespace, and TCP sent through it
// with the received rate recorded over time.
package shapingtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Kind is the stand-in device.
type Kind string

const (
	// Veth: one end of a veth pair, moved into the pod like a PF or VF; the other end is in the
	// peer namespace.
	Veth Kind = "veth"
	// Macvlan: a macvlan on a veth parent in the host namespace (whose peer end is in the peer
	// namespace), moved into the pod, as topolane shares a NIC without VFs.
	Macvlan Kind = "macvlan"
	// HostVeth: a veth pair between the host namespace (the peer: where the CNI bandwidth plugin
	// shapes) and the pod, as the usual CNI plugins wire a pod.
	HostVeth Kind = "host-veth"
)

// The device's name in the pod, the host end of a HostVeth, and the addresses.
const (
	Device  = "net1"
	HostEnd = "veth-pod"
)

var (
	PodAddr  = &net.IPNet{IP: net.IPv4(10, 213, 0, 1), Mask: net.CIDRMask(24, 32)}
	PeerAddr = &net.IPNet{IP: net.IPv4(10, 213, 0, 2), Mask: net.CIDRMask(24, 32)}
)

// Net is a throwaway network: Host (where the device is made), Pod (where it goes), Peer (the
// other end of the traffic; Host itself for HostVeth). Namespaces are named at random, so
// tests run beside others.
type Net struct {
	Kind            Kind
	Host, Pod, Peer ns.NetNS
	namespaces      []ns.NetNS
}

// New builds the network with the device up and addressed in the pod.
func New(kind Kind) (*Net, error) {
	n := &Net{Kind: kind}
	for _, p := range []*ns.NetNS{&n.Host, &n.Pod, &n.Peer} {
		if kind == HostVeth && p == &n.Peer {
			n.Peer = n.Host
			continue
		}
		x, err := testutils.NewNS()
		if err != nil {
			return nil, errors.Join(err, n.Close())
		}
		*p = x
		n.namespaces = append(n.namespaces, x)
	}
	if err := n.wire(); err != nil {
		return nil, errors.Join(fmt.Errorf("building a %s stand-in: %w", kind, err), n.Close())
	}
	return n, nil
}

// NewT is New for a test, closed at its end.
func NewT(t testing.TB, kind Kind) *Net {
	t.Helper()
	n, err := New(kind)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	return n
}

// Close deletes the namespaces, and with them every link in them.
func (n *Net) Close() error {
	var errs []error
	for _, x := range n.namespaces {
		errs = append(errs, x.Close(), testutils.UnmountNS(x))
	}
	n.namespaces = nil
	return errors.Join(errs...)
}

func (n *Net) wire() error {
	host, err := Handle(n.Host)
	if err != nil {
		return err
	}
	defer host.Close()
	moving, peerEnd := "dev0", "peer0"
	if err := host.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "dev0"}, PeerName: peerEnd}); err != nil {
		return err
	}
	if n.Kind == Macvlan {
		parent, err := host.LinkByName("dev0")
		if err != nil {
			return err
		}
		mv := &netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: "mv0", ParentIndex: parent.Attrs().Index}, Mode: netlink.MACVLAN_MODE_BRIDGE}
		if err := errors.Join(host.LinkSetUp(parent), host.LinkAdd(mv)); err != nil {
			return err
		}
		moving = "mv0"
	}
	peerName := peerEnd
	if n.Kind == HostVeth {
		peerName = HostEnd
	}
	if err := move(host, peerEnd, n.Peer, peerName, PeerAddr); err != nil {
		return err
	}
	return move(host, moving, n.Pod, Device, PodAddr)
}

// move moves link name from the namespace of h into to (a no-op where to is h's), renames it
// there, addresses it and brings it up.
func move(h *netlink.Handle, name string, to ns.NetNS, newName string, addr *net.IPNet) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	th, err := Handle(to)
	if err != nil {
		return err
	}
	defer th.Close()
	if _, err := th.LinkByName(name); err != nil { // not there yet
		if err := h.LinkSetNsFd(l, int(to.Fd())); err != nil {
			return fmt.Errorf("moving %s: %w", name, err)
		}
	}
	if l, err = th.LinkByName(name); err != nil {
		return err
	}
	if name != newName {
		if err := th.LinkSetName(l, newName); err != nil {
			return err
		}
	}
	lo, err := th.LinkByName("lo")
	if err != nil {
		return err
	}
	return errors.Join(th.AddrAdd(l, &netlink.Addr{IPNet: addr}), th.LinkSetUp(l), th.LinkSetUp(lo))
}

// Handle opens a netlink handle in x.
func Handle(x ns.NetNS) (*netlink.Handle, error) {
	return netlink.NewHandleAt(nsHandle(x))
}

// Links lists the links of a namespace by name and type.
func Links(x ns.NetNS) ([]string, error) {
	h, err := Handle(x)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	ls, err := h.LinkList()
	var out []string
	for _, l := range ls {
		out = append(out, l.Attrs().Name+" "+l.Type())
	}
	return out, err
}

// TC lists the qdiscs and filters of a link, each kind and parent, leaving out the default
// qdiscs a device gets with no configuration (noqueue, pfifo_fast, mq, fq_codel at the root).
func TC(x ns.NetNS, link string) ([]string, error) {
	h, err := Handle(x)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	l, err := h.LinkByName(link)
	if err != nil {
		return nil, err
	}
	qs, err := h.QdiscList(l)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, q := range qs {
		a := q.Attrs()
		if a.Parent == netlink.HANDLE_ROOT && a.Handle == 0 || a.Parent != netlink.HANDLE_ROOT && a.Parent != netlink.HANDLE_INGRESS {
			continue // a default qdisc, or one mq or a child holds per queue
		}
		out = append(out, fmt.Sprintf("qdisc %s %s parent %s", q.Type(), netlink.HandleStr(a.Handle), netlink.HandleStr(a.Parent)))
		fs, err := h.FilterList(l, a.Handle)
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			out = append(out, fmt.Sprintf("filter %s prio %d parent %s", f.Type(), f.Attrs().Priority, netlink.HandleStr(f.Attrs().Parent)))
		}
	}
	return out, nil
}

// RequireRoot fails the test when it does not run as root: these tests change the kernel's
// network namespaces, and CI runs them as root; skipping would hide them.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test shapes traffic in network namespaces: run it as root (CI does)")
	}
}

func nsHandle(x ns.NetNS) netns.NsHandle { return netns.NsHandle(int(x.Fd())) }
