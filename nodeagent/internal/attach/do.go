package attach

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/topolane/topolane/nodeagent/internal/netbind"
	"github.com/topolane/topolane/nodeagent/internal/shaping"
	"github.com/topolane/topolane/topology/placement"
)

// step is one step of ADD, taken for every device in turn.
type step struct {
	step Step
	run  func(d *Device) error
}

// do takes the steps, every device in turn. The record is journaled once before the first step,
// saying that every step may have been taken: after a crash anywhere, undo reverses them all, and
// each undo is harmless if its step was not taken (what undo restores, the device's name, MAC,
// alias and state, was read before). It is journaled once more when all is done, with what CHECK
// and a repeated ADD read (the addresses, the MACs given). Two writes an ADD, each an fsync,
// whatever the number of devices.
func (a *Attacher) do(ctx context.Context, r *Record) error {
	steps := []step{
		{StepIPAM, func(d *Device) error { return a.ipam(ctx, r, d) }},
		{StepHostName, a.prepareOnHost},
		{StepVFConfig, func(d *Device) error { return a.configureVF(ctx, r, d) }},
		{StepMoved, func(d *Device) error { return a.move(r, d) }},
		{StepConfigured, func(d *Device) error { return a.configure(r, d) }},
		{StepShaped, func(d *Device) error { return a.shape(ctx, d) }},
	}
	r.Step = StepAccel
	if err := a.Journal.Save(r); err != nil {
		return err
	}
	for _, s := range steps {
		if s.step == StepVFConfig {
			if err := fillVFIdentities(r); err != nil {
				return err
			}
		}
		if err := a.runStep(r, s); err != nil {
			return err
		}
	}
	if err := writeAccel(a.AccelDir, r.PodUID, accelOf(r)); err != nil {
		return err
	}
	a.after("add", StepAccel, -1)
	r.Step = StepDone
	return a.Journal.Save(r)
}

// runStep takes one step for every device.
func (a *Attacher) runStep(r *Record, s step) error {
	for i := range r.Devices {
		if err := s.run(&r.Devices[i]); err != nil {
			if s.step == StepIPAM {
				noAddresses(r.Devices[i:]) // a failed IPAM ADD holds nothing (CNI spec), and the rest were not asked
				return coded(CodeIPAM, err)
			}
			return fmt.Errorf("%s of %s %s: %w", s.step, r.Devices[i].Kind, r.Devices[i].Device, err)
		}
		a.after("add", s.step, i)
	}
	return nil
}

func noAddresses(ds []Device) {
	for i := range ds {
		ds[i].NoAddresses = true
	}
}

func (a *Attacher) ipam(ctx context.Context, r *Record, d *Device) error {
	res, err := ipamAdd(ctx, r, d)
	if err != nil {
		return err
	}
	d.IPAMResult, err = marshalResult(res)
	return err
}

// fillVFIdentities derives each VF's MAC (Ethernet) or GUIDs (InfiniBand) from its first
// address: journaled before they are set.
func fillVFIdentities(r *Record) error {
	for i := range r.Devices {
		d := &r.Devices[i]
		if d.Kind != placement.KindVF {
			continue
		}
		ip, err := firstIPv4(d)
		if err != nil {
			return err
		}
		b := byte(networkHash(r.Network))
		if d.InfiniBand {
			d.NodeGUID = net.HardwareAddr{0x02, b, 0, 0, ip[0], ip[1], ip[2], ip[3]}.String()
			d.PortGUID = net.HardwareAddr{0x02, b, 0, 1, ip[0], ip[1], ip[2], ip[3]}.String()
		} else {
			d.MAC = net.HardwareAddr{0x02, b, ip[0], ip[1], ip[2], ip[3]}.String()
		}
	}
	return nil
}

// firstIPv4 is the device's first IPv4 address, or the last 4 bytes of its first address: locally
// administered identities are unique on the node as the addresses are, with a byte of the
// network's name so that two networks with the same addresses differ.
func firstIPv4(d *Device) (net.IP, error) {
	res, err := ipamResult(d)
	if err != nil {
		return nil, err
	}
	ip := res.IPs[0].Address.IP
	for _, c := range res.IPs {
		if v4 := c.Address.IP.To4(); v4 != nil {
			return v4, nil
		}
	}
	return ip[len(ip)-4:], nil
}

func networkHash(name string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return h.Sum32()
}

