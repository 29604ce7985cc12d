package netbind

import (
	"encoding/binary"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// guidLen is the length of an InfiniBand node or port GUID (an EUI-64).
const guidLen = 8

func (k Netlink) SetVFGUID(pf string, vf int, node, port net.HardwareAddr) error {
	guids := []struct {
		kind string
		guid net.HardwareAddr
		attr int
	}{{"node", node, nl.IFLA_VF_IB_NODE_GUID}, {"port", port, nl.IFLA_VF_IB_PORT_GUID}}
	for _, g := range guids {
		if len(g.guid) != guidLen {
			return fmt.Errorf("VF %d of %s: %s GUID %q has %d bytes, want %d (like 02:00:00:00:0a:38:00:05)",
				vf, pf, g.kind, g.guid, len(g.guid), guidLen)
		}
	}
	return k.with(Host, pf, func(h *netlink.Handle, l netlink.Link) error {
		for _, g := range guids {
			if err := h.LinkSetVfGUID(l, vf, g.guid, g.attr); err != nil {
				return fmt.Errorf("setting the %s GUID of VF %d of %s to %s: %w", g.kind, vf, pf, g.guid, err)
			}
		}
		return nil
	})
}

// VFGUID reads a VF's GUIDs from its PF's IFLA_VF_INFO, which the kernel fills from the
// driver (IFLA_VF_IB_NODE_GUID, IFLA_VF_IB_PORT_GUID) but netlink does not parse.
func (k Netlink) VFGUID(pf string, vf int) (node, port net.HardwareAddr, err error) {
	var msg []byte
	err = k.with(Host, pf, func(_ *netlink.Handle, l netlink.Link) error {
		var err error
		msg, err = k.linkWithVFs(l.Attrs().Index)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("reading the GUIDs of VF %d of %s: %w", vf, pf, err)
	}
	node, port, err = vfGUIDs(msg, vf)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the GUIDs of VF %d of %s: %w", vf, pf, err)
	}
	return node, port, nil
}

// linkWithVFs asks the host namespace for one link with its VF information (RTEXT_FILTER_VF)
// and returns the raw RTM_NEWLINK answer.
func (k Netlink) linkWithVFs(index int) ([]byte, error) {
	target := netns.None()
	if k.HostNS != "" {
		h, err := netns.GetFromPath(k.HostNS)
		if err != nil {
			return nil, fmt.Errorf("opening network namespace %s: %w", k.HostNS, err)
		}
		defer h.Close()
		target = h
	}
	s, err := nl.GetNetlinkSocketAt(target, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	req := &nl.NetlinkRequest{
		NlMsghdr: unix.NlMsghdr{Len: unix.SizeofNlMsghdr, Type: unix.RTM_GETLINK, Flags: unix.NLM_F_REQUEST | unix.NLM_F_ACK},
		Sockets:  map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: s}},
	}
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_EXT_MASK, nl.Uint32Attr(nl.RTEXT_FILTER_VF)))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
	if err != nil {
		return nil, err
	}
	if len(msgs) != 1 {
		return nil, fmt.Errorf("the kernel answered %d messages for one link", len(msgs))
	}
	return msgs[0], nil
}

// vfGUIDs finds VF vf in an RTM_NEWLINK message and returns its node and port GUIDs.
func vfGUIDs(msg []byte, vf int) (node, port net.HardwareAddr, err error) {
	if len(msg) < unix.SizeofIfInfomsg {
		return nil, nil, fmt.Errorf("short link message (%d bytes)", len(msg))
	}
	attrs, err := nl.ParseRouteAttr(msg[unix.SizeofIfInfomsg:])
	if err != nil {
		return nil, nil, fmt.Errorf("parsing the link message: %w", err)
	}
	for _, a := range attrs {
		if a.Attr.Type != unix.IFLA_VFINFO_LIST {
			continue
		}
		infos, err := nl.ParseRouteAttr(a.Value)
		if err != nil {
			return nil, nil, fmt.Errorf("parsing the VF list: %w", err)
		}
		for _, info := range infos {
			if found, node, port, err := vfInfoGUIDs(info.Value, vf); found || err != nil {
				return node, port, err
			}
		}
	}
	return nil, nil, fmt.Errorf("the PF reports no VF %d (is SR-IOV on and sriov_numvfs above %d?)", vf, vf)
}

// vfInfoGUIDs reads one IFLA_VF_INFO; found says whether it is VF vf.
func vfInfoGUIDs(info []byte, vf int) (found bool, node, port net.HardwareAddr, err error) {
	fields, err := nl.ParseRouteAttr(info)
	if err != nil {
		return false, nil, nil, fmt.Errorf("parsing VF information: %w", err)
	}
	for _, f := range fields {
		switch {
		case f.Attr.Type == nl.IFLA_VF_MAC && len(f.Value) >= 4:
			found = int(nl.NativeEndian().Uint32(f.Value[:4])) == vf
		case f.Attr.Type == nl.IFLA_VF_IB_NODE_GUID && len(f.Value) >= nl.SizeofVfGUID:
			node = guidOf(f.Value)
		case f.Attr.Type == nl.IFLA_VF_IB_PORT_GUID && len(f.Value) >= nl.SizeofVfGUID:
			port = guidOf(f.Value)
		}
	}
	if found && (node == nil || port == nil) {
		return true, nil, nil, fmt.Errorf("the driver reports no GUIDs for VF %d (not an InfiniBand VF?)", vf)
	}
	return found, node, port, nil
}

// guidOf turns a struct ifla_vf_guid into the GUID as LinkSetVfGUID took it: the u64 it
// carries, big-endian.
func guidOf(b []byte) net.HardwareAddr {
	g := nl.DeserializeVfGUID(b)
	out := make(net.HardwareAddr, guidLen)
	binary.BigEndian.PutUint64(out, g.GUID)
	return out
}
