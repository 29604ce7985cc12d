package gpu

import (
	"errors"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

func TestBusID(t *testing.T) {
	var withID nvml.PciInfo
	for i, c := range "00000000:C3:00.0" {
		withID.BusId[i] = int8(c)
	}
	for name, tt := range map[string]struct {
		in   nvml.PciInfo
		want string
	}{
		"NVML form":              {withID, "0000:c3:00.0"},
		"empty id, from numbers": {nvml.PciInfo{Domain: 1, Bus: 0x1b, Device: 2}, "0001:1b:02.0"},
	} {
		got, err := busID(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("%s: busID = %q, %v; want %q", name, got, err, tt.want)
		}
	}
	if _, err := busID(nvml.PciInfo{Bus: 0x1ff}); err == nil {
		t.Error("an out-of-range bus should be an error")
	}
}

func TestDiscoverErrors(t *testing.T) {
	initFails := &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_NO_PERMISSION }}
	if _, err := Discover(initFails); err == nil || errors.Is(err, ErrNoDriver) || !strings.Contains(err.Error(), "initialising NVML") {
		t.Errorf("Init without permission: err = %v, want an NVML error that is not ErrNoDriver", err)
	}
	noDriver := &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_DRIVER_NOT_LOADED }}
	if _, err := Discover(noDriver); !errors.Is(err, ErrNoDriver) {
		t.Errorf("driver not loaded: err = %v, want ErrNoDriver", err)
	}
	srv := dgxh100.New()
	srv.Devices[3].(*server.Device).GetUUIDFunc = func() (string, nvml.Return) { return "", nvml.ERROR_GPU_IS_LOST }
	if _, err := Discover(srv); err == nil || !strings.Contains(err.Error(), "GPU 3: reading UUID") {
		t.Errorf("lost GPU: err = %v, want one naming GPU 3", err)
	}
}
