package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// writeTable prints each flow: what was configured, the burst phase (how long, how fast, how
// much) and the sustained rate against the average.
func writeTable(w io.Writer, runs []measured, n int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "setup\tdirection\taverage\tpeak\tburst\tburst phase\tat\tsent in it\tsustained\toff the average\t")
	for _, m := range runs {
		peak, sustained, off := "-", "-", "-"
		if m.peak != 0 {
			peak = rate(m.peak)
		}
		if m.sustained != 0 {
			sustained = rate(m.sustained)
			off = fmt.Sprintf("%+.1f%%", (m.sustained/m.average-1)*100)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f s\t%s\t%.1f MB\t%s\t%s\t\n", m.setup, m.direction, rate(m.average), peak, m.burst,
			m.phaseEnd.Seconds(), rate(m.burstRate), m.sent/1e6, sustained, off)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nMedians of %d runs. Rates are on the wire: TCP payload × (MTU + 14) / MSS, what a tbf counts.\n", n)
	fmt.Fprintln(w, "The burst phase ends where the rate stays at or below 1.5 × the average for 300 ms; \"sustained\" is")
	fmt.Fprintln(w, "from 0.5 s after it to the end of the flow.")
}

// rate writes bit/s with a unit.
func rate(bps float64) string {
	switch {
	case bps >= 1e9:
		return fmt.Sprintf("%.2f Gbit/s", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%.2f Mbit/s", bps/1e6)
	default:
		return fmt.Sprintf("%.0f kbit/s", bps/1e3)
	}
}
