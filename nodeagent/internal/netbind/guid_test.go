package netbind

import (
	"encoding/binary"
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

func guid(s string) net.HardwareAddr {
	g, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return g
}

// TestSetVFGUIDErrors: a GUID of the wrong length is refused before the kernel is asked; the
// kernel's refusal (a veth has no VFs) names the PF and the VF.
func TestSetVFGUIDErrors(t *testing.T) {
	n, h := newNS(t)
	veth(t, h, "ib-pf")
	k := Netlink{HostNS: n.Path()}
	good := guid("02:00:00:00:0a:38:00:05")
	for _, tt := range []struct {
		name       string
		pf         string
		node, port net.HardwareAddr
		want       string
	}{
		{"short node GUID", "no-such-pf", guid("02:00:0a:38:00:05"), good, "VF 3 of no-such-pf: node GUID \"02:00:0a:38:00:05\" has 6 bytes, want 8"},
		{"missing port GUID", "no-such-pf", good, nil, "VF 3 of no-such-pf: port GUID \"\" has 0 bytes, want 8"},
		{"no such PF", "no-such-pf", good, good, "link no-such-pf in the host namespace"},
		{"a PF without VFs", "ib-pf", good, good, "setting the node GUID of VF 3 of ib-pf to 02:00:00:00:0a:38:00:05"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := k.SetVFGUID(tt.pf, 3, tt.node, tt.port)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("SetVFGUID: %v, want %q", err, tt.want)
			}
		})
	}
}

// TestVFGUIDAsksTheKernel reads a real link with its VF information: a veth has no VF 0.
func TestVFGUIDAsksTheKernel(t *testing.T) {
	n, h := newNS(t)
	veth(t, h, "ib-pf")
	_, _, err := Netlink{HostNS: n.Path()}.VFGUID("ib-pf", 0)
	if want := "reading the GUIDs of VF 0 of ib-pf: the PF reports no VF 0"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("VFGUID: %v, want %q", err, want)
	}
}

// TestVFGUIDParse reads GUIDs out of an RTM_NEWLINK message laid out as the kernel sends it
// for a PF with two InfiniBand VFs and one Ethernet VF, each GUID encoded as LinkSetVfGUID
// sends it.
func TestVFGUIDParse(t *testing.T) {
	msg := linkMessage(
		vfInfoAttr(0, guid("02:00:00:00:00:00:00:01"), guid("02:00:00:00:00:00:01:01")),
		vfInfoAttr(1, guid("02:00:00:00:0a:38:00:05"), guid("02:00:00:01:0a:38:00:05")),
		vfInfoAttr(2, nil, nil),
	)
	for _, tt := range []struct {
		vf         int
		node, port net.HardwareAddr
		wantErr    string
	}{
		{0, guid("02:00:00:00:00:00:00:01"), guid("02:00:00:00:00:00:01:01"), ""},
		{1, guid("02:00:00:00:0a:38:00:05"), guid("02:00:00:01:0a:38:00:05"), ""},
		{2, nil, nil, "the driver reports no GUIDs for VF 2 (not an InfiniBand VF?)"},
		{5, nil, nil, "the PF reports no VF 5 (is SR-IOV on and sriov_numvfs above 5?)"},
	} {
		node, port, err := vfGUIDs(msg, tt.vf)
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("VF %d: error %v, want %q", tt.vf, err, tt.wantErr)
		}
		if diff := cmp.Diff([]net.HardwareAddr{tt.node, tt.port}, []net.HardwareAddr{node, port}); diff != "" {
			t.Errorf("VF %d GUIDs (-want +got):\n%s", tt.vf, diff)
		}
	}
	if _, _, err := vfGUIDs(msg[:8], 0); err == nil {
		t.Error("a truncated message should be an error")
	}
}

func linkMessage(vfs ...*nl.RtAttr) []byte {
	list := nl.NewRtAttr(unix.IFLA_VFINFO_LIST, nil)
	for _, vf := range vfs {
		list.AddChild(vf)
	}
	out := nl.NewIfInfomsg(unix.AF_UNSPEC).Serialize()
	out = append(out, nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated("ib0")).Serialize()...)
	return append(out, list.Serialize()...)
}

func vfInfoAttr(vf int, node, port net.HardwareAddr) *nl.RtAttr {
	info := nl.NewRtAttr(nl.IFLA_VF_INFO, nil)
	mac := nl.VfMac{Vf: uint32(vf)}
	info.AddRtAttr(nl.IFLA_VF_MAC, mac.Serialize())
	for attr, g := range map[int]net.HardwareAddr{nl.IFLA_VF_IB_NODE_GUID: node, nl.IFLA_VF_IB_PORT_GUID: port} {
		if g != nil {
			v := nl.VfGUID{Vf: uint32(vf), GUID: binary.BigEndian.Uint64(g)}
			info.AddRtAttr(attr, v.Serialize())
		}
	}
	return info
}
