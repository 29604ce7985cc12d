// Package discovery finds a node's GPUs and NICs and how near each pair is: PCI functions,
// SR-IOV, netdevs and RDMA devices from sysfs, GPU identities and NVLink from NVML.
package discovery

import (
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/jaypipes/pcidb"

	"github.com/topolane/topolane/nodeagent/internal/gpu"
	"github.com/topolane/topolane/nodeagent/internal/netbind"
	"github.com/topolane/topolane/nodeagent/internal/sysfs"
	"github.com/topolane/topolane/topology"
)

// Options say where to look.
type Options struct {
	NodeName string
	Sysfs    sysfs.Paths
	PCIDB    *pcidb.PCIDB // names for the table; nil: an empty database, ids only
	// NVML is asked for GPU identities and GPU↔GPU links; nil means GPUs come from PCI alone
	// (a fixture tree describes another machine than the one NVML would answer for).
	NVML gpu.Library

	// Host says how the host namespace uses its links, matched to NICs by netdev name: a NIC
	// the host uses (a global address, the default route, a bond, bridge or OVS port, NodeIPs)
	// is Excluded. nil: not asked, for a tree that describes another machine (a fixture).
	Host HostLinks
	// NodeIPs are the Node's InternalIP addresses.
	NodeIPs []net.IP
	// NICs (--nics), when set, keeps only the NICs it matches; ExcludeNICs (--exclude-nics)
	// leaves out those it matches. Neither brings back a NIC the host uses.
	NICs, ExcludeNICs Selectors
	// LastNames maps PCI addresses to the netdev names NICs had in the host at an earlier
	// discovery, so that a NIC whose netdev is in a pod now still matches netdev globs and
	// rail pins.
	LastNames map[string]string
	// RDMA is asked for the RDMA netns mode; nil: not asked (a fixture).
	RDMA RDMAMode
	// Rails pins GPUs to NICs where the fabric is wired otherwise than nearest-NIC-per-GPU
	// (--rails FILE): GPU (PCI address, UUID or index) → NIC (PCI address or netdev). Unpinned
	// GPUs take their nearest NIC.
	Rails map[string]string
}

// RDMAMode reads the RDMA subsystem's netns mode (netbind.Netlink on a node).
type RDMAMode interface {
	RDMANetnsMode() (string, error)
}

var _ RDMAMode = netbind.Netlink{}

// Result is the node's topology and what a person should know about how it was found.
type Result struct {
	Node *topology.Node
	// Notes are facts about the machine ("no NVIDIA driver").
	Notes []string
	// Warnings name what could not be read; the topology is complete except for those.
	Warnings []string
}

func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}
func (r *Result) warn(format string, args ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}

// Discover reads the node. It fails only when sysfs cannot be read at all, or when Host cannot
// say how the host uses its links (a NIC could then be the node's own).
func Discover(opts Options) (*Result, error) {
	if opts.PCIDB == nil {
		opts.PCIDB = sysfs.EmptyPCIDB()
	}
	scan, err := opts.Sysfs.ScanPCI(opts.PCIDB)
	if err != nil {
		return nil, err
	}
	r := &Result{Node: &topology.Node{Name: opts.NodeName, GPUs: []topology.GPU{}, NICs: []topology.NIC{}}, Warnings: scan.Warnings}
	if r.Node.NUMANodes, err = opts.Sysfs.NUMANodeIDs(); err != nil {
		r.warn("%v; NUMA nodes unknown", err)
	}
	inv := pci{paths: opts.Sysfs, scanned: scan.Functions, result: r}
	inv.collect()
	if err := markExcluded(r, inv.functions, opts); err != nil {
		return nil, err
	}
	if opts.RDMA != nil {
		readRDMAMode(r, opts.RDMA)
	}
	var gpuLevels topology.Levels
	if opts.NVML != nil {
		gpuLevels = mergeNVML(r, opts.NVML)
	}
	if len(r.Node.GPUs) == 0 {
		r.note("no NVIDIA GPUs on this node")
	}
	r.Node.Sort()
	topology.Connect(r.Node)
	r.Node.Levels.Overlay(gpuLevels)
	assignRails(r, opts.Rails, opts.LastNames)
	return r, nil
}

// readRDMAMode records the RDMA netns mode; a node without RDMA NICs need not have one.
func readRDMAMode(r *Result, rdma RDMAMode) {
	mode, err := rdma.RDMANetnsMode()
	if err == nil {
		r.Node.RDMANetnsMode = mode
		return
	}
	if slices.ContainsFunc(r.Node.NICs, func(n topology.NIC) bool { return n.RDMA() }) {
		r.warn("%v: whether an RDMA device must move into the pod with its netdev is unknown", err)
	}
}

// mergeNVML adds NVML's identities to the GPUs found on PCI and returns its GPU↔GPU levels,
// which are better than PCIe paths can tell (NVLink).
func mergeNVML(r *Result, lib gpu.Library) topology.Levels {
	inv, err := gpu.Discover(lib)
	if errors.Is(err, gpu.ErrNoDriver) {
		r.note("%v: GPUs are taken from PCI, without UUIDs or NVLink", err)
		return topology.Levels{}
	}
	if err != nil {
		r.warn("%v: GPUs are taken from PCI, without UUIDs or NVLink", err)
		return topology.Levels{}
	}
	seen := map[string]bool{}
	for _, g := range inv.GPUs {
		seen[g.PCIAddress] = true
		if node := r.Node.GPU(g.PCIAddress); node != nil {
			node.UUID, node.Model, node.MemoryBytes = g.UUID, g.Model, g.MemoryBytes
			continue
		}
		r.warn("NVML reports GPU %s at %s, which sysfs does not show: its PCIe levels are unknown", g.UUID, g.PCIAddress)
		r.Node.GPUs = append(r.Node.GPUs, topology.GPU{UUID: g.UUID, Model: g.Model, PCIAddress: g.PCIAddress,
			NUMANode: topology.NoNUMA, MemoryBytes: g.MemoryBytes})
	}
	for _, g := range r.Node.GPUs {
		if !seen[g.PCIAddress] {
			r.warn("GPU at %s is on PCI but NVML does not report it (bound to another driver, or fallen off the bus?)", g.PCIAddress)
		}
	}
	return inv.Levels
}
