package attach

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Accel is the pod's acceleration config (accel.json); accel.env says the same for a shell or an
// env file. NCCL's "=" prefix makes it match interface and HCA names exactly (without it mlx5_1
// would also match mlx5_10).
type Accel struct {
	Mode    string        `json:"mode"` // pf, vf or macvlan
	Devices []AccelDevice `json:"devices"`
	// GPUs are the pod's GPUs in PCI order (CUDA_DEVICE_ORDER=PCI_BUS_ID numbers them so), each
	// with the device NCCL should drive for it.
	GPUs []AccelGPU `json:"gpus"`
}

// AccelDevice is one device of the pod.
type AccelDevice struct {
	Interface  string   `json:"interface"`
	Kind       string   `json:"kind"`
	PCIAddress string   `json:"pciAddress"`
	NIC        string   `json:"nic"`
	Rail       int      `json:"rail"`
	RDMADevice string   `json:"rdmaDevice,omitempty"`
	Level      string   `json:"level"` // to the farthest of its GPUs
	GPUs       []string `json:"gpus"`
}

// AccelGPU is one of the pod's GPUs and its device.
type AccelGPU struct {
	PCIAddress string `json:"pciAddress"`
	Interface  string `json:"interface"`
	Level      string `json:"level"`
}

func accelOf(r *Record) Accel {
	a := Accel{Mode: string(r.Devices[0].Kind)}
	byGPU := map[string]AccelGPU{}
	for _, d := range r.Devices {
		a.Devices = append(a.Devices, AccelDevice{Interface: d.IfName, Kind: string(d.Kind), PCIAddress: d.Device, NIC: d.NIC,
			Rail: d.Rail, RDMADevice: d.RDMA, Level: d.Level, GPUs: d.GPUs})
		for _, g := range d.GPUs {
			byGPU[g] = AccelGPU{PCIAddress: g, Interface: d.IfName, Level: d.Level}
		}
	}
	for _, g := range r.GPUs {
		a.GPUs = append(a.GPUs, byGPU[g])
	}
	return a
}

// env is accel.env's text.
func (a Accel) env() string {
	var ifaces, hcas []string
	for _, d := range a.Devices {
		ifaces = append(ifaces, d.Interface)
		if d.RDMADevice != "" {
			hcas = append(hcas, d.RDMADevice+":1")
		}
	}
	lines := []string{
		"TOPOLANE_MODE=" + a.Mode,
		"TOPOLANE_INTERFACES=" + strings.Join(ifaces, ","),
		"NCCL_SOCKET_IFNAME==" + strings.Join(ifaces, ","),
	}
	if len(hcas) > 0 {
		lines = append(lines, "NCCL_IB_HCA=="+strings.Join(hcas, ","))
	}
	for i, g := range a.GPUs {
		p := "TOPOLANE_GPU" + strconv.Itoa(i) + "_"
		lines = append(lines, p+"PCI_ADDRESS="+g.PCIAddress, p+"INTERFACE="+g.Interface, p+"LEVEL="+g.Level)
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
