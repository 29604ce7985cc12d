// Package sim replays a job trace on a simulated cluster under a placement policy, in simulated
// time, and measures what each pod got: the node, its GPUs, and its NIC device.
package sim

import (
	"cmp"
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
	gpuUsed []bool                          // by index in Topo.GPUs
	held    map[string]placement.Allocation // by job name
}

// NewCluster builds the nodes of a scenario, all free.
func NewCluster(nodes []scenario.Node) *Cluster {
	c := &Cluster{byName: map[string]*Node{}}
	for _, n := range nodes {
		topo := n.Machine.Node()
		topo.Name = n.Name
		node := &Node{Name: n.Name, Topo: topo, gpuUsed: make([]bool, len(topo.GPUs)), held: map[string]placement.Allocation{}}
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
func (n *Node) FreeGPUs() int {
	free := 0
	for _, used := range n.gpuUsed {
		if !used {
			free++
		}
	}
	return free
}

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

// Usage is what the node's pods hold, as placement counts it.
func (n *Node) Usage() placement.Usage {
	u := placement.Usage{GPUsInUse: len(n.gpuUsed) - n.FreeGPUs()}
	for _, a := range n.held {
		u.Allocations = append(u.Allocations, a)
	}
	slices.SortFunc(u.Allocations, func(a, b placement.Allocation) int { return cmp.Compare(a.Pod, b.Pod) })
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
		whole, vfsUsed := n.holders(nic.PCIAddress)
		switch {
		case whole:
		case nic.Virtualised():
			for _, vf := range nic.SRIOV.VFs {
				if !vfsUsed[vf.PCIAddress] {
					free = append(free, placement.Allocation{Kind: placement.KindVF, NIC: nic.PCIAddress, Device: vf.PCIAddress})
				}
			}
		case len(vfsUsed) == 0:
			free = append(free, placement.Allocation{Kind: placement.KindPF, NIC: nic.PCIAddress, Device: nic.PCIAddress})
		}
	}
	return free
}

// holders says whether a NIC is held whole, and which of its devices are held in part.
func (n *Node) holders(nic string) (whole bool, parts map[string]bool) {
	parts = map[string]bool{}
	for _, a := range n.held {
		if a.NIC != nic {
			continue
		}
		if a.Kind == placement.KindPF {
			whole = true
		} else {
			parts[a.Device] = true
		}
	}
	return whole, parts
}

// Level is the farthest the NIC is from any of the GPUs.
func (n *Node) Level(nic string, gpus []int) topology.Level {
	worst := topology.Level(0)
	for i, g := range gpus {
		if l := n.Topo.Level(nic, n.Topo.GPUs[g].PCIAddress); i == 0 || worst.Nearer(l) {
			worst = l
		}
	}
	return worst
}

// NearFree says whether some RDMA NIC at PXB or nearer to the GPUs has something free to give:
// the NIC whole, a VF, or (without VFs) a macvlan share.
func (n *Node) NearFree(gpus []int) bool {
	for _, nic := range n.Topo.NICs {
		if !nic.RDMA() || topology.PXB.Nearer(n.Level(nic.PCIAddress, gpus)) {
			continue
		}
		whole, parts := n.holders(nic.PCIAddress)
		if !whole && (!nic.Virtualised() || len(parts) < len(nic.SRIOV.VFs)) {
			return true
		}
	}
	return false
}

// take gives the job its GPUs and device, refusing what is already given: a policy that hands
// out a GPU or device twice is a bug the bench must not hide.
func (n *Node) take(job string, gpus []int, dev placement.Allocation) error {
	for _, g := range gpus {
		if n.gpuUsed[g] {
			return fmt.Errorf("%s: GPU %d of %s is already in use", job, g, n.Name)
		}
	}
	if dev.Kind != "" {
		whole, parts := n.holders(dev.NIC)
		if whole || parts[dev.Device] || (dev.Kind == placement.KindPF && len(parts) > 0) {
			return fmt.Errorf("%s: %s %s of %s is already given out", job, dev.Kind, dev.Device, n.Name)
		}
		dev.Pod = job
		n.held[job] = dev
	}
	for _, g := range gpus {
		n.gpuUsed[g] = true
	}
	return nil
}

// give returns them.
func (n *Node) give(job string, gpus []int) {
	for _, g := range gpus {
		n.gpuUsed[g] = false
	}
	delete(n.held, job)
}
