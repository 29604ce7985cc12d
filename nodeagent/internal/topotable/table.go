// Package topotable prints a node's topology the way `nvidia-smi topo -m` does: a matrix over
// GPUs and RDMA NICs, its legend, the NICs by name (with the reason an excluded one is never
// handed out), each PF with its VFs, and the NICs without RDMA.
package topotable

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/topolane/topolane/topology"
)

// device is one row and column of the matrix.
type device struct {
	label, addr string
	numa        int
}

// Write prints the table, with notes (facts about the machine) at the end.
func Write(w io.Writer, n *topology.Node, notes []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Node %s\n\n", orDash(n.Name))
	if mode := rdmaModes[n.RDMANetnsMode]; mode != "" {
		fmt.Fprintf(&b, "RDMA netns mode: %s\n\n", mode)
	}
	gpus, nics := matrixDevices(n)
	devs := append(gpus, nics...)
	if len(devs) > 0 {
		writeMatrix(&b, n, devs)
		b.WriteString(legend)
	}
	writeGPUs(&b, n, gpus, nics)
	writeNICs(&b, n, nics)
	writeSRIOV(&b, n)
	writePlainNICs(&b, n)
	if len(notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, note := range notes {
			fmt.Fprintf(&b, "  %s\n", note)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// matrixDevices lists GPUs, then RDMA-capable NICs (each PF followed by its VFs with RDMA).
func matrixDevices(n *topology.Node) (gpus, nics []device) {
	for _, g := range n.GPUs {
		gpus = append(gpus, device{fmt.Sprintf("GPU%d", g.Index), g.PCIAddress, g.NUMANode})
	}
	for _, nic := range n.NICs {
		if nic.RDMA() {
			nics = append(nics, device{fmt.Sprintf("NIC%d", len(nics)), nic.PCIAddress, nic.NUMANode})
		}
		if nic.SRIOV == nil {
			continue
		}
		for _, vf := range nic.SRIOV.VFs {
			if vf.RDMADevice != "" {
				nics = append(nics, device{fmt.Sprintf("NIC%d", len(nics)), vf.PCIAddress, nic.NUMANode})
			}
		}
	}
	return gpus, nics
}

// rdmaModes explains each RDMA netns mode.
var rdmaModes = map[string]string{
	topology.RDMANetnsShared:    "shared (RDMA devices stay in the host namespace; every pod sees them all)",
	topology.RDMANetnsExclusive: "exclusive (an RDMA device moves into its pod with its netdev)",
}

func writeMatrix(b *strings.Builder, n *topology.Node, devs []device) {
	tw := tabwriter.NewWriter(b, 0, 0, 1, ' ', 0)
	fmt.Fprint(tw, "\t")
	for _, d := range devs {
		fmt.Fprintf(tw, "%s\t", d.label)
	}
	fmt.Fprintln(tw, "NUMA Affinity")
	for _, row := range devs {
		fmt.Fprintf(tw, "%s\t", row.label)
		for _, col := range devs {
			fmt.Fprintf(tw, " %s\t", n.Level(row.addr, col.addr))
		}
		fmt.Fprintf(tw, "%s\n", numaLabel(row.numa))
	}
	tw.Flush()
}

func numaLabel(numa int) string {
	if numa == topology.NoNUMA {
		return "N/A"
	}
	return fmt.Sprint(numa)
}

const legend = `
Legend:

  X    = Self
  SYS  = Connection traversing PCIe as well as the SMP interconnect between NUMA nodes
  NODE = Connection traversing PCIe as well as the interconnect between PCIe Host Bridges within a NUMA node
  PHB  = Connection traversing PCIe as well as a PCIe Host Bridge (typically the CPU)
  PXB  = Connection traversing multiple PCIe bridges (without traversing the PCIe Host Bridge)
  PIX  = Connection traversing at most a single PCIe bridge
  NV#  = Connection traversing a bonded set of # NVLinks
  ?    = Unknown (the device's place on the PCIe tree could not be read)
`

func writeGPUs(b *strings.Builder, n *topology.Node, gpus, nics []device) {
	if len(gpus) == 0 {
		b.WriteString("\nNo NVIDIA GPUs.\n")
		return
	}
	b.WriteString("\nGPU Legend (rail: the NIC NCCL drives for the GPU):\n\n")
	for i, g := range n.GPUs {
		fmt.Fprintf(b, "  %s: %s%s%s%s\n", gpus[i].label, g.PCIAddress, optional(g.Model), optional(g.UUID), railOf(n, g, nics))
	}
}

// railOf words a GPU's rail: its index, its NIC's label and the level between them.
func railOf(n *topology.Node, g topology.GPU, nics []device) string {
	r := n.RailOf(g.PCIAddress)
	if r == nil {
		return "  no rail"
	}
	label := r.NIC
	for _, d := range nics {
		if d.addr == r.NIC {
			label = d.label
		}
	}
	pinned := ""
	if r.Pinned {
		pinned = ", pinned"
	}
	return fmt.Sprintf("  rail %d: %s (%s%s)", r.Index, label, n.Level(g.PCIAddress, r.NIC), pinned)
}

func writeNICs(b *strings.Builder, n *topology.Node, nics []device) {
	if len(nics) == 0 {
		b.WriteString("\nNo RDMA NICs: topolane has no NIC to give to pods on this node.\n")
		return
	}
	b.WriteString("\nNIC Legend:\n\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	i := 0
	for _, nic := range n.NICs {
		if nic.RDMA() {
			fmt.Fprintf(tw, "  %s:\t%s\t%s\t%s\t%s%s%s\n", nics[i].label, nic.RDMADevice, orDash(nic.Name), nic.PCIAddress, pfKind(nic),
				infiniBand(nic), excluded(nic.Excluded))
			i++
		}
		if nic.SRIOV == nil {
			continue
		}
		for _, vf := range nic.SRIOV.VFs {
			if vf.RDMADevice != "" {
				fmt.Fprintf(tw, "  %s:\t%s\t%s\t%s\tVF %d of %s%s\n", nics[i].label, vf.RDMADevice, orDash(vf.Name), vf.PCIAddress, vf.Index, nic.PCIAddress,
					excludedWithPF(nic.Excluded))
				i++
			}
		}
	}
	tw.Flush()
}

func infiniBand(nic topology.NIC) string {
	if nic.LinkLayer == topology.LinkLayerInfiniBand {
		return ", InfiniBand"
	}
	return ""
}

// excluded shows why a NIC is never handed out.
func excluded(reason string) string {
	if reason == "" {
		return ""
	}
	return "; excluded: " + reason
}

func excludedWithPF(reason string) string {
	if reason == "" {
		return ""
	}
	return "; excluded with its PF"
}

func pfKind(nic topology.NIC) string {
	switch {
	case nic.SRIOV == nil:
		return "PF, no SR-IOV"
	case nic.SRIOV.NumVFs == 0:
		return fmt.Sprintf("PF, 0 of %d VFs", nic.SRIOV.TotalVFs)
	}
	return fmt.Sprintf("PF, %d of %d VFs", nic.SRIOV.NumVFs, nic.SRIOV.TotalVFs)
}

// writeSRIOV lists each PF that has VFs configured, with its VFs.
func writeSRIOV(b *strings.Builder, n *topology.Node) {
	header := false
	for _, nic := range n.NICs {
		if !nic.Virtualised() {
			continue
		}
		if !header {
			b.WriteString("\nSR-IOV:\n")
			header = true
		}
		fmt.Fprintf(b, "\n  %s %s (%s): %d of %d VFs\n", nic.PCIAddress, orDash(nic.Name), orDash(nic.RDMADevice), nic.SRIOV.NumVFs, nic.SRIOV.TotalVFs)
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		for _, vf := range nic.SRIOV.VFs {
			fmt.Fprintf(tw, "    VF %d\t%s\t%s\t%s\t%s\n", vf.Index, vf.PCIAddress, orDash(vf.Name), orDash(vf.RDMADevice), orDash(vf.Driver))
		}
		tw.Flush()
	}
}

// writePlainNICs lists NICs without RDMA: never given to pods (management ports and the like).
func writePlainNICs(b *strings.Builder, n *topology.Node) {
	var plain []topology.NIC
	for _, nic := range n.NICs {
		if !nic.RDMA() {
			plain = append(plain, nic)
		}
	}
	if len(plain) == 0 {
		return
	}
	b.WriteString("\nOther NICs (no RDMA; never given to pods):\n\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	for _, nic := range plain {
		fmt.Fprintf(tw, "  %s\t%s\t%s\tNUMA %s%s%s\n", orDash(nic.Name), nic.PCIAddress, orDash(nic.Driver), numaLabel(nic.NUMANode), speed(nic.SpeedMbps),
			plainExcluded(nic.Excluded))
	}
	tw.Flush()
}

func plainExcluded(reason string) string {
	if reason == "" {
		return ""
	}
	return "\texcluded: " + reason
}

func speed(mbps int) string {
	if mbps <= 0 {
		return ""
	}
	if mbps%1000 == 0 {
		return fmt.Sprintf("\t%d Gb/s", mbps/1000)
	}
	return fmt.Sprintf("\t%d Mb/s", mbps)
}

func optional(s string) string {
	if s == "" {
		return ""
	}
	return "  " + s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
