package sysfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jaypipes/ghw"
	"github.com/jaypipes/ghw/pkg/pci"
	"github.com/jaypipes/pcidb"

	"github.com/topolane/topolane/topology"
)

// Function is one PCI function as sysfs shows it.
type Function struct {
	Address  string
	Vendor   uint16
	Device   uint16
	Class    uint32 // class, subclass and programming interface: 0x030200 for a 3D controller
	Product  string // name from the PCI id database; empty when it does not know the device
	Driver   string
	NUMANode int // topology.NoNUMA when the platform did not say
	Path     topology.PCIePath
}

// Scan is the PCI functions of a machine, with what could not be read. A warning names the
// file at fault; the function it concerns is left out or left partly unknown.
type Scan struct {
	Functions []Function
	Warnings  []string
}

func (s *Scan) warn(format string, args ...any) {
	s.Warnings = append(s.Warnings, fmt.Sprintf(format, args...))
}

// ScanPCI lists every PCI function under the root. It enumerates bus/pci/devices itself and has
// ghw decode each function's modalias, because ghw's own scan returns nothing at all when a
// single function lacks a readable modalias; here that function alone is skipped, with a warning.
func (p Paths) ScanPCI(db *pcidb.PCIDB) (Scan, error) {
	var scan Scan
	info, err := ghw.PCI(ghw.WithPathOverrides(ghw.PathOverrides{"/sys": p.Root}), ghw.WithPCIDB(db),
		ghw.WithDisableTopology(), ghw.WithDisableWarnings())
	if err != nil {
		return scan, fmt.Errorf("reading PCI devices under %s with ghw: %w", p.Root, err)
	}
	addrs, err := listDir(p.PCIDevices())
	if err != nil {
		return scan, err
	}
	if len(addrs) == 0 {
		scan.warn("no PCI functions under %s: is --sysfs-root the sysfs mount (e.g. /sys)?", p.PCIDevices())
	}
	for _, addr := range addrs {
		if fn, ok := p.function(info, addr, &scan); ok {
			scan.Functions = append(scan.Functions, fn)
		}
	}
	return scan, nil
}

// function reads one PCI function; ok is false when it cannot be used at all.
func (p Paths) function(info *pci.Info, addr string, scan *Scan) (Function, bool) {
	if norm, err := topology.NormalizePCIAddress(addr); err != nil || norm != addr {
		scan.warn("skipping %s: not a PCI address", p.PCIDevice(addr))
		return Function{}, false
	}
	modalias, err := readString(p.PCIDevice(addr, "modalias"))
	if err != nil {
		scan.warn("skipping PCI function %s: %v", addr, err)
		return Function{}, false
	}
	dev := info.ParseDevice(addr, modalias)
	if dev == nil {
		scan.warn("skipping PCI function %s: %s holds %q, not a PCI modalias", addr, p.PCIDevice(addr, "modalias"), modalias)
		return Function{}, false
	}
	path, err := p.canonicalPath(addr)
	if err != nil {
		scan.warn("PCI function %s: %v; its connection levels will show as ?", addr, err)
	}
	fn := Function{Address: addr, Path: path, NUMANode: p.numaNode(addr, scan)}
	fn.Vendor, fn.Device, fn.Class = ids(dev)
	if dev.Product != nil && dev.Product.Name != pcidbUnknown {
		fn.Product = dev.Product.Name
	}
	fn.Driver, _ = linkBase(p.PCIDevice(addr, "driver"))
	return fn, true
}

// pcidbUnknown is the name ghw gives what the PCI id database does not list.
const pcidbUnknown = "unknown"

// ids returns the numeric ids ghw decoded from the modalias (hex strings there).
func ids(dev *pci.Device) (vendor, device uint16, class uint32) {
	hex := func(s string) uint64 { v, _ := strconv.ParseUint(s, 16, 32); return v }
	vendor, device = uint16(hex(dev.Vendor.ID)), uint16(hex(dev.Product.ID))
	class = uint32(hex(dev.Class.ID)<<16 | hex(dev.Subclass.ID)<<8 | hex(dev.ProgrammingInterface.ID))
	return vendor, device, class
}

// numaNode reads numa_node; -1, a missing file or a bad one give topology.NoNUMA.
func (p Paths) numaNode(addr string, scan *Scan) int {
	v, ok, err := readOptionalInt(p.PCIDevice(addr, "numa_node"))
	switch {
	case err != nil:
		scan.warn("PCI function %s: %v; taking its NUMA node as unknown", addr, err)
	case ok && v >= 0:
		return v
	}
	return topology.NoNUMA
}

// canonicalPath follows bus/pci/devices/<addr> into the device tree and returns the host
// bridge and every function from the root port down, e.g. pci0000:17, 0000:17:01.0, ..., <addr>.
// sysfs links are relative, so the target is read once and joined as text.
func (p Paths) canonicalPath(addr string) (topology.PCIePath, error) {
	link := p.PCIDevice(addr)
	target, err := os.Readlink(link)
	if err != nil {
		return nil, fmt.Errorf("cannot read link %s: %w", link, err)
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(p.PCIDevices(), target)
	}
	rel, err := filepath.Rel(p.Devices(), target)
	if err != nil || strings.HasPrefix(rel, "..") {
		return nil, fmt.Errorf("%s points to %s, outside %s", link, target, p.Devices())
	}
	return parsePCIePath(rel, addr)
}

func parsePCIePath(rel, addr string) (topology.PCIePath, error) {
	parts := strings.Split(filepath.ToSlash(rel), "/")
	if len(parts) < 2 || !strings.HasPrefix(parts[0], "pci") || parts[len(parts)-1] != addr {
		return nil, fmt.Errorf("device path %q is not pciDDDD:BB/.../%s", rel, addr)
	}
	for _, fn := range parts[1:] {
		if _, err := topology.NormalizePCIAddress(fn); err != nil {
			return nil, fmt.Errorf("device path %q: %w", rel, err)
		}
	}
	return parts, nil
}

// LoadPCIDB loads the PCI id database (pci.ids; PCIDB_PATH overrides where). Without one,
// devices are still found by their numeric ids and only their names are missing, so the
// returned database is then empty and note says what to install.
func LoadPCIDB() (db *pcidb.PCIDB, note string) {
	db, err := pcidb.New()
	if err != nil {
		return EmptyPCIDB(), fmt.Sprintf("device names unavailable (%v): install pci.ids (Debian: pci.ids, RHEL: hwdata) or set PCIDB_PATH", err)
	}
	return db, ""
}

// EmptyPCIDB knows no names: devices are identified by their ids alone.
func EmptyPCIDB() *pcidb.PCIDB {
	return &pcidb.PCIDB{Classes: map[string]*pcidb.Class{}, Vendors: map[string]*pcidb.Vendor{}, Products: map[string]*pcidb.Product{}}
}
