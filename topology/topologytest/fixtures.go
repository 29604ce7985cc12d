package topologytest

import (
	"fmt"

	"github.com/topolane/topolane/topology"
)

// PCI ids used by the fixtures.
const (
	VendorNVIDIA   = 0x10de
	VendorMellanox = 0x15b3
	VendorIntel    = 0x8086
	VendorRealtek  = 0x10ec

	ClassBridge     = 0x060400 // PCI-to-PCI bridge: root ports and switch ports
	ClassVGA        = 0x030000
	Class3D         = 0x030200
	ClassAudio      = 0x040300
	ClassNVSwitch   = 0x068000 // NVSwitch
	ClassEthernet   = 0x020000
	ClassInfiniBand = 0x020700
)

// Bridge is a root port or a PCIe switch port with the functions below it.
func Bridge(addr string, children ...Fn) Fn {
	return Fn{Addr: addr, Kind: KindBridge, Vendor: VendorIntel, Device: 0x347a, Class: ClassBridge,
		Driver: "pcieport", Children: children}
}

// Switch is a PCIe switch: an upstream port and one downstream port per child subtree.
// Downstream ports take addresses dsBus:00.0, dsBus:01.0, ...
func Switch(upstream, dsBus string, below ...[]Fn) Fn {
	var ports []Fn
	for i, fns := range below {
		ports = append(ports, Bridge(fmt.Sprintf("%s:%02x.0", dsBus, i), fns...))
	}
	return Bridge(upstream, ports...)
}

// Under puts functions below one downstream port (for Switch).
func Under(fns ...Fn) []Fn { return fns }

// H100 is an H100 SXM5 GPU.
func H100(addr string) Fn {
	return Fn{Addr: addr, Kind: KindGPU, Vendor: VendorNVIDIA, Device: 0x2330, Class: Class3D, Driver: "nvidia"}
}

// L40S is a PCIe L40S GPU.
func L40S(addr string) Fn {
	return Fn{Addr: addr, Kind: KindGPU, Vendor: VendorNVIDIA, Device: 0x26b9, Class: Class3D, Driver: "nvidia"}
}

// RTX4090 is a consumer GPU: VGA class, with its HDMI audio function at .1 returned beside it.
func RTX4090(dev string) []Fn {
	return []Fn{
		{Addr: dev + ".0", Kind: KindGPU, Vendor: VendorNVIDIA, Device: 0x2684, Class: ClassVGA, Driver: "nvidia"},
		{Addr: dev + ".1", Kind: KindAudio, Vendor: VendorNVIDIA, Device: 0x22ba, Class: ClassAudio, Driver: "snd_hda_intel"},
	}
}

// NVSwitch is an NVLink switch as it shows on PCI.
func NVSwitch(addr string) Fn {
	return Fn{Addr: addr, Kind: KindNVSwitch, Vendor: VendorNVIDIA, Device: 0x22a3, Class: ClassNVSwitch}
}

// ConnectX is a Mellanox function with RDMA (ConnectX-7 when speed is 400G).
func ConnectX(addr, netdev, rdma string, speedMbps, totalVFs, numVFs int) Fn {
	return Fn{Addr: addr, Kind: KindNIC, Vendor: VendorMellanox, Device: 0x1021, Class: ClassEthernet,
		Driver: "mlx5_core", Netdev: netdev, RDMA: rdma, SpeedMbps: speedMbps, TotalVFs: totalVFs, NumVFs: numVFs}
}

// PlainNIC is a NIC without RDMA or SR-IOV, such as a management port.
func PlainNIC(addr, netdev, driver string, vendor uint16) Fn {
	return Fn{Addr: addr, Kind: KindNIC, Vendor: vendor, Device: 0x1563, Class: ClassEthernet,
		Driver: driver, Netdev: netdev, SpeedMbps: 10000}
}

