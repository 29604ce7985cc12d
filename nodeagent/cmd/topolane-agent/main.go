// Command topolane-agent is topolane's node agent: `run` is the DaemonSet's daemon, `discover`
// prints what it finds on the node.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `topolane-agent: topolane's node agent

Usage:
  topolane-agent run [--node-name NAME] [--kubeconfig FILE] [flags]   (-h for the flags)
  topolane-agent discover [--sysfs-root DIR] [-o table|json] [--node-name NAME]
                          [--node-ip IPS] [--nics LIST] [--exclude-nics LIST]

Commands:
  run        discover and publish the node, serve the topolane-cni plugin, return devices on restart
  discover   print the node's GPUs and NICs and how near each pair is, like nvidia-smi topo -m
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the exit code: 0 ok, 1 failed, 2 bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "discover":
		return discoverCmd(args[1:], stdout, stderr)
	case "run":
		return runCmd(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "topolane-agent: unknown command %q\n\n%s", args[0], usage)
	return 2
}
