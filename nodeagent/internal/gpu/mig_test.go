package gpu

import (
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
)

const (
	gpuUUID = "GPU-5d0a5e3c-8c37-8f6f-5c4b-5e9d2f3b4a1c"
	migUUID = "MIG-1f2e3d4c-5b6a-5978-8a9b-0c1d2e3f4a5b"
)

// migNVML knows one MIG device on one GPU, and counts Init calls.
func migNVML(inits *int) *mock.Interface {
	parent := &mock.Device{GetUUIDFunc: func() (string, nvml.Return) { return gpuUUID, nvml.SUCCESS }}
	mig := &mock.Device{GetDeviceHandleFromMigDeviceHandleFunc: func() (nvml.Device, nvml.Return) { return parent, nvml.SUCCESS }}
	return &mock.Interface{
		InitFunc:     func() nvml.Return { *inits++; return nvml.SUCCESS },
		ShutdownFunc: func() nvml.Return { return nvml.SUCCESS },
		DeviceGetHandleByUUIDFunc: func(uuid string) (nvml.Device, nvml.Return) {
			if uuid == migUUID {
				return mig, nvml.SUCCESS
			}
			return nil, nvml.ERROR_NOT_FOUND
		},
	}
}

func TestMIGParent(t *testing.T) {
	inits := 0
	m := &MIGParents{Lib: migNVML(&inits)}
	for range 2 {
		if p, err := m.Parent(migUUID); err != nil || p != gpuUUID {
			t.Errorf("Parent(%s) = %q, %v; want %s", migUUID, p, err, gpuUUID)
		}
	}
	if inits != 1 {
		t.Errorf("NVML initialised %d times for one MIG device asked twice, want 1", inits)
	}
	if _, err := m.Parent("MIG-00000000-0000-0000-0000-000000000000"); err == nil || !strings.Contains(err.Error(), "NVML does not know it") {
		t.Errorf("unknown MIG device: %v", err)
	}
	called := false
	noDriver := &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND },
		DeviceGetHandleByUUIDFunc: func(string) (nvml.Device, nvml.Return) { called = true; return nil, nvml.ERROR_UNKNOWN }}
	if _, err := (&MIGParents{Lib: noDriver}).Parent(migUUID); err == nil || called {
		t.Errorf("without a driver: %v, NVML called after the failed Init: %v", err, called)
	}
}
