package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/topolane/topolane/bench/internal/report"
	"github.com/topolane/topolane/bench/internal/scenario"
	"github.com/topolane/topolane/bench/internal/sim"
	"github.com/topolane/topolane/extender/embedded"
)

// scenarioDir is bench/scenarios, wherever the command runs from.
func scenarioDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "scenarios")
}

func placementCmd(args []string) error {
	fs := flag.NewFlagSet("placement", flag.ContinueOnError)
	path := fs.String("scenario", filepath.Join(scenarioDir(), "default.yaml"), "scenario file")
	plot := fs.String("plot", "placement.svg", "where to draw the plot (SVG)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sc, err := scenario.Load(*path)
	if err != nil {
		return err
	}
	runs, ms, err := compare(sc, os.Stderr)
	if err != nil {
		return err
	}
	fmt.Printf("%s (seed %d)\n\n", sc.Name, sc.Seed)
	if err := report.WriteTable(os.Stdout, ms); err != nil {
		return err
	}
	f, err := os.Create(*plot)
	if err != nil {
		return fmt.Errorf("writing the plot: %w", err)
	}
	if err := report.WritePlot(f, fmt.Sprintf("topolane vs. baselines: %s", sc.Name), runs, ms); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Printf("\nplot: %s\n", *plot)
	return nil
}

// compare replays the scenario's trace under topolane (a device per rail), topolane with one
// device per pod (before rails), and the two baselines.
func compare(sc *scenario.Scenario, progress *os.File) ([]sim.Result, []report.Metrics, error) {
	nodes, jobs := sc.Cluster(), sc.Trace()
	largest := 0
	for _, n := range nodes {
		largest = max(largest, len(n.Machine.Node().GPUs))
	}
	cfg := embedded.Config{NoPF: embedded.NoPFReject}
	policies := []sim.Policy{
		sim.NewTopolane(nodes, cfg, sc.Seed),
		sim.NewOneNIC(nodes, cfg, sc.Seed),
		sim.NewDefaultLike(sc.Seed),
		sim.NewNUMAOnly(sc.Seed),
	}
	var runs []sim.Result
	var ms []report.Metrics
	for _, p := range policies {
		r, err := sim.Run(p, nodes, jobs, bar(progress, p.Name(), len(jobs)))
		if err != nil {
			return nil, nil, err
		}
		runs = append(runs, r)
		ms = append(ms, report.Measure(r, largest))
	}
	return runs, ms, nil
}

// bar reports progress on w: a bar redrawn in place on a terminal, a line at the end otherwise.
func bar(w *os.File, label string, total int) func(done int) {
	last := -1
	tty := isTerminal(w)
	return func(done int) {
		pct := done * 100 / max(total, 1)
		switch {
		case pct == last:
			return
		case tty:
			fmt.Fprintf(w, "\r%-14s [%-40s] %3d%%", label, strings.Repeat("#", pct*40/100), pct)
			if done == total {
				fmt.Fprintln(w)
			}
		case done == total:
			fmt.Fprintf(w, "%-14s %d done\n", label, total)
		}
		last = pct
	}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
