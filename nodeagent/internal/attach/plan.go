package attach

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"strings"

	"github.com/topolane/topolane/nodeagent/internal/netbind"
	"github.com/topolane/topolane/nodeagent/internal/shaping"
	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/placement"
)

// plan decides the devices and reads what must be restored; it changes nothing.
func (a *Attacher) plan(ctx context.Context, q Request) (*Record, error) {
	node := a.Topology()
	if node == nil {
		return nil, coded(CodeTryAgain, fmt.Errorf("the agent has not discovered this node's topology yet: retry shortly"))
	}
	conf, err := parseNetConf(q.NetConf)
	if err != nil {
		return nil, coded(CodeConfig, err)
	}
	pod, err := a.Pods.Get(ctx, q.PodNamespace, q.PodName)
	if err != nil {
		return nil, coded(CodePod, fmt.Errorf("pod %s: %w", q.key(), err))
	}
	limits, err := shaping.Parse(pod.Annotations, conf.Bandwidth)
	if err != nil {
		return nil, coded(CodeConfig, err)
	}
	d, err := a.decideFor(ctx, node, pod, q)
	if err != nil {
		return nil, err
	}
	r, err := a.newRecord(q, pod, conf, d)
	if err != nil {
		return nil, err
	}
	for i := range r.Devices {
		if err := a.prepare(node, r, &r.Devices[i], limits); err != nil {
			return nil, coded(CodeDevice, err)
		}
	}
	return r, nil
}

// decideFor decides the pod's devices among what the node's other attachments leave and what
// the host does not keep for itself now.
func (a *Attacher) decideFor(ctx context.Context, node *topology.Node, pod Pod, q Request) (decision, error) {
	allocated, err := a.GPUs.Allocated(ctx)
	if err != nil {
		return decision{}, fmt.Errorf("asking kubelet which GPUs the pods have: %w", err)
	}
	held, err := a.held(q)
	if err != nil {
		return decision{}, err
	}
	if node, err = a.withoutHostUse(node); err != nil {
		return decision{}, err
	}
	d, err := decide(node, pod, q.key(), allocated, held)
	return d, coded(CodeDevice, err)
}

func (a *Attacher) newRecord(q Request, pod Pod, conf netConf, d decision) (*Record, error) {
	boot, err := a.bootID()
	if err != nil {
		return nil, err
	}
	names, err := a.ifNames(q, len(d.choices))
	if err != nil {
		return nil, coded(CodeEnv, err)
	}
	r := &Record{ContainerID: q.ContainerID, IfName: q.IfName, Netns: q.Netns, Pod: q.key(), PodUID: pod.UID, Network: conf.Name,
		BootID: boot, NetConf: q.NetConf, CNIPath: q.CNIPath, CNIArgs: q.Args, IPAMType: conf.IPAM.Type, GPUs: d.gpus}
	for i, c := range d.choices {
		r.Devices = append(r.Devices, Device{IfName: names[i], Rail: c.Rail, Kind: c.Kind, NIC: c.NIC, Device: c.Device,
			Level: c.Level.String(), GPUs: c.GPUs, VFIndex: c.VFIndex,
			TempName: tempName(q, i), Alias: "topolane:" + q.ContainerID[:min(len(q.ContainerID), 24)] + ":" + names[i]})
		if len(d.choices) > 1 {
			r.Devices[i].Table = firstTable + i
		}
	}
	return r, nil
}

// firstTable is the routing table of a pod's first device when it has several (Multihome).
const firstTable = 1000

// ifNames names the devices in the pod: CNI_IFNAME, then CNI_IFNAME_1, CNI_IFNAME_2, ... in GPU
// order. Chained after a plugin that took CNI_IFNAME itself, they are CNI_IFNAME_1, ...
func (a *Attacher) ifNames(q Request, n int) ([]string, error) {
	first := 0
	if _, err := a.Kernel.Link(q.Netns, q.IfName); err == nil {
		first = 1 // taken by the previous plugin of a chain
	}
	names := make([]string, n)
	for i := range names {
		names[i] = q.IfName
		if i+first > 0 {
			names[i] = fmt.Sprintf("%s_%d", q.IfName, i+first)
		}
		if len(names[i]) > 15 {
			return nil, fmt.Errorf("CNI_IFNAME %q leaves no room to name the pod's %d devices (%s is over the kernel's 15 characters): use a shorter name such as net1",
				q.IfName, n, names[i])
		}
	}
	return names, nil
}

// prepare finds the device on the host by its PCI address and reads what DEL restores.
func (a *Attacher) prepare(node *topology.Node, r *Record, d *Device, limits shaping.Limits) error {
	nic := node.NIC(d.NIC)
	if nic == nil {
		return fmt.Errorf("NIC %s is not in the node's topology", d.NIC)
	}
	d.RDMA, d.InfiniBand = nic.RDMADevice, nic.LinkLayer == topology.LinkLayerInfiniBand
	if err := a.hostNames(nic, d); err != nil {
		return err
	}
	if d.Kind == placement.KindVF {
		d.RDMA = vfRDMA(nic, d.Device)
		if d.InfiniBand && d.RDMA == "" {
			return fmt.Errorf("VF %s of InfiniBand NIC %s has no RDMA device: it cannot carry NCCL's traffic", d.Device, d.NIC)
		}
	}
	d.MoveRDMA = node.RDMANetnsMode == topology.RDMANetnsExclusive && d.RDMA != "" && d.Kind != placement.KindMacvlan
	if err := a.readOriginals(d); err != nil {
		return err
	}
	return a.planShaping(r, d, limits)
}

