package discovery

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/topolane/topolane/nodeagent/internal/netbind"
	"github.com/topolane/topolane/nodeagent/internal/sysfs"
	"github.com/topolane/topolane/topology"
)

// HostLinks says how the host namespace uses its links (netbind.Netlink on a node).
type HostLinks interface {
	HostLinks() ([]netbind.HostLink, error)
}

var _ HostLinks = netbind.Netlink{}

// hostUse indexes the host's links by name, with the links stacked on each (VLANs, macvlans).
type hostUse struct {
	links   map[string]netbind.HostLink
	stacked map[string][]string
}

func newHostUse(links []netbind.HostLink) hostUse {
	h := hostUse{links: map[string]netbind.HostLink{}, stacked: map[string][]string{}}
	for _, l := range links {
		h.links[l.Name] = l
		if l.Parent != "" {
			h.stacked[l.Parent] = append(h.stacked[l.Parent], l.Name)
		}
	}
	return h
}

// reasons says why the host uses netdev (and what is stacked on it), most serious first: the
// Node's InternalIP, the default route, a master, other addresses.
func (h hostUse) reasons(netdev string, nodeIPs []net.IP) []string {
	var nodeIP, route, master, addrs []string
	h.walk(netdev, map[string]bool{}, func(l netbind.HostLink, on string) {
		var others []string
		for _, ip := range l.Addrs {
			if slices.ContainsFunc(nodeIPs, ip.Equal) {
				nodeIP = append(nodeIP, fmt.Sprintf("holds %s, the Node's InternalIP%s", ip, on))
			} else {
				others = append(others, ip.String())
			}
		}
		if len(l.DefaultRoutes) > 0 {
			route = append(route, defaultRoute(l.DefaultRoutes)+on)
		}
		if l.Master != "" {
			master = append(master, fmt.Sprintf("member of %s%s", l.Master, on))
		}
		if len(others) > 0 {
			addrs = append(addrs, fmt.Sprintf("has the host address%s %s%s", plural(len(others)), strings.Join(others, ", "), on))
		}
	})
	return slices.Concat(nodeIP, route, master, addrs)
}

// walk visits netdev and every link stacked on it; on says where a fact comes from.
func (h hostUse) walk(netdev string, seen map[string]bool, visit func(l netbind.HostLink, on string)) {
	var rec func(name string)
	rec = func(name string) {
		l, ok := h.links[name]
		if !ok || seen[name] {
			return
		}
		seen[name] = true
		on := ""
		if name != netdev {
			on = " (on " + name + ")"
		}
		visit(l, on)
		for _, up := range h.stacked[name] {
			rec(up)
		}
	}
	rec(netdev)
}

func defaultRoute(families []string) string {
	if len(families) == 2 {
		return "carries the IPv4 and IPv6 default routes"
	}
	if families[0] == "IPv6" {
		return "carries the IPv6 default route"
	}
	return "carries the default route"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "es"
}

// markExcluded sets NIC.Excluded on every NIC the host uses or the operator leaves out, and
// warns about selectors that match no NIC.
func markExcluded(r *Result, functions map[string]sysfs.Function, opts Options) error {
	var host hostUse
	if opts.Host != nil {
		links, err := opts.Host.HostLinks()
		if err != nil {
			return fmt.Errorf("reading how the host uses its links, so as never to hand out its own NICs: %w", err)
		}
		host = newHostUse(links)
	}
	used := map[string]bool{}
	for i := range r.Node.NICs {
		nic := &r.Node.NICs[i]
		f := functions[nic.PCIAddress]
		id := nicID{PCIAddress: nic.PCIAddress, Netdev: nic.Name, Vendor: f.Vendor, Device: f.Device}
		if id.Netdev == "" {
			id.Netdev = opts.LastNames[nic.PCIAddress] // in a pod now: its host name still matches globs
		}
		reasons := host.reasons(nic.Name, opts.NodeIPs)
		reasons = append(reasons, selected(id, opts, used)...)
		nic.Excluded = strings.Join(reasons, "; ")
	}
	warnUnused(r, "--nics", opts.NICs, used)
	warnUnused(r, "--exclude-nics", opts.ExcludeNICs, used)
	return nil
}

// selected says why the operator's selectors leave a NIC out, and marks the selectors used.
func selected(id nicID, opts Options, used map[string]bool) []string {
	var out []string
	if s, ok := opts.NICs.match(id); ok {
		used["--nics "+s.Text] = true
	} else if len(opts.NICs) > 0 {
		out = append(out, "not in --nics")
	}
	if s, ok := opts.ExcludeNICs.match(id); ok {
		used["--exclude-nics "+s.Text] = true
		out = append(out, fmt.Sprintf("in --exclude-nics (%s)", s.Text))
	}
	return out
}

// warnUnused names each selector that matched no NIC: a typo, or a VF's address.
func warnUnused(r *Result, flag string, ss Selectors, used map[string]bool) {
	for _, s := range ss {
		if used[flag+" "+s.Text] {
			continue
		}
		why := ""
		if pf := pfOfVF(r.Node, s.PCIAddress); s.PCIAddress != "" && pf != "" {
			why = fmt.Sprintf(": it is a VF, select its PF %s", pf)
		}
		r.warn("%s entry %s matches no NIC of this node%s", flag, s.Text, why)
	}
}

func pfOfVF(n *topology.Node, addr string) string {
	for _, nic := range n.NICs {
		if nic.SRIOV == nil {
			continue
		}
		for _, vf := range nic.SRIOV.VFs {
			if vf.PCIAddress == addr {
				return nic.PCIAddress
			}
		}
	}
	return ""
}

// HostGuard says, at the moment it is asked, which netdevs the host keeps for itself: the
// attacher asks it at every ADD, since discovery may be minutes old.
type HostGuard struct {
	Links HostLinks
	// NodeIPs are the Node's InternalIPs; nil: none known.
	NodeIPs func() []net.IP
}

// Kept returns why the host keeps each of the netdevs it uses.
func (g HostGuard) Kept(netdevs []string) (map[string]string, error) {
	links, err := g.Links.HostLinks()
	if err != nil {
		return nil, err
	}
	var ips []net.IP
	if g.NodeIPs != nil {
		ips = g.NodeIPs()
	}
	h := newHostUse(links)
	out := map[string]string{}
	for _, n := range netdevs {
		if why := h.reasons(n, ips); len(why) > 0 {
			out[n] = strings.Join(why, "; ")
		}
	}
	return out, nil
}
