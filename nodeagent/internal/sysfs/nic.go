package sysfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// NetDevs returns the netdev names of a PCI function: net/<name>, or virtio<N>/net/<name> for a
// virtio NIC. A function bound to no netdev driver (vfio-pci, say) has none.
func (p Paths) NetDevs(addr string) ([]string, error) {
	names, err := listDir(p.PCIDevice(addr, "net"))
	if err != nil || len(names) > 0 {
		return names, err
	}
	virtio, err := filepath.Glob(p.PCIDevice(addr, "virtio*", "net", "*"))
	for i := range virtio {
		virtio[i] = filepath.Base(virtio[i])
	}
	return virtio, err
}

// RDMADevices returns the RDMA devices (infiniband/<name>) of a PCI function.
func (p Paths) RDMADevices(addr string) ([]string, error) {
	return listDir(p.PCIDevice(addr, "infiniband"))
}

// SpeedMbps reads net/<dev>/speed; a link that is down or does not say gives 0.
func (p Paths) SpeedMbps(addr, netdev string) int {
	v, err := readInt(p.PCIDevice(addr, "net", netdev, "speed"))
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// SRIOV is what sysfs says of a function's virtual functions.
type SRIOV struct {
	TotalVFs int
	NumVFs   int
	// VFs maps the index N of each virtfnN link to the VF's PCI address.
	VFs map[int]string
}

// ReadSRIOV returns nil when the function has no SR-IOV capability (no sriov_totalvfs).
func (p Paths) ReadSRIOV(addr string) (*SRIOV, error) {
	total, ok, err := readOptionalInt(p.PCIDevice(addr, "sriov_totalvfs"))
	if err != nil || !ok {
		return nil, err
	}
	num, err := readInt(p.PCIDevice(addr, "sriov_numvfs"))
	if err != nil {
		return nil, err
	}
	vfs, err := p.virtfns(addr)
	if err != nil {
		return nil, err
	}
	if num > total || num < 0 {
		return nil, fmt.Errorf("%s says %d VFs but %s allows %d", p.PCIDevice(addr, "sriov_numvfs"), num,
			p.PCIDevice(addr, "sriov_totalvfs"), total)
	}
	return &SRIOV{TotalVFs: total, NumVFs: num, VFs: vfs}, nil
}

// virtfns reads the virtfnN links of a PF.
func (p Paths) virtfns(addr string) (map[int]string, error) {
	names, err := listDir(p.PCIDevice(addr))
	if err != nil {
		return nil, err
	}
	vfs := map[int]string{}
	for _, name := range names {
		idx, err := strconv.Atoi(strings.TrimPrefix(name, "virtfn"))
		if !strings.HasPrefix(name, "virtfn") || err != nil {
			continue
		}
		vf, err := linkBase(p.PCIDevice(addr, name))
		if err != nil {
			return nil, fmt.Errorf("reading VF link %s: %w", p.PCIDevice(addr, name), err)
		}
		vfs[idx] = vf
	}
	return vfs, nil
}

// PhysFn returns the PF of a VF (its physfn link), or "" for a function that is not a VF.
func (p Paths) PhysFn(addr string) (string, error) {
	pf, err := linkBase(p.PCIDevice(addr, "physfn"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", p.PCIDevice(addr, "physfn"), err)
	}
	return pf, nil
}
