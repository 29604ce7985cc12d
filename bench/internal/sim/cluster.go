// Package sim replays a job trace on a simulated cluster under a placement policy, in simulated
// time, and measures what each pod got: the node, its GPUs, and its NIC devices.
package sim

import (
	"fmt"
	"slices"

	"github.com/topolane/topolane/bench/internal/scenario"
	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/placement"
)

// Cluster is the simulation's truth: which GPUs and devices every node has given out.
type Cluster struct {
	Nodes  []*Node
	byName map[string]*Node
}

// Node is one simulated node.
type Node struct {
	Name    string
	Topo    *topology.Node
	gpuUsed []bool                            // by index in Topo.GPUs
	free    int                               // GPUs not in use
	held    map[string][]placement.Allocation // by job name
	meters  map[string]*meter                 // the running jobs' NIC bandwidth, by job name
}

// NewCluster builds the nodes of a scenario, all free.
func NewCluster(nodes []scenario.Node) *Cluster {
	c := &Cluster{byName: map[string]*Node{}}
	for _, n := range nodes {
		topo := n.Machine.Node()
		topo.Name = n.Name
		node := &Node{Name: n.Name, Topo: topo, gpuUsed: make([]bool, len(topo.GPUs)), free: len(topo.GPUs),
			held: map[string][]placement.Allocation{}, meters: map[string]*meter{}}
		c.Nodes = append(c.Nodes, node)
		c.byName[n.Name] = node
	}
	return c
}

// Node returns a node by name.
func (c *Cluster) Node(name string) *Node { return c.byName[name] }

// GPUs counts every GPU, and those in use.
func (c *Cluster) GPUs() (total, used int) {
	for _, n := range c.Nodes {
		total += len(n.gpuUsed)
		used += len(n.gpuUsed) - n.FreeGPUs()
	}
	return total, used
}

// FreeGPUs counts the node's free GPUs.
func (n *Node) FreeGPUs() int { return n.free }

// LowestFreeGPUs is how kubelet's device plugin hands out GPUs without a topology policy: the
// first free ones, or nil when there are too few.
func (n *Node) LowestFreeGPUs(count int) []int {
	var gpus []int
	for i, used := range n.gpuUsed {
		if !used && len(gpus) < count {
			gpus = append(gpus, i)
		}
	}
	if len(gpus) < count {
		return nil
	}
	return gpus
}

// Addrs are the PCI addresses of GPUs given by index.
func (n *Node) Addrs(gpus []int) []string {
	addrs := make([]string, len(gpus))
	for i, g := range gpus {
		addrs[i] = n.Topo.GPUs[g].PCIAddress
	}
	return addrs
}

// Serving is dev serving all of gpus: the one device a pod gets from a device plugin. A device
// of no kind is none.
func (n *Node) Serving(dev placement.Allocation, gpus []int) []placement.Allocation {
	if dev.Kind == "" {
		return nil
	}
	dev.GPUs = n.Addrs(gpus)
	return []placement.Allocation{dev}
}

// Usage is what the node's pods hold, as placement counts it.
func (n *Node) Usage() placement.Usage {
	u := placement.Usage{GPUsInUse: len(n.gpuUsed) - n.FreeGPUs()}
	jobs := make([]string, 0, len(n.held))
	for job := range n.held {
		jobs = append(jobs, job)
	}
	slices.Sort(jobs)
	for _, job := range jobs {
		u.Allocations = append(u.Allocations, n.held[job]...)
	}
	return u
}

// Devices lists what a device plugin without topology would offer: every free VF of an RDMA NIC
// nobody holds whole, and every whole RDMA NIC without VFs that nobody uses.
func (n *Node) Devices() []placement.Allocation {
	var free []placement.Allocation
	for _, nic := range n.Topo.NICs {
		if !nic.RDMA() {
			continue
		}
		use := n.use(nic.PCIAddress, nil)
		switch {
		case use.whole:
		case nic.Virtualised():
			for _, vf := range nic.SRIOV.VFs {
				if !use.devices[vf.PCIAddress] {
					free = append(free, placement.Allocation{Kind: placement.KindVF, NIC: nic.PCIAddress, Device: vf.PCIAddress})
				}
			}
		case use.shares == 0:
			free = append(free, placement.Allocation{Kind: placement.KindPF, NIC: nic.PCIAddress, Device: nic.PCIAddress})
		}
	}
	return free
}

