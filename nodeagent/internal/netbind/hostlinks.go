package netbind

import (
	"fmt"
	"net"
	"slices"

	"github.com/vishvananda/netlink"
)

// HostLink is how the host namespace uses one of its links: discovery never hands out a NIC
// the host relies on.
type HostLink struct {
	Name string
	// Master is the bond, bridge, team, VRF or OVS datapath (ovs-system) the link is a port of.
	Master string
	// Parent is the link a VLAN, macvlan, ipvlan or IPoIB child is stacked on.
	Parent string
	// Addrs are the link's global unicast addresses (link-local ones do not count).
	Addrs []net.IP
	// DefaultRoutes names the families, "IPv4" and "IPv6", whose default route in the main table
	// leaves through the link (alone or as one path of several).
	DefaultRoutes []string
}

// stacked are the link types whose parent (IFLA_LINK) carries their traffic. A veth's IFLA_LINK
// is its peer, which carries nothing of it.
var stacked = map[string]bool{"vlan": true, "macvlan": true, "macvtap": true, "ipvlan": true, "ipvtap": true, "ipoib": true}

// HostLinks lists the links of the host namespace with what the host uses them for.
func (k Netlink) HostLinks() ([]HostLink, error) {
	h, err := k.handle(Host)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	links, err := linkList(h)
	if err != nil {
		return nil, fmt.Errorf("listing links%s: %w", where(Host), err)
	}
	out := make([]HostLink, len(links))
	byIndex := make(map[int]*HostLink, len(links))
	names := make(map[int]string, len(links))
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	for i, l := range links {
		out[i] = hostLink(l, names)
		byIndex[l.Attrs().Index] = &out[i]
	}
	if err := addAddrs(h, byIndex); err != nil {
		return nil, err
	}
	return out, addDefaultRoutes(h, byIndex)
}

func hostLink(l netlink.Link, names map[int]string) HostLink {
	a := l.Attrs()
	hl := HostLink{Name: a.Name}
	if a.MasterIndex != 0 {
		hl.Master = nameOf(names, a.MasterIndex)
	}
	if stacked[l.Type()] && a.ParentIndex != 0 && a.ParentIndex != a.Index && a.NetNsID < 0 {
		hl.Parent = nameOf(names, a.ParentIndex)
	}
	return hl
}

func nameOf(names map[int]string, index int) string {
	if n, ok := names[index]; ok {
		return n
	}
	return fmt.Sprintf("ifindex %d", index)
}

func addAddrs(h *netlink.Handle, byIndex map[int]*HostLink) error {
	addrs, err := addrList(h, nil, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("listing addresses%s: %w", where(Host), err)
	}
	for _, a := range addrs {
		if hl := byIndex[a.LinkIndex]; hl != nil && a.IP.IsGlobalUnicast() {
			hl.Addrs = append(hl.Addrs, a.IP)
		}
	}
	return nil
}

func addDefaultRoutes(h *netlink.Handle, byIndex map[int]*HostLink) error {
	for _, fam := range []struct {
		family int
		name   string
	}{{netlink.FAMILY_V4, "IPv4"}, {netlink.FAMILY_V6, "IPv6"}} {
		routes, err := routeList(h, fam.family)
		if err != nil {
			return fmt.Errorf("listing %s routes%s: %w", fam.name, where(Host), err)
		}
		for _, r := range routes {
			if !isDefault(r) {
				continue
			}
			for _, index := range routeLinks(r) {
				if hl := byIndex[index]; hl != nil && !slices.Contains(hl.DefaultRoutes, fam.name) {
					hl.DefaultRoutes = append(hl.DefaultRoutes, fam.name)
				}
			}
		}
	}
	return nil
}

// isDefault: a route to 0.0.0.0/0 or ::/0 (netlink reports those with a zero Dst, or none).
func isDefault(r netlink.Route) bool {
	if r.Dst == nil {
		return true
	}
	ones, _ := r.Dst.Mask.Size()
	return ones == 0
}

// routeLinks are the links a route leaves through: its own, or each path's.
func routeLinks(r netlink.Route) []int {
	out := []int{}
	if r.LinkIndex != 0 {
		out = append(out, r.LinkIndex)
	}
	for _, p := range r.MultiPath {
		out = append(out, p.LinkIndex)
	}
	return out
}
