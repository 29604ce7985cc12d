// Package attach gives a pod the PF or VF it was placed for, and takes it back. ADD decides the
// device (the extender's reservation, the pod's GPUs), asks the IPAM plugin for addresses, moves
// the device into the pod's network namespace under the CNI interface name, configures it and
// writes the pod's acceleration config; each step is journaled before it is taken. DEL and the
// start-up reconcile undo from the journal alone, never deciding again.
package attach

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"sync"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/topolane/topolane/nodeagent/internal/netbind"
	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/placement"
)

// Attacher serves ADD, DEL, CHECK and GC one at a time: pods arriving together on a node must
// not be handed the same device.
type Attacher struct {
	Kernel   netbind.Kernel
	Journal  Journal
	AccelDir string                // acceleration configs: <AccelDir>/<pod UID>/accel.{env,json}
	Topology func() *topology.Node // the node as last discovered; nil until discovery ran
	Pods     Pods
	GPUs     GPUs
	Reporter Reporter // may be nil
	// AfterStep is a test hook called after each step of ADD ("add") and of undoing ("del").
	AfterStep func(op string, s Step)

	mu sync.Mutex
}

// Reporter tells the cluster what the node did: pod annotation, event, NodeTopology status.
type Reporter interface {
	Attached(ctx context.Context, r *Record)
	Detached(ctx context.Context, r *Record)
}

// Request is one CNI call, as the topolane-cni binary hands it over.
type Request struct {
	ContainerID  string   `json:"containerID"`
	Netns        string   `json:"netns"`
	IfName       string   `json:"ifName"`
	PodNamespace string   `json:"podNamespace"`
	PodName      string   `json:"podName"`
	NetConf      []byte   `json:"netConf"`
	CNIPath      []string `json:"cniPath"`
}

func (q Request) key() string { return q.PodNamespace + "/" + q.PodName }

func (q Request) validate(needNetns bool) error {
	switch {
	case q.ContainerID == "":
		return fmt.Errorf("CNI_CONTAINERID is empty")
	case q.IfName == "":
		return fmt.Errorf("CNI_IFNAME is empty")
	case len(q.IfName) > 15:
		return fmt.Errorf("CNI_IFNAME %q is longer than the kernel's 15 characters", q.IfName)
	case needNetns && q.Netns == "":
		return fmt.Errorf("CNI_NETNS is empty")
	case q.PodNamespace == "" || q.PodName == "":
		return fmt.Errorf("CNI_ARGS carries no K8S_POD_NAMESPACE and K8S_POD_NAME: topolane serves Kubernetes pods only")
	}
	return nil
}

func (a *Attacher) after(op string, s Step) {
	if a.AfterStep != nil {
		a.AfterStep(op, s)
	}
}

// Add attaches the device and returns the CNI result. A repeated ADD of a finished attachment
// returns the same result; one that was interrupted is undone and done again.
func (a *Attacher) Add(ctx context.Context, q Request) (*current.Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := q.validate(true); err != nil {
		return nil, coded(CodeEnv, err)
	}
	if r, ok, err := a.Journal.Load(q.ContainerID, q.IfName); err != nil {
		return nil, err
	} else if ok {
		if r.Step == StepDone && !r.Deleting {
			return a.result(r)
		}
		if err := a.undo(ctx, r); err != nil {
			return nil, fmt.Errorf("an earlier ADD of this container was interrupted and could not be undone: %w", err)
		}
	}
	r, err := a.plan(ctx, q)
	if err != nil {
		return nil, err
	}
	if err := a.do(ctx, r); err != nil {
		if uerr := a.undo(ctx, r); uerr != nil {
			return nil, errors.Join(err, fmt.Errorf("and undoing it failed, the journal keeps it for the next start: %w", uerr))
		}
		return nil, err
	}
	if a.Reporter != nil {
		a.Reporter.Attached(ctx, r)
	}
	return a.result(r)
}