// DGXH100 is shaped after a DGX H100: two NUMA nodes, four GPU+NIC pairs on each, every pair
// under one PCIe switch below its own host bridge (GPU↔own NIC PIX, NODE within a socket, SYS
// across), four NVSwitches, and a management NIC without RDMA. NIC 0 has 4 VFs configured, the
// other ConnectX-7 PFs can make 16 and have none.
func DGXH100() Machine {
	m := Machine{Name: "dgx-h100", NUMANodes: 2}
	for i, b := range []int{0x17, 0x3f, 0x4e, 0x5d, 0x99, 0xbf, 0xcd, 0xdb} {
		numVFs := 0
		if i == 0 {
			numVFs = 4
		}
		nic := ConnectX(pciAddr(b+3, 0, 0), fmt.Sprintf("enp%ds0np0", b+3), fmt.Sprintf("mlx5_%d", i), 400000, 16, numVFs)
		sw := Switch(pciAddr(b+1, 0, 0), fmt.Sprintf("0000:%02x", b+2), Under(nic), Under(H100(pciAddr(b+4, 0, 0))))
		m.Roots = append(m.Roots, Root{Bus: fmt.Sprintf("0000:%02x", b), NUMA: i / 4, Fns: []Fn{Bridge(pciAddr(b, 1, 0), sw)}})
	}
	mgmt := PlainNIC("0000:0c:00.0", "eno3", "ixgbe", VendorIntel)
	m.Roots = append(m.Roots, Root{Bus: "0000:0b", NUMA: 0, Fns: []Fn{Bridge("0000:0b:01.0", mgmt)}})
	var nvs []Fn
	for i := range 4 {
		nvs = append(nvs, Bridge(pciAddr(0x81, 1+i, 0), NVSwitch(pciAddr(0x82+i, 0, 0))))
	}
	m.Roots = append(m.Roots, Root{Bus: "0000:81", NUMA: 1, Fns: nvs})
	return m
}

// PCIeServer is a two-socket PCIe server: four L40S GPUs and two dual-port ConnectX-6 NICs,
// each on its own root port (GPU↔NIC PHB at best). Port 0 of the first NIC has 2 of 8 VFs.
func PCIeServer() Machine {
	cx6 := func(bus int, rdma0, rdma1 int, numVFs int) []Fn {
		return []Fn{
			ConnectX(pciAddr(bus, 0, 0), fmt.Sprintf("enp%ds0f0np0", bus), fmt.Sprintf("mlx5_%d", rdma0), 100000, 8, numVFs),
			ConnectX(pciAddr(bus, 0, 1), fmt.Sprintf("enp%ds0f1np1", bus), fmt.Sprintf("mlx5_%d", rdma1), 100000, 8, 0),
		}
	}
	return Machine{Name: "pcie-server", NUMANodes: 2, Roots: []Root{
		{Bus: "0000:16", NUMA: 0, Fns: []Fn{
			Bridge("0000:16:01.0", L40S("0000:17:00.0")),
			Bridge("0000:16:02.0", cx6(0x18, 0, 1, 2)...),
		}},
		{Bus: "0000:30", NUMA: 0, Fns: []Fn{Bridge("0000:30:01.0", L40S("0000:31:00.0"))}},
		{Bus: "0000:b0", NUMA: 1, Fns: []Fn{
			Bridge("0000:b0:01.0", L40S("0000:b1:00.0")),
			Bridge("0000:b0:02.0", cx6(0xb2, 2, 3, 0)...),
		}},
		{Bus: "0000:ca", NUMA: 1, Fns: []Fn{Bridge("0000:ca:01.0", L40S("0000:cb:00.0"))}},
	}}
}

