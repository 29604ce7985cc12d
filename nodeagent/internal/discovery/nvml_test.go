package discovery_test

import (
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"

	"github.com/topolane/topolane/nodeagent/internal/discovery"
	"github.com/topolane/topolane/nodeagent/internal/sysfs"
	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/topologytest"
)

// dgxGPUs are the fixture's GPU addresses in NVML's bus id form, in NVML index order.
var dgxGPUs = []string{"00000000:1B:00.0", "00000000:43:00.0", "00000000:52:00.0", "00000000:61:00.0",
	"00000000:9D:00.0", "00000000:C3:00.0", "00000000:D1:00.0", "00000000:DF:00.0"}

// nvswitch is where the mock's NVLinks lead: not a GPU.
const nvswitch = "00000000:82:00.0"

// dgxNVML is go-nvml's DGX H100 mock placed on the fixture's bus ids, each GPU with 18 NVLinks
// into the NVSwitch fabric. The mock leaves topology calls unset; they are set here.
func dgxNVML(t *testing.T) *server.Server {
	t.Helper()
	srv := dgxh100.New()
	for i, d := range srv.Devices {
		dev := d.(*server.Device)
		place(dev, dgxGPUs[i], 18, nvswitch)
		dev.GetTopologyCommonAncestorFunc = func(nvml.Device) (nvml.GpuTopologyLevel, nvml.Return) {
			t.Error("common ancestor asked although NVLink answers")
			return 0, nvml.ERROR_UNKNOWN
		}
	}
	return srv
}

// place puts a mock GPU at busID with its first links NVLinks active, all leading to remote.
func place(dev *server.Device, busID string, links int, remote string) {
	dev.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) { return pciInfo(busID), nvml.SUCCESS }
	dev.GetNvLinkStateFunc = func(link int) (nvml.EnableState, nvml.Return) {
		if link >= links {
			return 0, nvml.ERROR_INVALID_ARGUMENT
		}
		return nvml.FEATURE_ENABLED, nvml.SUCCESS
	}
	dev.GetNvLinkRemotePciInfoFunc = func(int) (nvml.PciInfo, nvml.Return) { return pciInfo(remote), nvml.SUCCESS }
}

func pciInfo(busID string) nvml.PciInfo {
	var p nvml.PciInfo
	for i := range len(busID) {
		p.BusId[i] = int8(busID[i])
	}
	return p
}