// plan decides the device and reads what must be restored; it changes nothing.
func (a *Attacher) plan(ctx context.Context, q Request) (*Record, error) {
	node := a.Topology()
	if node == nil {
		return nil, coded(CodeTryAgain, fmt.Errorf("the agent has not discovered this node's topology yet: retry shortly"))
	}
	network, typ, err := parseNetConf(q.NetConf)
	if err != nil {
		return nil, coded(CodeConfig, err)
	}
	pod, err := a.Pods.Get(ctx, q.PodNamespace, q.PodName)
	if err != nil {
		return nil, coded(CodePod, fmt.Errorf("pod %s: %w", q.key(), err))
	}
	allocated, err := a.GPUs.Allocated(ctx)
	if err != nil {
		return nil, fmt.Errorf("asking kubelet which GPUs the pods have: %w", err)
	}
	held, err := a.held(q)
	if err != nil {
		return nil, err
	}
	d, err := decide(node, pod, q.key(), allocated, held)
	if err != nil {
		return nil, coded(CodeDevice, err)
	}
	r := &Record{ContainerID: q.ContainerID, IfName: q.IfName, Netns: q.Netns, Pod: q.key(), PodUID: pod.UID, Network: network,
		NetConf: q.NetConf, CNIPath: q.CNIPath, IPAMType: typ, GPUs: d.gpus,
		Kind: d.choice.Kind, NIC: d.choice.NIC, Device: d.choice.Device, Level: d.choice.Level.String(),
		TempName: tempName(q), Alias: "topolane:" + q.ContainerID[:min(len(q.ContainerID), 24)] + ":" + q.IfName}
	if err := a.names(node, r); err != nil {
		return nil, coded(CodeDevice, err)
	}
	return r, coded(CodeDevice, a.readOriginals(r))
}

// names fills the device's host names from the topology.
func (a *Attacher) names(node *topology.Node, r *Record) error {
	nic := node.NIC(r.NIC)
	if nic == nil {
		return fmt.Errorf("NIC %s is not in the node's topology", r.NIC)
	}
	r.RDMA = nic.RDMADevice
	switch r.Kind {
	case placement.KindPF:
		r.HostName = nic.Name
	case placement.KindMacvlan:
		r.PF = nic.Name
	case placement.KindVF:
		for _, vf := range nic.SRIOV.VFs {
			if vf.PCIAddress == r.Device {
				r.HostName, r.PF, r.VFIndex, r.RDMA = vf.Name, nic.Name, vf.Index, vf.RDMADevice
			}
		}
	}
	if r.Kind != placement.KindMacvlan && r.HostName == "" {
		return fmt.Errorf("%s %s has no network interface on the host: is its driver bound?", r.Kind, r.Device)
	}
	if r.Kind != placement.KindPF && r.PF == "" {
		return fmt.Errorf("NIC %s has no network interface on the host: is its driver bound?", r.NIC)
	}
	return nil
}

// readOriginals records what DEL restores: the device's alias, MAC and state, a VF's MAC.
func (a *Attacher) readOriginals(r *Record) error {
	if r.Kind == placement.KindMacvlan {
		return nil
	}
	st, err := a.Kernel.Link(netbind.Host, r.HostName)
	if err != nil {
		return fmt.Errorf("%s %s (%s) is not in the host namespace: is it given to another pod? (%w)", r.Kind, r.Device, r.HostName, err)
	}
	r.OrigAlias, r.OrigMAC, r.WasUp = st.Alias, st.MAC.String(), st.Up
	if r.Kind == placement.KindVF {
		mac, err := a.Kernel.VFMAC(r.PF, r.VFIndex)
		if err != nil {
			return fmt.Errorf("reading VF %d's MAC on %s: %w", r.VFIndex, r.PF, err)
		}
		r.OrigVFMAC = mac.String()
	}
	return nil
}

// held is what the node's other attachments hold.
func (a *Attacher) held(q Request) ([]placement.Allocation, error) {
	records, err := a.Journal.All()
	if err != nil {
		return nil, err
	}
	var out []placement.Allocation
	for _, r := range records {
		if r.ContainerID != q.ContainerID || r.IfName != q.IfName {
			out = append(out, placement.Allocation{Pod: r.Pod, Kind: r.Kind, NIC: r.NIC, Device: r.Device})
		}
	}
	return out, nil
}

// tempName is the device's name while it moves: unique per attachment, within 15 characters.
func tempName(q Request) string {
	h := fnv.New32a()
	h.Write([]byte(q.ContainerID + "/" + q.IfName))
	return fmt.Sprintf("tl%08x", h.Sum32())
}

