package report

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints the comparison, one row per policy.
func WriteTable(w io.Writer, ms []Metrics) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\tplaced\tfull-node pods with a whole PF\tNIC ≤ PXB when one was free\tfull-node pods pending\tfull-node mean wait\tGPU utilisation\t")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%d/%d\t%s\t%s\t%d\t%.0f s\t%.1f%%\t\n", m.Policy, m.Placed, m.Jobs,
			ratio(m.FullNodePF, m.FullNode), ratio(m.Near, m.NearPossible), m.FullNodePending, m.FullNodeWait, m.Utilisation)
	}
	return tw.Flush()
}

func ratio(part, whole int) string {
	if whole == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%% (%d/%d)", Share(part, whole), part, whole)
}
