package report

import (
	"fmt"
	"html"
	"io"
	"strings"

	"github.com/topolane/topolane/bench/internal/sim"
)

var colors = []string{"#1b9e77", "#d95f02", "#7570b3", "#e7298a"}

// Plot geometry, in SVG units.
const (
	plotW, plotH = 520, 300
	marginL      = 60
	marginT      = 50
	gap          = 90
)

// WritePlot draws GPU utilisation over time for each policy (left) and the placement shares
// side by side (right) as one SVG.
func WritePlot(w io.Writer, title string, runs []sim.Result, ms []Metrics) error {
	var b strings.Builder
	width := marginL + plotW + gap + plotW + 40
	height := marginT + plotH + 90
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", marginL, html.EscapeString(title))
	utilisationPanel(&b, runs, marginL, marginT)
	sharesPanel(&b, ms, marginL+plotW+gap, marginT)
	for i, r := range runs { // legend
		x := marginL + i*170
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="14" height="14" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			x, marginT+plotH+50, colors[i%len(colors)], x+20, marginT+plotH+62, html.EscapeString(r.Policy))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func axes(b *strings.Builder, x0, y0 int, title, xlabel string) {
	fmt.Fprintf(b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x0, y0-10, title)
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/><line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n",
		x0, y0, x0, y0+plotH, x0, y0+plotH, x0+plotW, y0+plotH)
	for pct := 0; pct <= 100; pct += 25 {
		y := y0 + plotH - pct*plotH/100
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ddd"/><text x="%d" y="%d" text-anchor="end">%d%%</text>`+"\n",
			x0+1, y, x0+plotW, y, x0-6, y+4, pct)
	}
	if xlabel != "" {
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", x0+plotW/2, y0+plotH+34, xlabel)
	}
}

func utilisationPanel(b *strings.Builder, runs []sim.Result, x0, y0 int) {
	axes(b, x0, y0, "GPUs in use", "")
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

func sharesPanel(b *strings.Builder, ms []Metrics, x0, y0 int) {
	axes(b, x0, y0, "What the pods got", "")
	groups := []struct {
		label string
		value func(Metrics) float64
	}{
		{"full-node pods with a whole PF", func(m Metrics) float64 { return Share(m.FullNodePF, m.FullNode) }},
		{"NIC ≤ PXB when one was free", func(m Metrics) float64 { return Share(m.Near, m.NearPossible) }},
		{"GPU utilisation", func(m Metrics) float64 { return m.Utilisation }},
	}
	groupW := plotW / len(groups)
	barW := (groupW - 30) / max(len(ms), 1)
	for g, group := range groups {
		gx := x0 + g*groupW + 15
		for i, m := range ms {
			v := max(group.value(m), 0)
			h := int(v * plotH / 100)
			x := gx + i*barW
			fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/><text x="%d" y="%d" text-anchor="middle" font-size="10">%.0f</text>`+"\n",
				x, y0+plotH-h, barW-2, h, colors[i%len(colors)], x+barW/2, y0+plotH-h-3, v)
		}
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle" font-size="11">%s</text>`+"\n", gx+(groupW-30)/2, y0+plotH+16, html.EscapeString(group.label))
	}
}
