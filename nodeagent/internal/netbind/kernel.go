// Package netbind is the agent's narrow window on the kernel's network stack: find a device by
// the alias topolane gives it, move it between namespaces, rename it, set its MAC, addresses and
// Package netbind is the agent's narrow window on the kernel's network stack: find a device by
// the alias topolane gives it, move it between namespaces, rename it, set its MAC, addresses and
// routes, bring it up or down, set a VF's MAC (or, on InfiniBand, its GUIDs) and rate limits
// through its PF, and move an RDMA device with its netdev. It also tells discovery how the host
// uses its links (HostLinks). Netlink is the real thing; tests run it on the kernel with a veth
// end standing in for a PF, and fake only the calls that need SR-IOV or RDMA hardware.
package netbind

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Host names the agent's host namespace in calls that take a namespace.
const Host = ""

// Kernel is every network call the agent makes. ns is a network namespace's path (a pod's
// netns), or Host.
type Kernel interface {
	// Find returns the name of the link with the given alias in ns, or "" if there is none.
	Find(ns, alias string) (string, error)
	// Link describes a link by name.
	Link(ns, name string) (LinkState, error)
	SetAlias(ns, name, alias string) error
	SetUp(ns, name string, up bool) error
	Rename(ns, name, newName string) error
	// Move moves a link from one namespace to another under newName, in one request ("": keeps
	// its name). If newName is taken there the kernel moves the link anyway, under its old name,
	// and fails with EEXIST.
	Move(fromNS, name, toNS, newName string) error
	SetMAC(ns, name string, mac net.HardwareAddr) error
	AddAddr(ns, name string, addr *net.IPNet) error
	AddRoute(ns, name string, dst *net.IPNet, gw net.IP) error
	// SetVFMAC sets VF vf's MAC through its PF, in the host namespace; VFMAC reads it.
	SetVFMAC(pf string, vf int, mac net.HardwareAddr) error
	VFMAC(pf string, vf int) (net.HardwareAddr, error)
	// SetVFRate sets VF vf's transmit rate limits through its PF, in the host namespace, in
	// Mbit/s (0: none); VFRate reads them. A driver without VF rate limiting answers EOPNOTSUPP.
	SetVFRate(pf string, vf int, minMbps, maxMbps int) error
	VFRate(pf string, vf int) (minMbps, maxMbps int, err error)
	// Multihome makes an interface of a pod with several in one subnet answer and send for its
	// own address only; Unhome removes its source rule.
	Multihome(ns, name string, addr *net.IPNet, table int, gw net.IP) error
	Unhome(ns string, addr net.IP, table int) error
	// AddMacvlan creates a bridge-mode macvlan on parent in the host namespace.
	AddMacvlan(parent, name string) error
	// Delete deletes a (virtual) link.
	Delete(ns, name string) error
	// NamespaceExists says whether ns still names a network namespace.
	NamespaceExists(ns string) bool

	// RDMANetnsMode is the RDMA subsystem's namespace mode: topology.RDMANetnsShared or
	// topology.RDMANetnsExclusive. Errors wrap ErrNoRDMA where the kernel has no RDMA netlink.
	RDMANetnsMode() (string, error)
	// MoveRDMA moves RDMA device dev (mlx5_3) from one namespace to another, keeping its name;
	// only exclusive mode allows it.
	MoveRDMA(fromNS, dev, toNS string) error
	// SetVFGUID sets an InfiniBand VF's node and port GUIDs (8 bytes each) through its PF, in the
	// host namespace; VFGUID reads them.
	SetVFGUID(pf string, vf int, node, port net.HardwareAddr) error
	VFGUID(pf string, vf int) (node, port net.HardwareAddr, err error)
}

// LinkState is what the agent reads of a link.
type LinkState struct {
	Name  string
	Alias string
	MAC   net.HardwareAddr
	Up    bool
	MTU   int
	Addrs []*net.IPNet
}

