package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/topolane/topolane/nodeagent/internal/discovery"
	"github.com/topolane/topolane/nodeagent/internal/gpu"
	"github.com/topolane/topolane/nodeagent/internal/sysfs"
	"github.com/topolane/topolane/nodeagent/internal/topotable"
	"github.com/topolane/topolane/topology"
)

func discoverCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("discover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("sysfs-root", sysfs.DefaultRoot, "where sysfs is mounted (a fixture tree in tests; NVML is asked only for the real /sys)")
	output := fs.String("o", "table", "output format: table or json")
	nodeName := fs.String("node-name", defaultNodeName(), "node name to report (default: $NODE_NAME, else the hostname)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || (*output != "table" && *output != "json") {
		fmt.Fprintf(stderr, "topolane-agent discover: want -o table or -o json and no arguments, got -o %q %q\n", *output, fs.Args())
		return 2
	}
	res, err := discover(*root, *nodeName)
	if err != nil {
		fmt.Fprintf(stderr, "topolane-agent discover: %v\n", err)
		return 1
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if err := writeResult(stdout, res, *output); err != nil {
		fmt.Fprintf(stderr, "topolane-agent discover: %v\n", err)
		return 1
	}
	return 0
}

func discover(root, nodeName string) (*discovery.Result, error) {
	if _, err := os.Stat(filepath.Join(root, "bus", "pci")); err != nil {
		return nil, fmt.Errorf("%s does not look like sysfs (no bus/pci): pass --sysfs-root the sysfs mount, e.g. /sys or /host/sys", root)
	}
	db, dbNote := sysfs.LoadPCIDB()
	opts := discovery.Options{NodeName: nodeName, Sysfs: sysfs.Paths{Root: root}, PCIDB: db}
	if filepath.Clean(root) == sysfs.DefaultRoot {
		opts.NVML = gpu.Library(nvml.New())
	}
	res, err := discovery.Discover(opts)
	if err == nil && dbNote != "" {
		res.Notes = append(res.Notes, dbNote)
	}
	return res, err
}

func writeResult(w io.Writer, res *discovery.Result, format string) error {
	if format == "table" {
		return topotable.Write(w, res.Node, res.Notes)
	}
	data, err := topology.Encode(res.Node)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", data)
	return err
}

func defaultNodeName() string {
	if n := os.Getenv("NODE_NAME"); n != "" {
		return n
	}
	h, _ := os.Hostname()
	return h
}
