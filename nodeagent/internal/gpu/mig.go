package gpu

import (
	"fmt"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// MIGLibrary is the part of NVML that finds the GPU a MIG device is on.
type MIGLibrary interface {
	Init() nvml.Return
	Shutdown() nvml.Return
	DeviceGetHandleByUUID(string) (nvml.Device, nvml.Return)
}

var _ MIGLibrary = nvml.Interface(nil)

// MIGParents finds the GPU of a MIG device (MIG-<uuid>, as the NVIDIA device plugin names
// them) through NVML, and remembers it: a MIG device's UUID is new whenever MIG is
// reconfigured, so an answer never goes stale.
type MIGParents struct {
	Lib MIGLibrary

	mu    sync.Mutex
	known map[string]string
}

// Parent returns the UUID of the GPU that the MIG device migUUID is on.
func (m *MIGParents) Parent(migUUID string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.known[migUUID]; ok {
		return p, nil
	}
	p, err := migParent(m.Lib, migUUID)
	if err != nil {
		return "", err
	}
	if m.known == nil {
		m.known = map[string]string{}
	}
	m.known[migUUID] = p
	return p, nil
}

// migParent asks NVML. Nothing else is called when Init fails: go-nvml ends the process then.
func migParent(lib MIGLibrary, migUUID string) (string, error) {
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return "", fmt.Errorf("MIG device %s: NVML cannot tell its GPU (%s)", migUUID, nvml.ErrorString(ret))
	}
	defer lib.Shutdown()
	mig, ret := lib.DeviceGetHandleByUUID(migUUID)
	if ret != nvml.SUCCESS {
		return "", fmt.Errorf("MIG device %s: NVML does not know it (%s)", migUUID, nvml.ErrorString(ret))
	}
	parent, ret := mig.GetDeviceHandleFromMigDeviceHandle()
	if ret != nvml.SUCCESS {
		return "", fmt.Errorf("MIG device %s: NVML gives no parent GPU (%s)", migUUID, nvml.ErrorString(ret))
	}
	uuid, ret := parent.GetUUID()
	if ret != nvml.SUCCESS {
		return "", fmt.Errorf("MIG device %s: reading its GPU's UUID (%s)", migUUID, nvml.ErrorString(ret))
	}
	return uuid, nil
}
