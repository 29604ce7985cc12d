package sysfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/topolane/topolane/topology"
)

// ErrNoNetdev is returned for a PCI function with no netdev in the namespace sysfs shows: bound
// to vfio-pci or to no driver, or its netdev is in a pod's namespace.
var ErrNoNetdev = errors.New("no netdev")

// ClassNet is a path under class/net, where every netdev of the namespace sysfs shows is listed.
func (p Paths) ClassNet(elem ...string) string {
	return filepath.Join(append([]string{p.Root, "class", "net"}, elem...)...)
}

// NetDev returns the current netdev name of PCI function addr, a PF or a VF. Names change
// (udev, a pod, a temporary name), the PCI address does not: find a device by address at every
// use. Switchdev representors and IPoIB child interfaces listed beside the function's own
// netdev are not it.
func (p Paths) NetDev(addr string) (string, error) {
	if err := validPCIAddress(addr); err != nil {
		return "", err
	}
	if _, err := os.Stat(p.PCIDevice(addr)); err != nil {
		return "", fmt.Errorf("PCI function %s is not on this node (%s): %w", addr, p.PCIDevice(addr), os.ErrNotExist)
	}
	names, err := p.NetDevs(addr)
	if err != nil {
		return "", err
	}
	names = slices.DeleteFunc(names, func(name string) bool { return p.notOwnNetdev(addr, name) })
	switch len(names) {
	case 1:
		return names[0], nil
	case 0:
		return "", fmt.Errorf("PCI function %s has no netdev in this network namespace: %s: %w", addr, p.whyNoNetdev(addr), ErrNoNetdev)
	}
	return "", fmt.Errorf("PCI function %s has several netdevs (%s): topolane hands out functions with one", addr, strings.Join(names, ", "))
}

// representor is the phys_port_name of a switchdev representor of a VF or SF ("pf0vf3").
var representor = regexp.MustCompile(`^(c\d+)?pf\d+(vf|sf)\d+$`)

// notOwnNetdev: a representor, or an IPoIB child (it has a parent attribute).
func (p Paths) notOwnNetdev(addr, name string) bool {
	port, _ := readString(p.PCIDevice(addr, "net", name, "phys_port_name"))
	_, err := os.Stat(p.PCIDevice(addr, "net", name, "parent"))
	return representor.MatchString(port) || err == nil
}

// userspaceDrivers make no netdev: the function is for a VM or a userspace driver.
var userspaceDrivers = map[string]bool{"vfio-pci": true, "pci-stub": true, "uio_pci_generic": true, "igb_uio": true}

// whyNoNetdev says why a function shows no netdev.
func (p Paths) whyNoNetdev(addr string) string {
	driver, err := linkBase(p.PCIDevice(addr, "driver"))
	switch {
	case err != nil:
		return "it is bound to no driver"
	case userspaceDrivers[driver]:
		return fmt.Sprintf("it is bound to %s, which makes no netdev", driver)
	}
	return fmt.Sprintf("its netdev (driver %s) is in another network namespace, a pod's?", driver)
}

// NoNetdevDriver reports whether a function's driver makes no netdev (vfio-pci, or none): such
// a function cannot move into a pod as a netdev. driver is the name of its driver link.
func NoNetdevDriver(driver string) bool { return driver == "" || userspaceDrivers[driver] }

// NetDevPCIAddress returns the PCI address of the function behind netdev name, from its
// class/net/<name>/device link (for a virtio NIC, the PCI function above the virtio device).
func (p Paths) NetDevPCIAddress(name string) (string, error) {
	if !validNetdevName(name) {
		return "", fmt.Errorf("%q is not a netdev name", name)
	}
	if _, err := os.Lstat(p.ClassNet(name)); err != nil {
		return "", fmt.Errorf("no netdev %s in this network namespace (%s): %w", name, p.ClassNet(name), os.ErrNotExist)
	}
	dev, err := filepath.EvalSymlinks(p.ClassNet(name, "device"))
	if err != nil {
		return "", fmt.Errorf("netdev %s is not a PCI device (%s: %v): a virtual link?", name, p.ClassNet(name, "device"), err)
	}
	for _, candidate := range []string{filepath.Base(dev), filepath.Base(filepath.Dir(dev))} {
		if validPCIAddress(candidate) == nil {
			return candidate, nil
		}
	}
	return "", fmt.Errorf("netdev %s is on %s, not on a PCI function", name, dev)
}

func validPCIAddress(addr string) error {
	if norm, err := topology.NormalizePCIAddress(addr); err != nil || norm != addr {
		return fmt.Errorf("%q is not a PCI address in sysfs form (0000:1a:00.0)", addr)
	}
	return nil
}

// validNetdevName is the kernel's dev_valid_name: 1 to 15 bytes, not . or .., no / : or space.
func validNetdevName(name string) bool {
	return name != "" && len(name) < 16 && name != "." && name != ".." && !strings.ContainsAny(name, "/: \t\n\v\f\r")
}

// RDMALinkLayer reads port 1's link_layer of RDMA device dev of function addr:
// topology.LinkLayerInfiniBand or LinkLayerEthernet; "" when sysfs does not say.
func (p Paths) RDMALinkLayer(addr, dev string) (string, error) {
	path := p.PCIDevice(addr, "infiniband", dev, "ports", "1", "link_layer")
	s, err := readString(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", nil
	case err != nil:
		return "", err
	case s == "InfiniBand":
		return topology.LinkLayerInfiniBand, nil
	case s == "Ethernet":
		return topology.LinkLayerEthernet, nil
	}
	return "", fmt.Errorf("%s holds %q, neither InfiniBand nor Ethernet", path, s)
}
