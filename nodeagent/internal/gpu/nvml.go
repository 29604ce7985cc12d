// Package gpu asks NVML what the GPUs of a node are and how they connect to each other.
package gpu

import (
	"errors"
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/topolane/topolane/topology"
)

// Library is the part of NVML discovery uses. nvml.New() gives the real one; go-nvml's
// pkg/nvml/mock servers stand in for it in tests.
type Library interface {
	Init() nvml.Return
	Shutdown() nvml.Return
	DeviceGetCount() (int, nvml.Return)
	DeviceGetHandleByIndex(int) (nvml.Device, nvml.Return)
}

var _ Library = nvml.Interface(nil)

// ErrNoDriver means the machine has no usable NVIDIA driver: no GPUs to ask NVML about.
var ErrNoDriver = errors.New("no NVIDIA driver: NVML (libnvidia-ml.so.1) cannot be loaded")

// GPU is what NVML says of one GPU.
type GPU struct {
	UUID        string
	Model       string
	PCIAddress  string // sysfs form
	MemoryBytes uint64
}

// Inventory is NVML's view of the node.
type Inventory struct {
	GPUs []GPU
	// Levels holds GPU↔GPU connections by PCI address: NV# where NVLink joins them, else
	// NVML's common PCIe ancestor.
	Levels topology.Levels
}

// Discover initialises NVML, reads every GPU and shuts NVML down again. When NVML cannot be
// loaded it returns ErrNoDriver and calls nothing else: go-nvml kills the process if any other
// function is called after a failed Init.
func Discover(lib Library) (*Inventory, error) {
	if ret := lib.Init(); ret != nvml.SUCCESS {
		if ret == nvml.ERROR_LIBRARY_NOT_FOUND || ret == nvml.ERROR_DRIVER_NOT_LOADED {
			return nil, fmt.Errorf("%w (%s)", ErrNoDriver, nvml.ErrorString(ret))
		}
		return nil, fmt.Errorf("initialising NVML: %s", nvml.ErrorString(ret))
	}
	defer lib.Shutdown()
	count, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("counting GPUs with NVML: %s", nvml.ErrorString(ret))
	}
	devices := make([]nvml.Device, count)
	inv := &Inventory{GPUs: make([]GPU, count), Levels: topology.Levels{}}
	for i := range count {
		d, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("opening GPU %d with NVML: %s", i, nvml.ErrorString(ret))
		}
		g, err := readGPU(d)
		if err != nil {
			return nil, fmt.Errorf("GPU %d: %w", i, err)
		}
		devices[i], inv.GPUs[i] = d, g
	}
	inv.connect(devices)
	return inv, nil
}

func readGPU(d nvml.Device) (GPU, error) {
	var g GPU
	var ret nvml.Return
	if g.UUID, ret = d.GetUUID(); ret != nvml.SUCCESS {
		return g, fmt.Errorf("reading UUID: %s", nvml.ErrorString(ret))
	}
	pci, ret := d.GetPciInfo()
	if ret != nvml.SUCCESS {
		return g, fmt.Errorf("reading PCI info of %s: %s", g.UUID, nvml.ErrorString(ret))
	}
	addr, err := busID(pci)
	if err != nil {
		return g, fmt.Errorf("%s: %w", g.UUID, err)
	}
	g.PCIAddress = addr
	g.Model, _ = d.GetName()
	if mem, ret := d.GetMemoryInfo(); ret == nvml.SUCCESS {
		g.MemoryBytes = mem.Total
	}
	return g, nil
}

// busID turns NVML's bus id ("00000000:1B:00.0") into sysfs form; an empty one (some drivers,
// go-nvml's mocks) is rebuilt from the numeric fields.
func busID(pci nvml.PciInfo) (string, error) {
	id := cString(pci.BusId[:])
	if id == "" {
		id = fmt.Sprintf("%04x:%02x:%02x.0", pci.Domain, pci.Bus, pci.Device)
	}
	return topology.NormalizePCIAddress(id)
}

func cString(b []int8) string {
	s := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}