func vfRDMA(nic *topology.NIC, addr string) string {
	for _, vf := range nic.SRIOV.VFs {
		if vf.PCIAddress == addr {
			return vf.RDMADevice
		}
	}
	return ""
}

// hostNames fills the device's host netdev (and its PF's) as they are named now.
func (a *Attacher) hostNames(nic *topology.NIC, d *Device) error {
	pf, err := a.Netdevs.NetDev(d.NIC)
	if err != nil {
		return fmt.Errorf("NIC %s has no network interface in the host namespace: %w", d.NIC, err)
	}
	switch d.Kind {
	case placement.KindPF:
		d.HostName = pf
	case placement.KindMacvlan:
		d.PF = pf
	case placement.KindVF:
		d.PF = pf
		if d.HostName, err = a.Netdevs.NetDev(d.Device); err != nil {
			return fmt.Errorf("VF %s of %s has no network interface in the host namespace (given to another pod, or bound to vfio-pci?): %w", d.Device, d.NIC, err)
		}
	}
	return nil
}

// readOriginals records what DEL restores: the device's alias, MAC and state, a VF's MAC or
// GUIDs set through its PF.
func (a *Attacher) readOriginals(d *Device) error {
	name := d.HostName
	if d.Kind == placement.KindMacvlan {
		name = d.PF
	}
	st, err := a.Kernel.Link(netbind.Host, name)
	if err != nil {
		return fmt.Errorf("%s %s (%s) is not in the host namespace: is it given to another pod? (%w)", d.Kind, d.Device, name, err)
	}
	d.MTU = st.MTU
	if d.Kind == placement.KindMacvlan {
		return nil
	}
	d.OrigAlias, d.OrigMAC, d.WasUp = st.Alias, st.MAC.String(), st.Up
	if d.Kind != placement.KindVF {
		return nil
	}
	if d.InfiniBand {
		node, port, err := a.Kernel.VFGUID(d.PF, d.VFIndex)
		if err != nil {
			return fmt.Errorf("reading VF %d's GUIDs on %s: %w", d.VFIndex, d.PF, err)
		}
		d.OrigNodeGUID, d.OrigPortGUID = node.String(), port.String()
		return nil
	}
	mac, err := a.Kernel.VFMAC(d.PF, d.VFIndex)
	if err != nil {
		return fmt.Errorf("reading VF %d's MAC on %s: %w", d.VFIndex, d.PF, err)
	}
	d.OrigVFMAC = mac.String()
	return nil
}

// planShaping computes the device's bandwidth limits in the pod (the device keeps its MTU) and
// a VF's hardware ceiling; bounds that depend on the MTU are the pod's error.
func (a *Attacher) planShaping(r *Record, d *Device, limits shaping.Limits) error {
	if limits.IsZero() {
		return nil
	}
	s, err := limits.Shape(d.MTU)
	if err != nil {
		return coded(CodeConfig, err)
	}
	d.Shaping = &shaping.Plan{Netns: r.Netns, Device: d.IfName, Shape: s}
	if s.Ingress != nil {
		d.Shaping.IFB = shaping.IFBName(d.IfName)
	}
	if d.Kind != placement.KindVF {
		return nil
	}
	c, ok, err := shaping.PrepareVFCeiling(a.Kernel, d.PF, d.VFIndex, limits)
	if ok {
		d.VFCeiling = &c
	}
	return err
}

// held is what the node's other attachments hold, with the GPUs they serve. A record that
// cannot be read is left out, as Journal.All says, and reported by every reconcile: it must not
// stop the node's other pods (a device it holds that is still in a pod is not in the host, and
// an ADD that chooses it is refused there).
func (a *Attacher) held(q Request) ([]placement.Allocation, error) {
	records, _ := a.Journal.All()
	var out []placement.Allocation
	for _, r := range records {
		if r.ContainerID == q.ContainerID && r.IfName == q.IfName {
			continue
		}
		for _, d := range r.Devices {
			out = append(out, placement.Allocation{Pod: r.Pod, Kind: d.Kind, NIC: d.NIC, Device: d.Device, GPUs: d.GPUs})
		}
	}
	return out, nil
}

// withoutHostUse is the node with every NIC the host uses right now excluded: discovery may be
// minutes old, and a NIC given to a pod takes the host's address or route with it.
func (a *Attacher) withoutHostUse(node *topology.Node) (*topology.Node, error) {
	if a.HostUse == nil {
		return node, nil
	}
	names := map[string]string{} // netdev -> PCI address
	for _, nic := range node.NICs {
		if nic.Eligible() {
			if name, err := a.Netdevs.NetDev(nic.PCIAddress); err == nil {
				names[name] = nic.PCIAddress
			}
		}
	}
	netdevs := make([]string, 0, len(names))
	for n := range names {
		netdevs = append(netdevs, n)
	}
	kept, err := a.HostUse.Kept(netdevs)
	if err != nil {
		return nil, fmt.Errorf("reading how the host uses its links: %w", err)
	}
	if len(kept) == 0 {
		return node, nil
	}
	node = node.DeepCopy()
	for name, why := range kept {
		node.NIC(names[name]).Excluded = why + " (seen at ADD)"
	}
	return node, nil
}

// tempName is a device's name while it moves: unique per attachment and device, within 15
// characters.
func tempName(q Request, device int) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%s/%d", q.ContainerID, q.IfName, device)
	return fmt.Sprintf("tl%08x", h.Sum32())
}

// bootID reads the kernel's boot id, which changes with every boot.
func (a *Attacher) bootID() (string, error) {
	if a.BootID != nil {
		return a.BootID()
	}
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("reading the boot id: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}
