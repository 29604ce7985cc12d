package attach

import (
	"net"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// result is the CNI result of a finished attachment: every device as an interface in the pod's
// sandbox, with its addresses, and the routes of all.
func (a *Attacher) result(r *Record) (*current.Result, error) {
	out := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	for i := range r.Devices {
		d := &r.Devices[i]
		res, err := ipamResult(d)
		if err != nil {
			return nil, err
		}
		mac := d.MAC
		if st, err := a.Kernel.Link(r.Netns, d.IfName); err == nil {
			mac = st.MAC.String()
		}
		out.Interfaces = append(out.Interfaces, &current.Interface{Name: d.IfName, Mac: mac, Sandbox: r.Netns, PciID: d.Device})
		for _, ip := range res.IPs {
			c := *ip
			c.Interface = current.Int(i)
			out.IPs = append(out.IPs, &c)
		}
		out.Routes = appendRoutes(out.Routes, res.Routes)
		if i == 0 {
			out.DNS = res.DNS
		}
	}
	return out, nil
}

func appendRoutes(all, more []*types.Route) []*types.Route {
	for _, rt := range more {
		dup := false
		for _, have := range all {
			if have.Dst.String() == rt.Dst.String() && have.GW.Equal(rt.GW) {
				dup = true
			}
		}
		if !dup {
			all = append(all, rt)
		}
	}
	return all
}

func mustMAC(s string) net.HardwareAddr {
	m, _ := net.ParseMAC(s)
	return m
}