// Netlink is the Kernel of this machine. HostNS is the path of the host namespace; empty means
// the agent's own.
type Netlink struct {
	HostNS string
}

// ErrNoNamespace is returned when a namespace path names no network namespace.
var ErrNoNamespace = errors.New("network namespace does not exist")

// handle opens a netlink handle in ns, for the given netlink families (all that netlink knows
// by default; RDMA must be asked for).
func (k Netlink) handle(ns string, families ...int) (*netlink.Handle, error) {
	path := ns
	if ns == Host {
		if k.HostNS == "" {
			return netlink.NewHandle(families...)
		}
		path = k.HostNS
	}
	h, err := netns.GetFromPath(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", path, ErrNoNamespace)
		}
		return nil, fmt.Errorf("opening network namespace %s: %w", path, err)
	}
	defer h.Close()
	return netlink.NewHandleAt(h, families...)
}

// with runs fn with a handle in ns and the named link.
func (k Netlink) with(ns, name string, fn func(h *netlink.Handle, l netlink.Link) error) error {
	h, err := k.handle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s%s: %w", name, where(ns), err)
	}
	return fn(h, l)
}

func where(ns string) string {
	if ns == Host {
		return " in the host namespace"
	}
	return " in " + ns
}

func (k Netlink) Find(ns, alias string) (string, error) {
	h, err := k.handle(ns)
	if err != nil {
		return "", err
	}
	defer h.Close()
	links, err := linkList(h)
	if err != nil {
		return "", fmt.Errorf("listing links%s: %w", where(ns), err)
	}
	for _, l := range links {
		if l.Attrs().Alias == alias {
			return l.Attrs().Name, nil
		}
	}
	return "", nil
}

func (k Netlink) Link(ns, name string) (LinkState, error) {
	var st LinkState
	err := k.with(ns, name, func(h *netlink.Handle, l netlink.Link) error {
		a := l.Attrs()
		st = LinkState{Name: a.Name, Alias: a.Alias, MAC: a.HardwareAddr, Up: a.Flags&net.FlagUp != 0, MTU: a.MTU}
		addrs, err := addrList(h, l, netlink.FAMILY_ALL)
		for _, addr := range addrs {
			if addr.IP.IsGlobalUnicast() {
				st.Addrs = append(st.Addrs, addr.IPNet)
			}
		}
		return err
	})
	return st, err
}

func (k Netlink) SetAlias(ns, name, alias string) error {
	return k.with(ns, name, func(h *netlink.Handle, l netlink.Link) error { return h.LinkSetAlias(l, alias) })
}

func (k Netlink) SetUp(ns, name string, up bool) error {
	return k.with(ns, name, func(h *netlink.Handle, l netlink.Link) error {
		if up {
			return h.LinkSetUp(l)
		}
		return h.LinkSetDown(l)
	})
}

func (k Netlink) Rename(ns, name, newName string) error {
	return k.with(ns, name, func(h *netlink.Handle, l netlink.Link) error { return h.LinkSetName(l, newName) })
}

func (k Netlink) Move(fromNS, name, toNS, newName string) error {
	to, err := k.open(toNS)
	if err != nil {
		return err
	}
	defer to.Close()
	if newName == "" || newName == name {
		return k.with(fromNS, name, func(h *netlink.Handle, l netlink.Link) error { return h.LinkSetNsFd(l, int(to)) })
	}
	from, err := k.open(fromNS)
	if err != nil {
		return err
	}
	defer from.Close()
	return k.with(fromNS, name, func(_ *netlink.Handle, l netlink.Link) error { return moveAs(from, l.Attrs().Index, to, newName) })
}

// moveAs moves link index of namespace from into namespace to under name, in one request
// (IFLA_NET_NS_FD with IFLA_IFNAME, as `ip link set ... netns ... name ...`): one kernel round
// trip fewer than a move and a rename, and no handle in the pod's namespace.
func moveAs(from netns.NsHandle, index int, to netns.NsHandle, name string) error {
	sock, err := nl.GetNetlinkSocketAt(from, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("opening a netlink socket: %w", err)
	}
	defer sock.Close()
	req := nl.NewNetlinkRequest(unix.RTM_SETLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(to))))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: sock}}
	_, err = req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// open opens namespace ns (Host: the host namespace) for a move into it.