// PCIeServerOneNIC is a two-socket PCIe server with one single-port ConnectX-6 per socket (2 of
// 8 VFs on the first, none on the second): each NIC is the rail of its socket's two GPUs.
func PCIeServerOneNIC() Machine {
	return Machine{Name: "pcie-one-nic", NUMANodes: 2, Roots: []Root{
		{Bus: "0000:16", NUMA: 0, Fns: []Fn{
			Bridge("0000:16:01.0", L40S("0000:17:00.0")),
			Bridge("0000:16:02.0", ConnectX("0000:18:00.0", "enp24s0np0", "mlx5_0", 100000, 8, 2)),
		}},
		{Bus: "0000:30", NUMA: 0, Fns: []Fn{Bridge("0000:30:01.0", L40S("0000:31:00.0"))}},
		{Bus: "0000:b0", NUMA: 1, Fns: []Fn{
			Bridge("0000:b0:01.0", L40S("0000:b1:00.0")),
			Bridge("0000:b0:02.0", ConnectX("0000:b2:00.0", "enp178s0np0", "mlx5_1", 100000, 8, 0)),
		}},
		{Bus: "0000:ca", NUMA: 1, Fns: []Fn{Bridge("0000:ca:01.0", L40S("0000:cb:00.0"))}},
	}}
}

// SingleSocket is a workstation-like box whose platform reports numa_node -1: four consumer GPUs
// (each with an HDMI audio function) behind cascaded PCIe switches, one ConnectX-6 Dx on the
// first switch (PIX to nothing, PXB to every GPU) and an onboard NIC without RDMA.
func SingleSocket() Machine {
	gpus := func(bus, dsBus string, a, b string) Fn {
		return Switch(bus, dsBus, RTX4090(a), RTX4090(b))
	}
	top := Switch("0000:01:00.0", "0000:02",
		Under(gpus("0000:03:00.0", "0000:04", "0000:05:00", "0000:06:00")),
		Under(ConnectX("0000:07:00.0", "enp7s0f0np0", "mlx5_0", 100000, 8, 0)),
		Under(gpus("0000:08:00.0", "0000:09", "0000:0a:00", "0000:0b:00")),
	)
	return Machine{Name: "single-socket", NUMANodes: 1, Roots: []Root{{Bus: "0000:00", NUMA: topology.NoNUMA, Fns: []Fn{
		Bridge("0000:00:01.0", top),
		Bridge("0000:00:1c.0", PlainNIC("0000:0c:00.0", "eno1", "r8169", VendorRealtek)),
	}}}}
}

// NoSRIOV is a one-socket node whose RDMA NIC cannot make VFs (SR-IOV off in firmware): two
// GPUs and the NIC share one PCIe switch. Pods that need a share of it get a macvlan.
func NoSRIOV() Machine {
	sw := Switch("0000:41:00.0", "0000:42",
		Under(L40S("0000:43:00.0")), Under(L40S("0000:44:00.0")),
		Under(ConnectX("0000:45:00.0", "enp69s0np0", "mlx5_0", 200000, 0, 0)))
	return Machine{Name: "no-sriov", NUMANodes: 1, Roots: []Root{{Bus: "0000:40", NUMA: 0, Fns: []Fn{Bridge("0000:40:01.0", sw)}}}}
}

// NoGPU is a CPU node: a ConnectX with 4 VFs and a management NIC, no GPUs.
func NoGPU() Machine {
	return Machine{Name: "cpu-node", NUMANodes: 1, Roots: []Root{{Bus: "0000:00", NUMA: 0, Fns: []Fn{
		Bridge("0000:00:02.0", ConnectX("0000:01:00.0", "enp1s0np0", "mlx5_0", 100000, 8, 4)),
		Bridge("0000:00:1c.0", PlainNIC("0000:02:00.0", "eno1", "igb", VendorIntel)),
	}}}}
}

// All returns every fixture machine by name.
func All() map[string]Machine {
	ms := map[string]Machine{}
	for _, m := range []Machine{DGXH100(), PCIeServer(), SingleSocket(), NoSRIOV(), NoGPU()} {
		ms[m.Name] = m
	}
	return ms
}

func pciAddr(bus, dev, fn int) string { return fmt.Sprintf("0000:%02x:%02x.%x", bus, dev, fn) }
