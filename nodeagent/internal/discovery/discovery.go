// Package discovery finds a node's GPUs and NICs and how near each pair is: PCI functions,
// SR-IOV, netdevs and RDMA devices from sysfs, GPU identities and NVLink from NVML.
package discovery

import (
	"errors"
	"fmt"

	"github.com/jaypipes/pcidb"

	"github.com/topolane/topolane/nodeagent/internal/gpu"
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
}

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

// Discover reads the node. It fails only when sysfs cannot be read at all.
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
	return r, nil
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
