// Command bandwidthbench measures topolane's shaping (`make bench-bandwidth`, as root): a
// stand-in device (a veth end, and a macvlan) moved into a throwaway pod namespace and shaped
// there, TCP sent through it in each direction, and, in the same run, the reference CNI
// bandwidth plugin on a veth pair with the same average and the burst containerd passes. It
// prints the burst-phase and sustained rates against the configured ones and draws the rate
// over time as SVG.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/topolane/topolane/nodeagent/internal/shaping"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bandwidthbench:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	average, peak, burst string
	duration, bin        time.Duration
	runs                 int
	plot, plugin         string
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bandwidthbench", flag.ContinueOnError)
	fs.StringVar(&o.average, "average", "50M", "the average rate, bit/s, both directions (kubernetes.io/*-bandwidth)")
	fs.StringVar(&o.peak, "peak", "200M", "topolane's peak rate, bit/s (topolane.io/*-peak-bandwidth)")
	fs.StringVar(&o.burst, "burst", "200M", "topolane's burst, bits (topolane.io/*-burst)")
	fs.DurationVar(&o.duration, "duration", 6*time.Second, "how long each flow runs")
	fs.DurationVar(&o.bin, "bin", 10*time.Millisecond, "the measurement's resolution")
	fs.IntVar(&o.runs, "runs", 3, "runs of each flow; the table shows their medians")
	fs.StringVar(&o.plot, "plot", "", "write the rate over time as SVG to this file")
	fs.StringVar(&o.plugin, "bandwidth-plugin", "", "the CNI bandwidth plugin binary (default: built from the module's pinned version)")
	return o, fs.Parse(args)
}

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	if o.runs < 1 {
		return fmt.Errorf("--runs %d: run each flow at least once", o.runs)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("this bench shapes traffic in network namespaces: run it as root")
	}
	limits, err := shaping.Parse(map[string]string{
		shaping.EgressBandwidth: o.average, shaping.EgressPeak: o.peak, shaping.EgressBurst: o.burst,
		shaping.IngressBandwidth: o.average, shaping.IngressPeak: o.peak, shaping.IngressBurst: o.burst,
	}, nil)
	if err != nil {
		return err
	}
	plugin := o.plugin
	if plugin == "" {
		dir, err := os.MkdirTemp("", "topolane-bandwidthbench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if plugin, err = buildPlugin(dir); err != nil {
			return err
		}
	}
	var runs []measured
	for _, s := range scenarios(limits, plugin) {
		m, err := s.medianOf(ctx, o)
		if err != nil {
			return fmt.Errorf("%s, %s: %w", s.setup, s.direction, err)
		}
		runs = append(runs, m)
	}
	writeTable(out, runs, o.runs)
	if o.plot == "" {
		return nil
	}
	f, err := os.Create(o.plot)
	if err != nil {
		return err
	}
	if err := writePlot(f, runs, o); err != nil {
		f.Close()
		return err
	}
	fmt.Fprintf(out, "\nplot: %s\n", o.plot)
	return f.Close()
}
