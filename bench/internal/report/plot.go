package report

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"

	"github.com/topolane/topolane/bench/internal/sim"
)

// plotNote says what the bandwidth is.
const plotNote = "NIC bandwidth per GPU: a pod's devices' link speed ÷ its GPUs; a VF or macvlan counts its NIC's speed ÷ the shares of that NIC in use, over the pod's run. GDR: device PXB or nearer to the GPU."

var colors = []string{"#1b9e77", "#d95f02", "#7570b3", "#e7298a"}

// Plot geometry, in SVG units: four panels in two rows.
const (
	plotW, plotH = 520, 260
	marginL      = 60
	marginT      = 70
	gapX, gapY   = 90, 120
)

// WritePlot draws, as one SVG: GPU utilisation over time for each policy and the placement
// shares side by side (top); the pods' NIC bandwidth per GPU, overall and by pod size (bottom).
func WritePlot(w io.Writer, title string, runs []sim.Result, ms []Metrics) error {
	var b strings.Builder
	x1, y1 := marginL+plotW+gapX, marginT+plotH+gapY
	width, height := x1+plotW+40, y1+plotH+90
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", marginL, html.EscapeString(title))
	utilisationPanel(&b, runs, marginL, marginT)
	barPanel(&b, x1, marginT, "What the pods got (%)", percent, sharesGroups(), ms)
	gb := gbpsScale(ms)
	barPanel(&b, marginL, y1, "NIC bandwidth per GPU over the pods (Gb/s)", gb, bandwidthGroups(), ms)
	barPanel(&b, x1, y1, "Mean NIC bandwidth per GPU by pod size (Gb/s)", gb, sizeGroups(ms), ms)
	for i, m := range ms { // legend
		x := marginL + i*200
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="14" height="14" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			x, y1+plotH+50, colors[i%len(colors)], x+20, y1+plotH+62, html.EscapeString(m.Policy))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11">%s</text>`+"\n", marginL, y1+plotH+84, html.EscapeString(plotNote))
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// scale is a panel's vertical axis: 0 to top, labelled every top/4.
type scale struct {
	top    float64
	format string // of a tick label
}

var percent = scale{top: 100, format: "%.0f%%"}

// gbpsScale fits the largest bandwidth any bar shows, rounded up to a multiple of 50 Gb/s.
func gbpsScale(ms []Metrics) scale {
	top := 0.0
	for _, m := range ms {
		top = max(top, m.Network.Mean, m.Network.Median, m.Network.P10)
		for _, s := range m.Network.BySize {
			top = max(top, s.Mean)
		}
	}
	return scale{top: max(50, math.Ceil(top/50)*50), format: "%.0f"}
}

func axes(b *strings.Builder, x0, y0 int, title string, sc scale) {
	fmt.Fprintf(b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x0, y0-20, html.EscapeString(title))
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/><line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n",
		x0, y0, x0, y0+plotH, x0, y0+plotH, x0+plotW, y0+plotH)
	for q := 0; q <= 4; q++ {
		y := y0 + plotH - q*plotH/4
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ddd"/><text x="%d" y="%d" text-anchor="end">`+sc.format+`</text>`+"\n",
			x0+1, y, x0+plotW, y, x0-6, y+4, sc.top*float64(q)/4)
	}
}

func utilisationPanel(b *strings.Builder, runs []sim.Result, x0, y0 int) {
	axes(b, x0, y0, "GPUs in use", percent)
	horizon := 0.0
	for _, r := range runs {
		horizon = max(horizon, r.Horizon)
	}
	if horizon <= 0 {
		return
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">time: 0 to %.1f hours</text>`+"\n", x0+plotW/2, y0+plotH+34, horizon/3600)
	for i, r := range runs {
		var pts strings.Builder
		y := float64(y0 + plotH)
		for _, s := range r.Samples {
			x := float64(x0) + s.Time/horizon*plotW
			fmt.Fprintf(&pts, "%.1f,%.1f ", x, y) // steps: hold the last value until now
			y = float64(y0+plotH) - float64(s.GPUsUsed)/float64(max(r.GPUsTotal, 1))*plotH
			fmt.Fprintf(&pts, "%.1f,%.1f ", x, y)
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", colors[i%len(colors)], pts.String())
	}
}

// group is a cluster of bars, one per policy; ok is false where a policy has no value. Its label
// may have several lines.
type group struct {
	label string
	value func(Metrics) (v float64, ok bool)
}

// known is a share that is not -1 (nothing to count).
func known(f func(Metrics) float64) func(Metrics) (float64, bool) {
	return func(m Metrics) (float64, bool) {
		v := f(m)
		return v, v >= 0
	}
}

func sharesGroups() []group {
	return []group{
		{"full-node pods\nwith whole PFs", known(func(m Metrics) float64 { return Share(m.FullNodePF, m.FullNode) })},
		{"NIC ≤ PXB when\none was free", known(func(m Metrics) float64 { return Share(m.Near, m.NearPossible) })},
		{"GPUs with a\nGDR path (≤ PXB)", known(func(m Metrics) float64 { return m.Network.GDR })},
		{"GPU utilisation", known(func(m Metrics) float64 { return m.Utilisation })},
	}
}

func bandwidthGroups() []group {
	return []group{
		{"p10", func(m Metrics) (float64, bool) { return m.Network.P10, m.Network.Pods > 0 }},
		{"median", func(m Metrics) (float64, bool) { return m.Network.Median, m.Network.Pods > 0 }},
		{"mean", func(m Metrics) (float64, bool) { return m.Network.Mean, m.Network.Pods > 0 }},
	}
}

func sizeGroups(ms []Metrics) []group {
	var gs []group
	for _, s := range podSizes(ms) {
		gs = append(gs, group{fmt.Sprintf("%d-GPU pods", s), func(m Metrics) (float64, bool) { return m.Network.SizeMean(s) }})
	}
	return gs
}

func barPanel(b *strings.Builder, x0, y0 int, title string, sc scale, groups []group, ms []Metrics) {
	axes(b, x0, y0, title, sc)
	if len(groups) == 0 {
		return
	}
	groupW := plotW / len(groups)
	barW := (groupW - 20) / max(len(ms), 1)
	for g, group := range groups {
		gx := x0 + g*groupW + 10
		for i, m := range ms {
			v, ok := group.value(m)
			if !ok {
				continue
			}
			h := int(min(v/sc.top, 1) * plotH)
			x := gx + i*barW
			fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/><text x="%d" y="%d" text-anchor="middle" font-size="10">%s</text>`+"\n",
				x, y0+plotH-h, barW-2, h, colors[i%len(colors)], x+barW/2, y0+plotH-h-3, label(v))
		}
		for l, line := range strings.Split(group.label, "\n") {
			fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle" font-size="11">%s</text>`+"\n", gx+(groupW-20)/2, y0+plotH+16+l*14, html.EscapeString(line))
		}
	}
}

// label is a bar's value: whole numbers, one decimal below 10.
func label(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}