// do takes the steps in phases. Before a phase the record is journaled with the phase's last
// step: after a crash anywhere in it, undo treats every step of the phase as possibly taken
// (each undo is harmless if its step was not). Fewer writes than one per step, each an fsync.
func (a *Attacher) do(ctx context.Context, r *Record) error {
	type step struct {
		step Step
		run  func() error
	}
	phases := [][]step{
		{{StepChosen, func() error { return nil }}, {StepIPAM, func() error { return a.ipam(ctx, r) }}},
		{{StepHostName, func() error { return a.prepareOnHost(r) }}, {StepVFMAC, func() error { return a.setVFMAC(r) }}},
		{{StepMoved, func() error { return a.Kernel.Move(netbind.Host, r.TempName, r.Netns) }},
			{StepRenamed, func() error { return a.Kernel.Rename(r.Netns, r.TempName, r.IfName) }},
			{StepConfigured, func() error { return a.configure(r) }}},
		{{StepAccel, func() error { return writeAccel(a.AccelDir, r.PodUID, accelOf(r, r.GPUs)) }}},
	}
	for _, phase := range phases {
		r.Step = phase[len(phase)-1].step
		if r.Step == StepVFMAC && r.Kind == placement.KindVF {
			mac, err := macFor(r)
			if err != nil {
				return err
			}
			r.MAC = mac.String() // journaled before it is set
		}
		if err := a.Journal.Save(r); err != nil {
			return err
		}
		for _, s := range phase {
			if err := s.run(); err != nil {
				if s.step == StepIPAM {
					r.Step = StepChosen // a failed IPAM ADD holds nothing (CNI spec): no DEL to ask for
					return coded(CodeIPAM, err)
				}
				return fmt.Errorf("%s: %w", s.step, err)
			}
			a.after("add", s.step)
		}
	}
	r.Step = StepDone
	return a.Journal.Save(r)
}

func (a *Attacher) ipam(ctx context.Context, r *Record) error {
	res, err := ipamAdd(ctx, r)
	if err != nil {
		return err
	}
	r.IPAMResult, err = json.Marshal(res)
	return err
}

// prepareOnHost marks the device with its alias (so that it can be found wherever it goes),
// downs it and gives it its temporary name; a macvlan is created under it.
func (a *Attacher) prepareOnHost(r *Record) error {
	k := a.Kernel
	if r.Kind == placement.KindMacvlan {
		if err := k.AddMacvlan(r.PF, r.TempName); err != nil {
			return err
		}
		return k.SetAlias(netbind.Host, r.TempName, r.Alias)
	}
	if err := k.SetAlias(netbind.Host, r.HostName, r.Alias); err != nil {
		return err
	}
	if err := k.SetUp(netbind.Host, r.HostName, false); err != nil {
		return err
	}
	return k.Rename(netbind.Host, r.HostName, r.TempName)
}

func (a *Attacher) setVFMAC(r *Record) error {
	if r.Kind != placement.KindVF {
		return nil
	}
	mac, _ := net.ParseMAC(r.MAC)
	return a.Kernel.SetVFMAC(r.PF, r.VFIndex, mac)
}

// configure gives the device inside the pod its MAC (a VF), addresses and routes, and brings it up.
func (a *Attacher) configure(r *Record) error {
	k := a.Kernel
	res, err := ipamResult(r)
	if err != nil {
		return err
	}
	if r.Kind == placement.KindVF {
		mac, _ := net.ParseMAC(r.MAC)
		if err := k.SetMAC(r.Netns, r.IfName, mac); err != nil {
			return err
		}
	}
	for _, ip := range res.IPs {
		addr := ip.Address
		if err := k.AddAddr(r.Netns, r.IfName, &addr); err != nil {
			return fmt.Errorf("address %s: %w", addr.String(), err)
		}
	}
	if err := k.SetUp(r.Netns, r.IfName, true); err != nil {
		return err
	}
	for _, rt := range res.Routes {
		dst := rt.Dst
		if err := k.AddRoute(r.Netns, r.IfName, &dst, rt.GW); err != nil {
			return fmt.Errorf("route %s: %w", dst.String(), err)
		}
	}
	return nil
}

// macFor derives a VF's MAC from its first IPv4 address (or the last bytes of an IPv6 one):
// locally administered, unicast, unique on the node as the addresses are, with a byte of the
// network's name so that two networks with the same addresses differ.
func macFor(r *Record) (net.HardwareAddr, error) {
	res, err := ipamResult(r)
	if err != nil {
		return nil, err
	}
	h := fnv.New32a()
	h.Write([]byte(r.Network))
	ip := res.IPs[0].Address.IP
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	b := ip[len(ip)-4:]
	return net.HardwareAddr{0x02, byte(h.Sum32()), b[0], b[1], b[2], b[3]}, nil
}
