package main

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

var colors = []string{"#1b9e77", "#66c2a5", "#7570b3", "#b3b0d9", "#d95f02", "#fc8d62"}

// Plot geometry, in SVG units.
const (
	plotW, plotH     = 760, 360
	marginL, marginT = 90, 50
)

// writePlot draws each flow's rate over time on a log scale, with the configured average and
// peak: topolane's burst at the peak, then the average; the plugin's start at line rate.
func writePlot(w io.Writer, runs []measured, o options) error {
	lo, hi := decades(runs)
	y := func(bps float64) float64 {
		v := math.Log10(max(bps, math.Pow(10, lo)))
		return marginT + plotH - (v-lo)/(hi-lo)*plotH
	}
	x := func(t float64) float64 { return marginL + t/o.duration.Seconds()*plotW }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", marginL+plotW+30, marginT+plotH+60+18*len(runs)/2)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%d" y="24" font-size="16" font-weight="bold">TCP through a shaped device: rate on the wire over time (log scale)</text>`+"\n", marginL)
	axes(&b, lo, hi, y, x, o.duration)
	if len(runs) > 0 {
		for _, l := range []struct {
			v    float64
			name string
		}{{runs[0].average, "average"}, {runs[0].peak, "peak"}} {
			if l.v > 0 {
				fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="black" stroke-dasharray="4 3"/><text x="%d" y="%.1f" font-size="10">%s %s</text>`+"\n",
					marginL, y(l.v), marginL+plotW, y(l.v), marginL+plotW-110, y(l.v)-4, l.name, rate(l.v))
			}
		}
	}
	for i, m := range runs {
		var pts strings.Builder
		for _, p := range m.flow.Series(50 * time.Millisecond) {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(p.T), y(p.Rate))
		}
		c := colors[i%len(colors)]
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", c, pts.String())
		lx, ly := marginL+(i%2)*380, marginT+plotH+40+(i/2)*18
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="14" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			lx, ly-9, c, lx+20, ly, html.EscapeString(m.setup+", "+m.direction))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// decades is the log10 range of the plot: from a decade below the average to above the fastest
// flow.
func decades(runs []measured) (lo, hi float64) {
	lo, hi = 6, 8
	for i, m := range runs {
		if i == 0 {
			lo = math.Floor(math.Log10(m.average)) - 1
		}
		for _, p := range m.flow.Series(50 * time.Millisecond) {
			hi = max(hi, math.Ceil(math.Log10(max(p.Rate, 1))))
		}
	}
	return lo, hi
}

func axes(b *strings.Builder, lo, hi float64, y func(float64) float64, x func(float64) float64, d time.Duration) {
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/><line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n",
		marginL, marginT, marginL, marginT+plotH, marginL, marginT+plotH, marginL+plotW, marginT+plotH)
	for e := lo; e <= hi; e++ {
		v := math.Pow(10, e)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			marginL+1, y(v), marginL+plotW, y(v), marginL-6, y(v)+4, decade(v))
	}
	for s := 0.0; s <= d.Seconds(); s++ {
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%.0f s</text>`+"\n", x(s), marginT+plotH+16, s)
	}
}

// decade writes a power of ten of bit/s.
func decade(bps float64) string {
	for _, u := range []struct {
		v    float64
		name string
	}{{1e12, "Tbit/s"}, {1e9, "Gbit/s"}, {1e6, "Mbit/s"}, {1e3, "kbit/s"}} {
		if bps >= u.v {
			return fmt.Sprintf("%.0f %s", bps/u.v, u.name)
		}
	}
	return fmt.Sprintf("%.0f bit/s", bps)
}
