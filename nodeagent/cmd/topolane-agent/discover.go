package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/jaypipes/pcidb"

	"github.com/topolane/topolane/nodeagent/internal/discovery"
	"github.com/topolane/topolane/nodeagent/internal/gpu"
	"github.com/topolane/topolane/nodeagent/internal/netbind"
	"github.com/topolane/topolane/nodeagent/internal/sysfs"
	"github.com/topolane/topolane/nodeagent/internal/topotable"
	"github.com/topolane/topolane/topology"
)

func discoverCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("discover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("sysfs-root", sysfs.DefaultRoot, "where sysfs is mounted (a fixture tree in tests; NVML and the host's links and RDMA mode are asked only for the real /sys)")
	output := fs.String("o", "table", "output format: table or json")
	nodeName := fs.String("node-name", defaultNodeName(), "node name to report (default: $NODE_NAME, else the hostname)")
	nodeIPs := fs.String("node-ip", "", "the Node's InternalIP addresses, comma-separated: the NIC that holds one is excluded (run reads them from the Node)")
	nics := addNICFlags(fs)
	rails := addRailsFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || (*output != "table" && *output != "json") {
		fmt.Fprintf(stderr, "topolane-agent discover: want -o table or -o json and no arguments, got -o %q %q\n", *output, fs.Args())
		return 2
	}
	o := discoverOptions{root: *root, nodeName: *nodeName, thisMachine: filepath.Clean(*root) == sysfs.DefaultRoot}
	var err error
	if o.nics, o.excludeNICs, err = nics.parse(); err == nil {
		o.nodeIPs, err = parseIPs(*nodeIPs)
	}
	if err == nil {
		o.rails, err = readRails(*rails)
	}
	if err != nil {
		fmt.Fprintf(stderr, "topolane-agent discover: %v\n", err)
		return 2
	}
	res, err := discover(o)
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

// discoverOptions say what to discover and how; run and discover fill them from their flags.
type discoverOptions struct {
	root, nodeName string
	// thisMachine: root is this machine's sysfs, so NVML, the host's links and the RDMA mode
	// describe the same machine (not so for a fixture tree).
	thisMachine       bool
	nodeIPs           []net.IP
	nics, excludeNICs discovery.Selectors
	lastNames         map[string]string
	rails             map[string]string // GPU → NIC pins (--rails)
}

func (o discoverOptions) discovery(db *pcidb.PCIDB) discovery.Options {
	opts := discovery.Options{NodeName: o.nodeName, Sysfs: sysfs.Paths{Root: o.root}, PCIDB: db,
		NodeIPs: o.nodeIPs, NICs: o.nics, ExcludeNICs: o.excludeNICs, LastNames: o.lastNames, Rails: o.rails}
	if o.thisMachine {
		opts.NVML = gpu.Library(nvml.New())
		opts.Host = netbind.Netlink{}
		opts.RDMA = netbind.Netlink{}
	}
	return opts
}

func discover(o discoverOptions) (*discovery.Result, error) {
	if _, err := os.Stat(filepath.Join(o.root, "bus", "pci")); err != nil {
		return nil, fmt.Errorf("%s does not look like sysfs (no bus/pci): pass --sysfs-root the sysfs mount, e.g. /sys or /host/sys", o.root)
	}
	db, dbNote := sysfs.LoadPCIDB()
	res, err := discovery.Discover(o.discovery(db))
	if err != nil {
		return nil, err
	}
	if dbNote != "" {
		res.Notes = append(res.Notes, dbNote)
	}
	if !o.thisMachine && len(o.nodeIPs) > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("--node-ip is not matched: %s is not this machine's sysfs, whose links hold the addresses", o.root))
	}
	return res, nil
}

// nicFlags are --nics and --exclude-nics, shared by run and discover.
type nicFlags struct{ nics, exclude *string }

func addNICFlags(fs *flag.FlagSet) nicFlags {
	return nicFlags{
		nics:    fs.String("nics", "", "only these NICs may be handed out: comma-separated PCI addresses (0000:1a:00.0), netdev globs (enp*s0np0) or vendor:device ids (15b3:1021)"),
		exclude: fs.String("exclude-nics", "", "never hand out these NICs: PCI addresses, netdev globs or vendor:device ids, comma-separated"),
	}
}

func (f nicFlags) parse() (nics, exclude discovery.Selectors, err error) {
	if nics, err = discovery.ParseSelectors("--nics", *f.nics); err != nil {
		return nil, nil, err
	}
	exclude, err = discovery.ParseSelectors("--exclude-nics", *f.exclude)
	return nics, exclude, err
}

// addRailsFlag is --rails, shared by run and discover.
func addRailsFlag(fs *flag.FlagSet) *string {
	return fs.String("rails", "auto", "each GPU's rail (the NIC NCCL drives for it): auto (the nearest NIC, ties spread), or a YAML file mapping GPU (PCI address, UUID or index) to NIC (PCI address or netdev) where the fabric is wired otherwise; GPUs it does not name stay auto")
}

func readRails(value string) (map[string]string, error) {
	if value == "auto" || value == "" {
		return nil, nil
	}
	return discovery.ReadRails(value)
}

func parseIPs(list string) ([]net.IP, error) {
	var out []net.IP
	for _, s := range splitList(list) {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("--node-ip %q: %q is not an IP address", list, s)
		}
		out = append(out, ip)
	}
	return out, nil
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