// prepareOnHost downs the device and gives it its temporary name; a macvlan is created under it
// and marked with its alias.
func (a *Attacher) prepareOnHost(d *Device) error {
	k := a.Kernel
	if d.Kind == placement.KindMacvlan {
		if err := k.AddMacvlan(d.PF, d.TempName); err != nil {
			return err
		}
		return k.SetAlias(netbind.Host, d.TempName, d.Alias)
	}
	if err := k.SetAlias(netbind.Host, d.HostName, d.Alias); err != nil {
		return err
	}
	if err := k.SetUp(netbind.Host, d.HostName, false); err != nil {
		return err
	}
	return k.Rename(netbind.Host, d.HostName, d.TempName)
}

// configureVF sets a VF's MAC or GUIDs and its rate ceiling through its PF.
func (a *Attacher) configureVF(ctx context.Context, r *Record, d *Device) error {
	if d.Kind != placement.KindVF {
		return nil
	}
	if err := a.setVFIdentity(d, d.MAC, d.NodeGUID, d.PortGUID); err != nil {
		return err
	}
	if d.VFCeiling == nil {
		return nil
	}
	err := shaping.ApplyVFCeiling(a.Kernel, *d.VFCeiling)
	if errors.Is(err, shaping.ErrVFRateUnsupported) {
		d.VFCeiling.Unsupported = true // journaled with the rest when ADD is done
		if a.Reporter != nil {
			a.Reporter.Warn(ctx, r, "VFRateUnsupported", err.Error())
		}
		return nil
	}
	return err
}

// setVFIdentity sets a VF's MAC (Ethernet) or node and port GUIDs (InfiniBand).
func (a *Attacher) setVFIdentity(d *Device, mac, nodeGUID, portGUID string) error {
	if d.InfiniBand {
		node, _ := net.ParseMAC(nodeGUID)
		port, _ := net.ParseMAC(portGUID)
		return a.Kernel.SetVFGUID(d.PF, d.VFIndex, node, port)
	}
	m, _ := net.ParseMAC(mac)
	return a.Kernel.SetVFMAC(d.PF, d.VFIndex, m)
}

// move moves the device, and in exclusive mode its RDMA device, into the pod's namespace, where
// it takes its name in the same request.
func (a *Attacher) move(r *Record, d *Device) error {
	if d.MoveRDMA {
		if err := a.Kernel.MoveRDMA(netbind.Host, d.RDMA, r.Netns); err != nil {
			return err
		}
	}
	return a.Kernel.Move(netbind.Host, d.TempName, r.Netns, d.IfName)
}

// configure gives the device inside the pod its MAC (an Ethernet VF), addresses and routes, and
// brings it up. A route without a gateway takes the gateway of its address's subnet.
func (a *Attacher) configure(r *Record, d *Device) error {
	k := a.Kernel
	res, err := ipamResult(d)
	if err != nil {
		return err
	}
	if d.MAC != "" {
		mac, _ := net.ParseMAC(d.MAC)
		if err := k.SetMAC(r.Netns, d.IfName, mac); err != nil {
			return err
		}
	}
	for _, ip := range res.IPs {
		addr := ip.Address
		if err := k.AddAddr(r.Netns, d.IfName, &addr); err != nil {
			return fmt.Errorf("address %s: %w", addr.String(), err)
		}
	}
	if err := k.SetUp(r.Netns, d.IfName, true); err != nil {
		return err
	}
	for _, rt := range res.Routes {
		dst, gw := rt.Dst, rt.GW
		if gw == nil {
			gw = gatewayFor(res, &dst)
		}
		if err := k.AddRoute(r.Netns, d.IfName, &dst, gw); err != nil {
			return fmt.Errorf("route %s: %w", dst.String(), err)
		}
	}
	return a.multihome(r, d, res)
}

// multihome makes each device of a pod with several answer and send for its own addresses only
// (see netbind.Netlink.Multihome): rails often share one subnet.
func (a *Attacher) multihome(r *Record, d *Device, res *current.Result) error {
	if d.Table == 0 {
		return nil
	}
	for _, ip := range res.IPs {
		addr := ip.Address
		if err := a.Kernel.Multihome(r.Netns, d.IfName, &addr, d.Table, ip.Gateway); err != nil {
			return fmt.Errorf("%s's own routes: %w", d.IfName, err)
		}
	}
	return nil
}

// shape applies the device's bandwidth limits in the pod's namespace.
func (a *Attacher) shape(ctx context.Context, d *Device) error {
	if d.Shaping == nil {
		return nil
	}
	return shaping.Apply(ctx, *d.Shaping)
}
