// Package sysfstest writes sysfs trees for tests: a topologytest.Machine laid out as the kernel
// lays it out (devices nested by bridge under devices/pciDDDD:BB, bus/pci/devices as relative
// links, driver links, net/ and its class/net links, infiniband/, SR-IOV files and
// virtfnN/physfn links, NUMA nodes).
package sysfstest

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/topolane/topolane/nodeagent/internal/sysfs"
	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/topologytest"
)

// VF device id and driver of the fixtures' ConnectX virtual functions.
const vfDeviceID = 0x101e

// Write lays the machine out under root, which plays the part of /sys.
func Write(root string, m topologytest.Machine) error {
	w := writer{paths: sysfs.Paths{Root: root}}
	for i := range m.NUMANodes {
		w.file(filepath.Join(w.paths.NUMANodes(), fmt.Sprintf("node%d", i), "cpulist"), fmt.Sprintf("%d-%d", i*64, i*64+63))
	}
	for _, r := range m.Roots {
		w.dir(filepath.Join(w.paths.Devices(), r.HostBridge()))
		w.functions(filepath.Join(w.paths.Devices(), r.HostBridge()), r.Fns, r.NUMA)
	}
	return w.err
}

// writer remembers its first error so that the layout reads as a list of steps.
type writer struct {
	paths sysfs.Paths
	err   error
}

func (w *writer) functions(parent string, fns []topologytest.Fn, numa int) {
	for _, f := range fns {
		dir := filepath.Join(parent, f.Addr)
		w.function(dir, f.Addr, f.Vendor, f.Device, f.Class, f.Driver, numa)
		if f.Kind == topologytest.KindNIC {
			w.nic(parent, f, numa)
		}
		w.functions(dir, f.Children, numa)
	}
}

// function writes the attributes every PCI function has, and its bus/pci/devices link.
func (w *writer) function(dir, addr string, vendor, device uint16, class uint32, driver string, numa int) {
	w.file(filepath.Join(dir, "vendor"), fmt.Sprintf("0x%04x", vendor))
	w.file(filepath.Join(dir, "device"), fmt.Sprintf("0x%04x", device))
	w.file(filepath.Join(dir, "subsystem_vendor"), fmt.Sprintf("0x%04x", vendor))
	w.file(filepath.Join(dir, "subsystem_device"), fmt.Sprintf("0x%04x", device))
	w.file(filepath.Join(dir, "class"), fmt.Sprintf("0x%06x", class))
	w.file(filepath.Join(dir, "numa_node"), fmt.Sprint(numa))
	w.file(filepath.Join(dir, "modalias"), Modalias(vendor, device, class))
	if driver != "" {
		drv := filepath.Join(w.paths.Root, "bus", "pci", "drivers", driver)
		w.dir(drv)
		w.link(filepath.Join(dir, "driver"), drv)
	}
	w.link(w.paths.PCIDevice(addr), dir)
}

// Modalias is the kernel's modalias of a PCI function.
func Modalias(vendor, device uint16, class uint32) string {
	return fmt.Sprintf("pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X",
		vendor, device, vendor, device, class>>16, class>>8&0xff, class&0xff)
}

// nic writes a NIC's netdev, RDMA device and SR-IOV state; VFs go beside the PF, under parent.
func (w *writer) nic(parent string, f topologytest.Fn, numa int) {
	dir := filepath.Join(parent, f.Addr)
	w.netdev(dir, f.Netdev, f.RDMA, f.SpeedMbps, f.LinkLayer())
	if f.TotalVFs == 0 {
		return
	}
	w.file(filepath.Join(dir, "sriov_totalvfs"), fmt.Sprint(f.TotalVFs))
	w.file(filepath.Join(dir, "sriov_numvfs"), fmt.Sprint(f.NumVFs))
	for _, vf := range f.VFs() {
		vfDir := filepath.Join(parent, vf.Addr)
		w.function(vfDir, vf.Addr, f.Vendor, vfDeviceID, f.Class, f.Driver, numa)
		w.netdev(vfDir, vf.Netdev, vf.RDMA, f.SpeedMbps, f.LinkLayer())
		w.link(filepath.Join(dir, fmt.Sprintf("virtfn%d", vf.Index)), vfDir)
		w.link(filepath.Join(vfDir, "physfn"), dir)
	}
}

// netdev writes a function's netdev (with its device link and its class/net entry) and RDMA
// device (with port 1's link layer).
func (w *writer) netdev(dir, name, rdma string, speed int, linkLayer string) {
	if name != "" {
		w.file(filepath.Join(dir, "net", name, "speed"), fmt.Sprint(speed))
		w.file(filepath.Join(dir, "net", name, "operstate"), "up")
		w.link(filepath.Join(dir, "net", name, "device"), dir)
		w.link(w.paths.ClassNet(name), filepath.Join(dir, "net", name))
	}
	if rdma != "" {
		w.file(filepath.Join(dir, "infiniband", rdma, "node_type"), "1: CA")
		w.file(filepath.Join(dir, "infiniband", rdma, "ports", "1", "link_layer"), sysfsLinkLayer[linkLayer])
	}
}

// sysfsLinkLayer is how sysfs spells each link layer.
var sysfsLinkLayer = map[string]string{topology.LinkLayerEthernet: "Ethernet", topology.LinkLayerInfiniBand: "InfiniBand"}

func (w *writer) dir(path string) {
	if w.err == nil {
		w.err = os.MkdirAll(path, 0o755)
	}
}

func (w *writer) file(path, content string) {
	w.dir(filepath.Dir(path))
	if w.err == nil {
		w.err = os.WriteFile(path, []byte(content+"\n"), 0o644)
	}
}

// link makes a relative symlink at path pointing to target, as sysfs does.
func (w *writer) link(path, target string) {
	w.dir(filepath.Dir(path))
	if w.err != nil {
		return
	}
	rel, err := filepath.Rel(filepath.Dir(path), target)
	if err == nil {
		err = os.Symlink(rel, path)
	}
	w.err = err
}
