package shaping

import (
	"fmt"
	"net"
	"strconv"

	"github.com/vishvananda/netlink"
)

// Installed is what the kernel reports of one of topolane's tbfs. Buffer is in ticks, as the
// kernel keeps it (Clock.Size turns it into bytes).
type Installed struct {
	Rate   uint64 // bytes/s
	Peak   uint64 // bytes/s
	Buffer uint32 // ticks
	Limit  uint32 // bytes
}

// Readback is the shaping installed on a device.
type Readback struct {
	Egress     *Installed // the root tbf on the device, if topolane's
	Ingress    *Installed // the root tbf on the ifb
	IFB        string     // the ifb, if it exists
	IFBUp      bool
	Redirected bool // the device's ingress qdisc holds the filter that redirects to the ifb
}

// Read reads back what is installed for a device, looking for the ifb where ifb names it.
func Read(nsPath, device, ifb string) (Readback, error) {
	h, err := handleAt(nsPath)
	if err != nil {
		return Readback{}, err
	}
	defer h.Close()
	dev, err := h.LinkByName(device)
	if err != nil {
		return Readback{}, fmt.Errorf("device %s in %s: %w", device, nsPath, err)
	}
	var r Readback
	if r.Egress, err = installed(h, dev); err != nil {
		return r, err
	}
	l, err := h.LinkByName(ifb)
	if isNotFound(err) {
		return r, nil
	}
	if err != nil {
		return r, err
	}
	r.IFB, r.IFBUp = ifb, l.Attrs().Flags&net.FlagUp != 0
	if r.Ingress, err = installed(h, l); err != nil {
		return r, err
	}
	r.Redirected, err = redirects(h, dev, l)
	return r, err
}

func installed(h *netlink.Handle, link netlink.Link) (*Installed, error) {
	t, err := rootTBF(h, link)
	if t == nil || err != nil {
		return nil, err
	}
	return &Installed{Rate: t.Rate, Peak: t.Peakrate, Buffer: t.Buffer, Limit: t.Limit}, nil
}

// redirects says whether dev's ingress qdisc has topolane's filter redirecting to ifb.
func redirects(h *netlink.Handle, dev, ifb netlink.Link) (bool, error) {
	if q, err := ingressQdisc(h, dev); q == nil || err != nil {
		return false, err
	}
	filters, err := h.FilterList(dev, ingressHandle)
	if err != nil {
		return false, fmt.Errorf("listing filters of %s: %w", dev.Attrs().Name, err)
	}
	for _, f := range filters {
		u, ok := f.(*netlink.U32)
		if !ok || f.Attrs().Priority != filterPriority {
			continue
		}
		for _, a := range u.Actions {
			if m, ok := a.(*netlink.MirredAction); ok && m.MirredAction == netlink.TCA_EGRESS_REDIR && m.Ifindex == ifb.Attrs().Index {
				return true, nil
			}
		}
	}
	return false, nil
}

// Check compares what is installed for the plan with the plan, and lists every difference
// (none: all is as asked). An error means the device could not be read at all.
func Check(p Plan) ([]string, error) {
	ifb := p.IFB
	if ifb == "" {
		ifb = IFBName(p.Device)
	}
	r, err := Read(p.Netns, p.Device, ifb)
	if err != nil {
		return nil, err
	}
	return r.diff(p, KernelClock()), nil
}

func (r Readback) diff(p Plan, clk Clock) []string {
	out := compare("egress of "+p.Device, p.Egress, r.Egress, clk)
	if p.Ingress == nil {
		if r.IFB != "" && r.Ingress != nil {
			out = append(out, fmt.Sprintf("ingress of %s: %s shapes it, but no ingress shaping is asked", p.Device, r.IFB))
		}
		return out
	}
	switch {
	case r.IFB == "":
		return append(out, fmt.Sprintf("ingress of %s: ifb %s is missing", p.Device, p.IFB))
	case !r.IFBUp:
		out = append(out, fmt.Sprintf("ingress of %s: ifb %s is down", p.Device, r.IFB))
	}
	if !r.Redirected {
		out = append(out, fmt.Sprintf("ingress of %s: nothing redirects it to %s", p.Device, r.IFB))
	}
	return append(out, compare("ingress of "+p.Device+" (on "+r.IFB+")", p.Ingress, r.Ingress, clk)...)
}

func compare(what string, want *TBF, got *Installed, clk Clock) []string {
	switch {
	case want == nil && got == nil:
		return nil
	case want == nil:
		return []string{what + ": a topolane tbf is installed, but no shaping is asked"}
	case got == nil:
		return []string{fmt.Sprintf("%s: no tbf installed (asked: rate %s)", what, bitRate(want.Rate))}
	}
	var out []string
	field := func(name, gotS, wantS string) {
		if gotS != wantS {
			out = append(out, fmt.Sprintf("%s: %s is %s, asked %s", what, name, gotS, wantS))
		}
	}
	field("rate", bitRate(got.Rate), bitRate(want.Rate))
	field("peak", bitRate(got.Peak), bitRate(want.Peak))
	ticks, _ := clk.Ticks(want.Rate, uint64(want.Burst))
	if got.Buffer != ticks {
		field("burst", fmt.Sprintf("%d bytes (%d ticks)", clk.Size(got.Rate, got.Buffer), got.Buffer), fmt.Sprintf("%d bytes (%d ticks)", want.Burst, ticks))
	}
	field("limit", fmt.Sprintf("%d bytes", got.Limit), fmt.Sprintf("%d bytes", want.Limit))
	return out
}

// bitRate writes bytes/s as bit/s, exactly.
func bitRate(bytesPerSec uint64) string {
	if bytesPerSec == 0 {
		return "none"
	}
	return strconv.FormatUint(bytesPerSec*8, 10) + " bit/s"
}
