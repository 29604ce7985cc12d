package sysfs_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/topolane/topolane/nodeagent/internal/sysfs"
	"github.com/topolane/topolane/nodeagent/internal/sysfs/sysfstest"
	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/topologytest"
)

// The CPU node fixture: a ConnectX PF 0000:01:00.0 (enp1s0np0) with VFs 0000:01:00.2-5
// (enp1s0np0v0-3) and a management NIC 0000:02:00.0 (eno1).
const (
	pf = "0000:01:00.0"
	vf = "0000:01:00.3"
)

// tree writes the CPU node fixture and applies changes to it, as a node's sysfs changes.
func tree(t *testing.T, changes ...func(p sysfs.Paths) error) sysfs.Paths {
	t.Helper()
	p := sysfs.Paths{Root: filepath.Join(t.TempDir(), "sys")}
	if err := sysfstest.Write(p.Root, topologytest.NoGPU()); err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if err := c(p); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// rebind binds a function to another driver ("" for none) and takes its netdev away, as
// unbinding a netdev driver does.
func rebind(addr, driver string) func(p sysfs.Paths) error {
	return func(p sysfs.Paths) error {
		if err := os.RemoveAll(p.PCIDevice(addr, "net")); err != nil {
			return err
		}
		if err := os.Remove(p.PCIDevice(addr, "driver")); err != nil || driver == "" {
			return err
		}
		return os.Symlink("../../../bus/pci/drivers/"+driver, p.PCIDevice(addr, "driver"))
	}
}

// moveToPod takes a function's netdev out of this namespace's sysfs, driver unchanged.
func moveToPod(addr string) func(p sysfs.Paths) error {
	return func(p sysfs.Paths) error { return os.RemoveAll(p.PCIDevice(addr, "net")) }
}

func rename(addr, from, to string) func(p sysfs.Paths) error {
	return func(p sysfs.Paths) error {
		return os.Rename(p.PCIDevice(addr, "net", from), p.PCIDevice(addr, "net", to))
	}
}

// addNetdev adds a netdev beside a function's own, with a phys_port_name or a parent attribute.
func addNetdev(addr, name, attr, value string) func(p sysfs.Paths) error {
	return func(p sysfs.Paths) error {
		dir := p.PCIDevice(addr, "net", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, attr), []byte(value+"\n"), 0o644)
	}
}