func TestDiscoverWithNVML(t *testing.T) {
	srv := dgxNVML(t)
	res, err := discovery.Discover(discovery.Options{NodeName: "dgx", Sysfs: sysfs.Paths{Root: writeMachine(t, topologytest.DGXH100())}, NVML: srv})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) > 0 {
		t.Errorf("warnings: %q", res.Warnings)
	}
	g0 := res.Node.GPUs[0]
	wantUUID, _ := srv.Devices[0].GetUUID()
	wantMem, _ := srv.Devices[0].GetMemoryInfo()
	if g0.UUID != wantUUID || g0.Model != "NVIDIA H100 80GB HBM3" || g0.MemoryBytes != wantMem.Total || wantMem.Total == 0 {
		t.Errorf("GPU0 = %+v, want NVML's UUID %s, model and memory", g0, wantUUID)
	}
	n := res.Node
	for _, tt := range []struct {
		a, b string
		want topology.Level
	}{
		{"0000:1b:00.0", "0000:df:00.0", topology.NV(18)}, // across sockets, through NVSwitch
		{"0000:1b:00.0", "0000:43:00.0", topology.NV(18)},
		{"0000:1b:00.0", "0000:1a:00.0", topology.PIX}, // GPU↔NIC still from sysfs
		{"0000:1b:00.0", "0000:9c:00.0", topology.SYS},
	} {
		if got := n.Level(tt.a, tt.b); got != tt.want {
			t.Errorf("level(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestDiscoverNVMLCommonAncestorAndDirectLinks(t *testing.T) {
	m := topologytest.NoSRIOV() // two GPUs, 0000:43:00.0 and 0000:44:00.0
	h100 := dgxh100.NewDevice(0).Config
	srv := dgxh100.NewWithGPUs(h100, h100)
	buses := []string{"00000000:43:00.0", "00000000:44:00.0"}
	for i, d := range srv.Devices {
		place(d.(*server.Device), buses[i], 4, buses[1-i]) // an NVLink bridge: 4 links to the other GPU
	}
	res, err := discovery.Discover(discovery.Options{Sysfs: sysfs.Paths{Root: writeMachine(t, m)}, NVML: srv})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Node.Level("0000:43:00.0", "0000:44:00.0"); got != topology.NV(4) {
		t.Errorf("NVLink bridge with 4 links: level = %v, want NV4", got)
	}
	for _, d := range srv.Devices {
		d.(*server.Device).GetNvLinkStateFunc = func(int) (nvml.EnableState, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
		d.(*server.Device).GetTopologyCommonAncestorFunc = func(nvml.Device) (nvml.GpuTopologyLevel, nvml.Return) {
			return nvml.TOPOLOGY_MULTIPLE, nvml.SUCCESS
		}
	}
	res, err = discovery.Discover(discovery.Options{Sysfs: sysfs.Paths{Root: writeMachine(t, m)}, NVML: srv})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Node.Level("0000:43:00.0", "0000:44:00.0"); got != topology.PXB {
		t.Errorf("no NVLink: level = %v, want NVML's common ancestor PXB", got)
	}
}

// noDriver is NVML on a machine without the driver: Init fails, and anything else would kill the
// process in the real library, so the test fails if anything else is called.
type noDriver struct {
	mock.Interface
	t *testing.T
}

func (n *noDriver) Init() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }
func (n *noDriver) Shutdown() nvml.Return {
	n.t.Error("Shutdown called after a failed Init")
	return nvml.SUCCESS
}
func (n *noDriver) DeviceGetCount() (int, nvml.Return) {
	n.t.Error("DeviceGetCount called after a failed Init")
	return 0, nvml.ERROR_UNINITIALIZED
}

func TestDiscoverWithoutDriver(t *testing.T) {
	m := topologytest.PCIeServer()
	res, err := discovery.Discover(discovery.Options{Sysfs: sysfs.Paths{Root: writeMachine(t, m)}, NVML: &noDriver{t: t}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Node.GPUs) != 4 || !contains(res.Notes, "no NVIDIA driver") || len(res.Warnings) > 0 {
		t.Errorf("want the 4 GPUs from PCI and a note, got %d GPUs, notes %q, warnings %q", len(res.Node.GPUs), res.Notes, res.Warnings)
	}
}

func TestDiscoverNVMLDisagreesWithSysfs(t *testing.T) {
	srv := dgxNVML(t)
	srv.Devices = srv.Devices[:2] // NVML sees two GPUs; the second is at an address sysfs lacks
	dev := srv.Devices[1].(*server.Device)
	dev.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) { return pciInfo("00000000:E5:00.0"), nvml.SUCCESS }
	res, err := discovery.Discover(discovery.Options{Sysfs: sysfs.Paths{Root: writeMachine(t, topologytest.DGXH100())}, NVML: srv})
	if err != nil {
		t.Fatal(err)
	}
	if !contains(res.Warnings, "at 0000:e5:00.0, which sysfs does not show") {
		t.Errorf("no warning for the GPU sysfs lacks: %q", res.Warnings)
	}
	if !contains(res.Warnings, "GPU at 0000:43:00.0 is on PCI but NVML does not report it") {
		t.Errorf("no warning for the GPU NVML lacks: %q", res.Warnings)
	}
	ghost := res.Node.GPU("0000:e5:00.0")
	if ghost == nil || res.Node.Level(ghost.PCIAddress, "0000:1a:00.0") != topology.Unknown {
		t.Errorf("the GPU only NVML knows should be listed with unknown PCIe levels, got %+v", ghost)
	}
	if len(res.Node.GPUs) != 9 {
		t.Errorf("want 8 GPUs from sysfs and 1 from NVML, got %d", len(res.Node.GPUs))
	}
	if strings.Contains(strings.Join(res.Warnings, "\n"), "0000:1b:00.0") {
		t.Errorf("GPU0 is in both and should not be warned about: %q", res.Warnings)
	}
}
