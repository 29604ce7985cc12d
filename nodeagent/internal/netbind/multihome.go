package netbind

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// Several interfaces of one namespace in one subnet (a pod with a device per rail) confuse the
// kernel's defaults: any interface answers ARP for any of the addresses ("ARP flux"), so a peer
// may send one rail's traffic to another rail's MAC, which RoCE then drops; and every reply leaves
// through the first interface of the subnet. Each interface is made to answer and send for its own
// addresses, as multi-homed hosts are.

// Multihome makes the interface answer ARP only for its own addresses (arp_ignore=1), announce
// only them (arp_announce=2), and send what comes from addr through itself: a rule "from addr
// lookup table" and, in that table, addr's subnet on the interface and a default route through
// gw when there is one.
func (k Netlink) Multihome(nsPath, name string, addr *net.IPNet, table int, gw net.IP) error {
	if err := k.sysctls(nsPath, name, map[string]string{"arp_ignore": "1", "arp_announce": "2"}); err != nil {
		return err
	}
	return k.with(nsPath, name, func(h *netlink.Handle, l netlink.Link) error {
		subnet := &net.IPNet{IP: addr.IP.Mask(addr.Mask), Mask: addr.Mask}
		routes := []*netlink.Route{{LinkIndex: l.Attrs().Index, Dst: subnet, Src: addr.IP, Table: table, Scope: netlink.SCOPE_LINK}}
		if gw != nil {
			routes = append(routes, &netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw, Table: table})
		}
		for _, r := range routes {
			if err := h.RouteAdd(r); err != nil && !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("route %v in table %d: %w", r.Dst, table, err)
			}
		}
		rule := netlink.NewRule()
		rule.Src, rule.Table, rule.Priority = &net.IPNet{IP: addr.IP, Mask: fullMask(addr.IP)}, table, table
		if err := h.RuleAdd(rule); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("rule from %s: %w", addr.IP, err)
		}
		return nil
	})
}

// Unhome removes the rule Multihome added (the table's routes go with the interface).
func (k Netlink) Unhome(nsPath string, addr net.IP, table int) error {
	h, err := k.handle(nsPath)
	if err != nil {
		return err
	}
	defer h.Close()
	rule := netlink.NewRule()
	rule.Src, rule.Table, rule.Priority = &net.IPNet{IP: addr, Mask: fullMask(addr)}, table, table
	if err := h.RuleDel(rule); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rule from %s: %w", addr, err)
	}
	return nil
}

func fullMask(ip net.IP) net.IPMask {
	if ip.To4() != nil {
		return net.CIDRMask(32, 32)
	}
	return net.CIDRMask(128, 128)
}

// sysctls writes the interface's IPv4 settings inside its namespace (/proc/sys/net belongs to
// the namespace of the thread that opens it).
func (k Netlink) sysctls(nsPath, name string, values map[string]string) error {
	if nsPath == Host {
		return fmt.Errorf("multihoming is for a pod's namespace, not the host's")
	}
	return ns.WithNetNSPath(nsPath, func(ns.NetNS) error {
		for key, v := range values {
			path := filepath.Join("/proc/sys/net/ipv4/conf", name, key)
			if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
				return fmt.Errorf("%s in %s: %w", path, nsPath, err)
			}
		}
		return nil
	})
}
