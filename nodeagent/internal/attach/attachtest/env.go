package attachtest

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/topolane/topolane/nodeagent/internal/attach"
)

// Rename renames a link in a namespace, as udev would on the host.
func (e *Env) Rename(nsPath, name, to string) {
	e.T.Helper()
	h := e.Handle(nsPath)
	defer h.Close()
	l, err := h.LinkByName(name)
	if err == nil {
		err = h.LinkSetName(l, to)
	}
	if err != nil {
		e.T.Fatalf("renaming %s: %v", name, err)
	}
}

// MoveTo moves a host link into another namespace, as something else than topolane would.
func (e *Env) MoveTo(name, nsPath string) {
	e.T.Helper()
	h := e.Handle(e.Fx.HostNS)
	defer h.Close()
	to, err := netns.GetFromPath(nsPath)
	if err != nil {
		e.T.Fatal(err)
	}
	defer to.Close()
	l, err := h.LinkByName(name)
	if err == nil {
		err = h.LinkSetNsFd(l, int(to))
	}
	if err != nil {
		e.T.Fatalf("moving %s: %v", name, err)
	}
}

// AddLink creates a link (a veth end) in a namespace, as the previous plugin of a chain would.
func (e *Env) AddLink(nsPath, name string) {
	e.T.Helper()
	h := e.Handle(nsPath)
	defer h.Close()
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: "p" + name}); err != nil {
		e.T.Fatal(err)
	}
}

// hostAddr is the address HostUses gives a link.
var hostAddr = &net.IPNet{IP: net.IPv4(10, 99, 0, 1), Mask: net.CIDRMask(24, 32)}

// HostUses makes the host use a link: its address and the default route through it.
func (e *Env) HostUses(name string) {
	e.T.Helper()
	h := e.Handle(e.Fx.HostNS)
	defer h.Close()
	l, err := h.LinkByName(name)
	if err == nil {
		err = h.LinkSetUp(l)
	}
	if err == nil {
		err = h.AddrAdd(l, &netlink.Addr{IPNet: hostAddr})
	}
	if err == nil {
		err = h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.IPv4(10, 99, 0, 254)})
	}
	if err != nil {
		e.T.Fatalf("giving %s to the host: %v", name, err)
	}
}

// HostStillUses reports whether the link is in the host namespace with the host's address.
func (e *Env) HostStillUses(name string) bool {
	h := e.Handle(e.Fx.HostNS)
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		return false
	}
	addrs, _ := h.AddrList(l, netlink.FAMILY_V4)
	for _, a := range addrs {
		if a.IP.Equal(hostAddr.IP) {
			return true
		}
	}
	return false
}

// InHost reports whether the PCI function's stand-in is in the host namespace.
func (e *Env) InHost(pci string) bool {
	_, err := e.Att.Netdevs.NetDev(pci)
	return err == nil
}

// FailVFMAC makes setting a VF's MAC through its PF fail with msg; "" heals it.
func (e *Env) FailVFMAC(msg string) { e.FailKernel("SetVFMAC", msg) }

// KillPodNS deletes a pod's namespace as a runtime does after the pod, and, as the kernel does
// with physical devices, returns the stand-ins in it to the host, after a delay.
func (e *Env) KillPodNS(pod ns.NetNS, delay time.Duration) {
	e.T.Helper()
	holding, err := testutils.NewNS()
	if err != nil {
		e.T.Fatal(err)
	}
	h := e.Handle(pod.Path())
	links, _ := h.LinkList()
	hold, _ := netns.GetFromPath(holding.Path())
	for _, l := range links {
		if l.Type() == "veth" && strings.HasPrefix(l.Attrs().Alias, "topolane:") {
			_ = h.LinkSetNsFd(l, int(hold))
		}
	}
	hold.Close()
	h.Close()
	pod.Close()
	if err := Unmount(pod.Path()); err != nil {
		e.T.Fatal(err)
	}
	go func() {
		time.Sleep(delay)
		hh := e.Handle(holding.Path())
		defer hh.Close()
		host, _ := netns.GetFromPath(e.Fx.HostNS)
		defer host.Close()
		ls, _ := hh.LinkList()
		for _, l := range ls {
			if l.Type() == "veth" {
				_ = hh.LinkSetNsFd(l, int(host))
			}
		}
		holding.Close()
		_ = testutils.UnmountNS(holding)
	}()
}

// DowngradeJournal rewrites the attachment's record as an agent before rails wrote it: one
// device, its fields the record's own, steps numbered as they were, under the old file name.
func (e *Env) DowngradeJournal(q attach.Request) {
	e.T.Helper()
	r, ok, err := e.Att.Journal.Load(q.ContainerID, q.IfName)
	if err != nil || !ok || len(r.Devices) != 1 {
		e.T.Fatalf("no one-device record to downgrade: %v", err)
	}
	old := map[string]any{}
	for _, v := range []any{r.Devices[0], r} {
		data, _ := json.Marshal(v)
		_ = json.Unmarshal(data, &old)
	}
	delete(old, "devices")
	if r.Step >= attach.StepAccel {
		old["step"] = int(r.Step) - 1
	}
	data, _ := json.Marshal(old)
	dir := e.Att.Journal.Dir
	if err := os.WriteFile(filepath.Join(dir, q.ContainerID+"_"+q.IfName+".json"), data, 0o600); err != nil {
		e.T.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, q.ContainerID+"@"+q.IfName+".json")); err != nil {
		e.T.Fatal(err)
	}
}