func (k Netlink) open(ns string) (netns.NsHandle, error) {
	target := ns
	if ns == Host {
		target = k.HostNS
		if target == "" {
			target = "/proc/self/ns/net"
		}
	}
	h, err := netns.GetFromPath(target)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return h, fmt.Errorf("%s: %w", target, ErrNoNamespace)
		}
		return h, fmt.Errorf("opening network namespace %s: %w", target, err)
	}
	return h, nil
}

func (k Netlink) SetMAC(ns, name string, mac net.HardwareAddr) error {
	return k.with(ns, name, func(h *netlink.Handle, l netlink.Link) error { return h.LinkSetHardwareAddr(l, mac) })
}

func (k Netlink) AddAddr(ns, name string, addr *net.IPNet) error {
	return k.with(ns, name, func(h *netlink.Handle, l netlink.Link) error {
		err := h.AddrAdd(l, &netlink.Addr{IPNet: addr})
		if errors.Is(err, os.ErrExist) {
			return nil // a retried ADD
		}
		return err
	})
}

func (k Netlink) AddRoute(ns, name string, dst *net.IPNet, gw net.IP) error {
	return k.with(ns, name, func(h *netlink.Handle, l netlink.Link) error {
		err := h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst, Gw: gw})
		if errors.Is(err, os.ErrExist) {
			return nil
		}
		return err
	})
}

func (k Netlink) SetVFMAC(pf string, vf int, mac net.HardwareAddr) error {
	return k.with(Host, pf, func(h *netlink.Handle, l netlink.Link) error { return h.LinkSetVfHardwareAddr(l, vf, mac) })
}

func (k Netlink) VFMAC(pf string, vf int) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := k.with(Host, pf, func(_ *netlink.Handle, l netlink.Link) error {
		v, err := vfInfo(l, vf)
		mac = v.Mac
		return err
	})
	return mac, err
}

func (k Netlink) SetVFRate(pf string, vf int, minMbps, maxMbps int) error {
	return k.with(Host, pf, func(h *netlink.Handle, l netlink.Link) error { return h.LinkSetVfRate(l, vf, minMbps, maxMbps) })
}

func (k Netlink) VFRate(pf string, vf int) (minMbps, maxMbps int, err error) {
	err = k.with(Host, pf, func(_ *netlink.Handle, l netlink.Link) error {
		v, err := vfInfo(l, vf)
		minMbps, maxMbps = int(v.MinTxRate), int(v.MaxTxRate)
		return err
	})
	return minMbps, maxMbps, err
}

// vfInfo is what the PF reports of its VF vf.
func vfInfo(pf netlink.Link, vf int) (netlink.VfInfo, error) {
	for _, v := range pf.Attrs().Vfs {
		if v.ID == vf {
			return v, nil
		}
	}
	return netlink.VfInfo{}, fmt.Errorf("PF %s reports no VF %d", pf.Attrs().Name, vf)
}

func (k Netlink) AddMacvlan(parent, name string) error {
	return k.with(Host, parent, func(h *netlink.Handle, l netlink.Link) error {
		mv := &netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: l.Attrs().Index}, Mode: netlink.MACVLAN_MODE_BRIDGE}
		return h.LinkAdd(mv)
	})
}

func (k Netlink) Delete(ns, name string) error {
	return k.with(ns, name, func(h *netlink.Handle, l netlink.Link) error { return h.LinkDel(l) })
}

func (k Netlink) NamespaceExists(ns string) bool {
	if ns == Host {
		return true
	}
	h, err := netns.GetFromPath(ns)
	if err != nil {
		return false
	}
	h.Close()
	return true
}