// nicUse is what is given out of one NIC.
type nicUse struct {
	whole   bool            // held whole
	shares  int             // VFs and macvlans held
	devices map[string]bool // VFs held
}

// use says what is given out of a NIC, counting extra (a pod's devices being checked) too.
func (n *Node) use(nic string, extra []placement.Allocation) nicUse {
	u := nicUse{devices: map[string]bool{}}
	count := func(a placement.Allocation) {
		switch {
		case a.NIC != nic:
		case a.Kind == placement.KindPF:
			u.whole = true
		default:
			u.shares++
			u.devices[a.Device] = true
		}
	}
	for _, devs := range n.held {
		for _, a := range devs {
			count(a)
		}
	}
	for _, a := range extra {
		count(a)
	}
	return u
}

// Level is the farthest the NIC is from any of the GPUs (PCI addresses).
func (n *Node) Level(nic string, gpus []string) topology.Level {
	worst := topology.Level(0)
	for i, g := range gpus {
		if l := n.Topo.Level(nic, g); i == 0 || worst.Nearer(l) {
			worst = l
		}
	}
	return worst
}

// NearFree says whether some RDMA NIC at PXB or nearer to the GPUs has something free to give:
// the NIC whole, a VF, or (without VFs) a macvlan share.
func (n *Node) NearFree(gpus []int) bool {
	addrs := n.Addrs(gpus)
	for _, nic := range n.Topo.NICs {
		if !nic.RDMA() || topology.PXB.Nearer(n.Level(nic.PCIAddress, addrs)) {
			continue
		}
		use := n.use(nic.PCIAddress, nil)
		if !use.whole && (!nic.Virtualised() || use.shares < len(nic.SRIOV.VFs)) {
			return true
		}
	}
	return false
}

// take gives the job its GPUs and devices, refusing what is already given: a policy that hands
// out a GPU or device twice is a bug the bench must not hide.
func (n *Node) take(job string, gpus []int, devs []placement.Allocation) error {
	for _, g := range gpus {
		if n.gpuUsed[g] {
			return fmt.Errorf("%s: GPU %d of %s is already in use", job, g, n.Name)
		}
	}
	for i, d := range devs {
		if err := n.check(d, devs[:i]); err != nil {
			return fmt.Errorf("%s: %w", job, err)
		}
	}
	if len(devs) > 0 {
		held := make([]placement.Allocation, len(devs))
		for i, d := range devs {
			d.Pod = job
			held[i] = d
		}
		n.held[job] = held
	}
	for _, g := range gpus {
		n.gpuUsed[g] = true
	}
	n.free -= len(gpus)
	return nil
}

// check says why the device cannot be given, with mine (the pod's other devices) given too.
func (n *Node) check(d placement.Allocation, mine []placement.Allocation) error {
	if n.Topo.NIC(d.NIC) == nil {
		return fmt.Errorf("%s has no NIC %s", n.Name, d.NIC)
	}
	use := n.use(d.NIC, mine)
	switch {
	case use.whole:
		return fmt.Errorf("%s %s of %s: the NIC is already given whole", d.Kind, d.Device, n.Name)
	case d.Kind == placement.KindPF && use.shares > 0:
		return fmt.Errorf("pf %s of %s: %d shares of it are given out", d.Device, n.Name, use.shares)
	case d.Kind == placement.KindVF && use.devices[d.Device]:
		return fmt.Errorf("vf %s of %s is already given out", d.Device, n.Name)
	case d.Kind != placement.KindPF && d.Kind != placement.KindVF && d.Kind != placement.KindMacvlan:
		return fmt.Errorf("device %s of %s has kind %q", d.Device, n.Name, d.Kind)
	}
	return nil
}

// give returns them.
func (n *Node) give(job string, gpus []int) {
	for _, g := range gpus {
		n.gpuUsed[g] = false
	}
	n.free += len(gpus)
	delete(n.held, job)
}
