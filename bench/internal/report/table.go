package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/topolane/topolane/bench/internal/sim"
)

// WriteTable prints the comparison, one row per policy: what placement gave (the figures before
// rails), then what the pods got of the network, then topolane's bandwidth per GPU over one
// NIC per pod's when both ran.
func WriteTable(w io.Writer, ms []Metrics) error {
	if err := placementTable(w, ms); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if err := networkTable(w, ms); err != nil {
		return err
	}
	if line := ratioLine(ms); line != "" {
		fmt.Fprintf(w, "\n%s\n", line)
	}
	return nil
}

func placementTable(w io.Writer, ms []Metrics) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\tplaced\tfull-node pods with whole PFs\tNIC ≤ PXB when one was free\tfull-node pods pending\tfull-node mean wait\tGPU utilisation\t")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%d/%d\t%s\t%s\t%d\t%.0f s\t%.1f%%\t\n", m.Policy, m.Placed, m.Jobs,
			ratio(m.FullNodePF, m.FullNode), ratio(m.Near, m.NearPossible), m.FullNodePending, m.FullNodeWait, m.Utilisation)
	}
	return tw.Flush()
}

// networkTable prints the NIC bandwidth per GPU (Gbit/s) and the GPUs with a GPUDirect RDMA path.
func networkTable(w io.Writer, ms []Metrics) error {
	sizes := podSizes(ms)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"policy", "pods", "NIC Gb/s per GPU: mean", "p10", "median"}
	for _, s := range sizes {
		head = append(head, fmt.Sprintf("%d-GPU pods", s))
	}
	fmt.Fprintln(tw, strings.Join(append(head, "GPUs with GDR (≤ PXB)"), "\t")+"\t")
	for _, m := range ms {
		n := m.Network
		row := []string{m.Policy, fmt.Sprint(n.Pods), gbps(n.Mean), gbps(n.P10), gbps(n.Median)}
		for _, s := range sizes {
			cell := "n/a"
			if v, ok := n.SizeMean(s); ok {
				cell = gbps(v)
			}
			row = append(row, cell)
		}
		fmt.Fprintln(tw, strings.Join(append(row, fmt.Sprintf("%.1f%%", n.GDR)), "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, networkNote)
	return err
}

const networkNote = `NIC Gb/s per GPU: a pod's devices' link speed (a VF or macvlan: its NIC's ÷ the shares in use,
over the pod's run) ÷ its GPUs; by pod size: the mean. GPUs with GDR: the mean share of a pod's
GPUs whose device is PXB or nearer to it (GPUDirect RDMA).`

// ratioLine says how much more bandwidth per GPU topolane's pods got than one NIC per pod's.
func ratioLine(ms []Metrics) string {
	rails, one := find(ms, sim.PolicyTopolane), find(ms, sim.PolicyOneNIC)
	if rails == nil || one == nil {
		return ""
	}
	parts := []string{"mean " + times(rails.Network.Mean, one.Network.Mean), "median " + times(rails.Network.Median, one.Network.Median)}
	for _, s := range rails.Network.BySize {
		if o, ok := one.Network.SizeMean(s.GPUs); ok {
			parts = append(parts, fmt.Sprintf("%d-GPU pods %s", s.GPUs, times(s.Mean, o)))
		}
	}
	return fmt.Sprintf("NIC bandwidth per GPU, %s ÷ %s: %s", sim.PolicyTopolane, sim.PolicyOneNIC, strings.Join(parts, ", "))
}

func find(ms []Metrics, policy string) *Metrics {
	for i := range ms {
		if ms[i].Policy == policy {
			return &ms[i]
		}
	}
	return nil
}

func podSizes(ms []Metrics) []int {
	var sizes []int
	for _, m := range ms {
		for _, s := range m.Network.BySize {
			sizes = append(sizes, s.GPUs)
		}
	}
	slices.Sort(sizes)
	return slices.Compact(sizes)
}

func gbps(v float64) string { return fmt.Sprintf("%.1f", v) }

func times(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func ratio(part, whole int) string {
	if whole == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%% (%d/%d)", Share(part, whole), part, whole)
}