func TestNetDev(t *testing.T) {
	for _, tt := range []struct {
		name    string
		addr    string
		changes []func(p sysfs.Paths) error
		want    string
		wantErr string
		is      error
	}{
		{name: "PF", addr: pf, want: "enp1s0np0"},
		{name: "VF", addr: vf, want: "enp1s0np0v1"},
		{name: "renamed by udev", addr: vf, changes: []func(sysfs.Paths) error{rename(vf, "enp1s0np0v1", "eth7")}, want: "eth7"},
		{name: "switchdev PF with representors", addr: pf, want: "enp1s0np0", changes: []func(sysfs.Paths) error{
			addNetdev(pf, "enp1s0np0", "phys_port_name", "p0"), addNetdev(pf, "enp1s0f0r0", "phys_port_name", "pf0vf0"),
			addNetdev(pf, "enp1s0f0r1", "phys_port_name", "c1pf0vf1")}},
		{name: "IPoIB child beside its parent", addr: pf, want: "enp1s0np0", changes: []func(sysfs.Paths) error{
			addNetdev(pf, "enp1s0np0.8001", "parent", "enp1s0np0")}},
		{name: "two netdevs", addr: pf, changes: []func(sysfs.Paths) error{addNetdev(pf, "enp1s0np1", "dev_port", "1")},
			wantErr: "PCI function 0000:01:00.0 has several netdevs (enp1s0np0, enp1s0np1): topolane hands out functions with one"},
		{name: "VF on vfio-pci", addr: vf, changes: []func(sysfs.Paths) error{rebind(vf, "vfio-pci")}, is: sysfs.ErrNoNetdev,
			wantErr: "PCI function 0000:01:00.3 has no netdev in this network namespace: it is bound to vfio-pci, which makes no netdev"},
		{name: "VF without a driver", addr: vf, changes: []func(sysfs.Paths) error{rebind(vf, "")}, is: sysfs.ErrNoNetdev,
			wantErr: "it is bound to no driver"},
		{name: "PF in a pod", addr: pf, changes: []func(sysfs.Paths) error{moveToPod(pf)}, is: sysfs.ErrNoNetdev,
			wantErr: "its netdev (driver mlx5_core) is in another network namespace, a pod's?"},
		{name: "gone", addr: "0000:01:00.7", is: os.ErrNotExist, wantErr: "PCI function 0000:01:00.7 is not on this node"},
		{name: "not an address", addr: "../../../etc", wantErr: `"../../../etc" is not a PCI address in sysfs form`},
		{name: "not in sysfs form", addr: "01:00.0", wantErr: `"01:00.0" is not a PCI address in sysfs form (0000:1a:00.0)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tree(t, tt.changes...).NetDev(tt.addr)
			checkErr(t, err, tt.wantErr, tt.is)
			if got != tt.want {
				t.Errorf("NetDev(%s) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
}

func checkErr(t *testing.T, err error, want string, is error) {
	t.Helper()
	if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
		t.Errorf("error %v, want %q", err, want)
	}
	if is != nil && !errors.Is(err, is) {
		t.Errorf("error %v is not %v", err, is)
	}
}

// virtio adds a virtio NIC as the kernel lays it out: the netdev hangs off virtio0 below the
// PCI function.
func virtio(p sysfs.Paths) error {
	dir := filepath.Join(p.Devices(), "pci0000:00", "0000:00:03.0", "virtio0", "net", "eth0")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Symlink("../../../virtio0", filepath.Join(dir, "device")); err != nil {
		return err
	}
	return os.Symlink("../../devices/pci0000:00/0000:00:03.0/virtio0/net/eth0", p.ClassNet("eth0"))
}

// veth adds a virtual link: class/net lists it, it has no device.
func veth(p sysfs.Paths) error {
	dir := filepath.Join(p.Devices(), "virtual", "net", "veth0")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.Symlink("../../devices/virtual/net/veth0", p.ClassNet("veth0"))
}

func TestNetDevPCIAddress(t *testing.T) {
	p := tree(t, virtio, veth)
	for _, tt := range []struct {
		netdev, want, wantErr string
		is                    error
	}{
		{netdev: "enp1s0np0", want: pf},
		{netdev: "enp1s0np0v1", want: vf},
		{netdev: "eno1", want: "0000:02:00.0"},
		{netdev: "eth0", want: "0000:00:03.0"},
		{netdev: "veth0", wantErr: "netdev veth0 is not a PCI device"},
		{netdev: "net1", wantErr: "no netdev net1 in this network namespace", is: os.ErrNotExist},
		{netdev: "../eno1", wantErr: `"../eno1" is not a netdev name`},
		{netdev: "", wantErr: `"" is not a netdev name`},
	} {
		got, err := p.NetDevPCIAddress(tt.netdev)
		checkErr(t, err, tt.wantErr, tt.is)
		if got != tt.want {
			t.Errorf("NetDevPCIAddress(%q) = %q, want %q", tt.netdev, got, tt.want)
		}
	}
}

func TestRDMALinkLayer(t *testing.T) {
	linkLayer := func(s string) func(p sysfs.Paths) error {
		return func(p sysfs.Paths) error {
			return os.WriteFile(p.PCIDevice(pf, "infiniband", "mlx5_0", "ports", "1", "link_layer"), []byte(s), 0o644)
		}
	}
	gone := func(p sysfs.Paths) error {
		return os.Remove(p.PCIDevice(pf, "infiniband", "mlx5_0", "ports", "1", "link_layer"))
	}
	for _, tt := range []struct {
		name          string
		change        func(p sysfs.Paths) error
		want, wantErr string
	}{
		{"Ethernet", linkLayer("Ethernet\n"), topology.LinkLayerEthernet, ""},
		{"InfiniBand", linkLayer("InfiniBand\n"), topology.LinkLayerInfiniBand, ""},
		{"not said", gone, "", ""},
		{"garbage", linkLayer("Token Ring\n"), "", `holds "Token Ring", neither InfiniBand nor Ethernet`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tree(t, tt.change).RDMALinkLayer(pf, "mlx5_0")
			checkErr(t, err, tt.wantErr, nil)
			if got != tt.want {
				t.Errorf("RDMALinkLayer = %q, want %q", got, tt.want)
			}
		})
	}
}
