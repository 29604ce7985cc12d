package attach

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Accel is the pod's acceleration config (accel.json); accel.env says the same for a shell or
// an env file. NCCL's "=" prefix makes it match the interface and HCA names exactly.
type Accel struct {
	Interface  string   `json:"interface"`
	Mode       string   `json:"mode"` // pf, vf or macvlan
	PCIAddress string   `json:"pciAddress"`
	NIC        string   `json:"nic"`
	RDMADevice string   `json:"rdmaDevice,omitempty"`
	Level      string   `json:"level"` // from the device to the farthest of the pod's GPUs
	GPUs       []string `json:"gpus"`
}

func accelOf(r *Record, gpus []string) Accel {
	return Accel{Interface: r.IfName, Mode: string(r.Kind), PCIAddress: r.Device, NIC: r.NIC, RDMADevice: r.RDMA, Level: r.Level, GPUs: gpus}
}

// env is accel.env's text.
func (a Accel) env() string {
	lines := []string{
		"TOPOLANE_INTERFACE=" + a.Interface,
		"TOPOLANE_MODE=" + a.Mode,
		"TOPOLANE_PCI_ADDRESS=" + a.PCIAddress,
		"TOPOLANE_LEVEL=" + a.Level,
		"NCCL_SOCKET_IFNAME==" + a.Interface,
	}
	if a.RDMADevice != "" {
		lines = append(lines, "TOPOLANE_RDMA_DEVICE="+a.RDMADevice, "NCCL_IB_HCA=="+a.RDMADevice)
	}
	return strings.Join(lines, "\n") + "\n"
}

// accelDir is where a pod's files go: <root>/<pod UID>.
func accelDir(root, podUID string) string { return filepath.Join(root, podUID) }

// writeAccel writes both files atomically.
func writeAccel(root, podUID string, a Accel) error {
	dir := accelDir(root, podUID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("acceleration config: %w", err)
	}
	data, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, "accel.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, "accel.env"), []byte(a.env()), 0o644)
}

// removeAccel removes the pod's files; they may already be gone.
func removeAccel(root, podUID string) error {
	if podUID == "" {
		return nil
	}
	if err := os.RemoveAll(accelDir(root, podUID)); err != nil {
		return fmt.Errorf("removing the acceleration config: %w", err)
	}
	return nil
}
