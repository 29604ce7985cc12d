// Package sysfs reads PCI functions, SR-IOV, netdevs and RDMA devices from sysfs. Every path is
// built from one root, the sysfs mount (/sys on a node, a fixture tree in tests), so that nothing
// here touches the machine's own /sys unless told to.
package sysfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultRoot is where sysfs is mounted on a node.
const DefaultRoot = "/sys"

// Paths builds sysfs paths from Root.
type Paths struct {
	Root string
}

// PCIDevices is the directory of links to every PCI function.
func (p Paths) PCIDevices() string { return filepath.Join(p.Root, "bus", "pci", "devices") }

// PCIDevice is a path inside one PCI function's directory.
func (p Paths) PCIDevice(addr string, elem ...string) string {
	return filepath.Join(append([]string{p.PCIDevices(), addr}, elem...)...)
}

// Devices is the root of the device tree, where canonical PCI paths live.
func (p Paths) Devices() string { return filepath.Join(p.Root, "devices") }

// NUMANodes is the directory of NUMA nodes.
func (p Paths) NUMANodes() string { return filepath.Join(p.Root, "devices", "system", "node") }

// readString returns a sysfs attribute without its trailing newline.
func readString(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// readInt reads a decimal sysfs attribute.
func readInt(path string) (int, error) {
	s, err := readString(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %q is not a number (truncated or corrupt file?)", path, s)
	}
	return v, nil
}

// readOptionalInt reads an attribute that may be absent; absent gives ok == false.
func readOptionalInt(path string) (v int, ok bool, err error) {
	v, err = readInt(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	return v, err == nil, err
}

// listDir returns the names in dir, sorted; a missing dir is empty.
func listDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, nil
}

// linkBase returns the last element of a symlink's target ("mlx5_core" for a driver link).
func linkBase(path string) (string, error) {
	target, err := os.Readlink(path)
	if err != nil {
		return "", err
	}
	return filepath.Base(target), nil
}
