// Command topolane-bench measures topolane against baselines:
//
//	topolane-bench placement [--scenario FILE] [--plot FILE]   placement quality, simulated
//	topolane-bench throughput [--nodes N] [--pods N] [--rounds N] the real kube-scheduler with and without the extender on a real API server; the extender's memory
//	topolane-bench demo [--scenario FILE]                       a small scenario through the real kube-scheduler
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"k8s.io/klog/v2"

	"github.com/topolane/topolane/bench/internal/realapi"
)

func main() {
	realapi.RunChildIfAsked() // the throughput command's kube-apiserver, a child of this process
	quietKlog()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "topolane-bench:", err)
		os.Exit(1)
	}
}

// quietKlog keeps the in-process scheduler's logs off the terminal: the bench prints its own.
func quietKlog() {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(io.Discard)
}

const usage = "usage: topolane-bench placement|throughput|demo [flags] (-h for a command's flags)"

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	switch args[0] {
	case "placement":
		return placementCmd(args[1:])
	case "throughput":
		return throughputCmd(ctx, args[1:])
	case "demo":
		return demoCmd(ctx, args[1:])
	}
	return fmt.Errorf("unknown command %q; %s", args[0], usage)
}
