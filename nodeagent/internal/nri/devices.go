package nri

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/topolane/topolane/nodeagent/internal/validate"
)

// CharDevice is a character device a container gets, at the same path as on the host.
type CharDevice struct {
	Path         string // /dev/infiniband/uverbs0
	Major, Minor int64
}

// Devices finds the char devices of RDMA devices under one sysfs root and one /dev root.
type Devices struct {
	Sys string // the sysfs mount (/sys)
	Dev string // the devtmpfs mount (/dev)
}

// rdmaCM is the RDMA connection manager's device (module rdma_ucm).
const rdmaCM = "rdma_cm"

// Verbs returns the uverbs device of an RDMA device.
func (d Devices) Verbs(rdma string) (CharDevice, error) {
	if err := validate.RDMADevice(rdma); err != nil {
		return CharDevice{}, err
	}
	name, err := d.uverbsOf(rdma)
	if err != nil {
		return CharDevice{}, err
	}
	return d.char(name, filepath.Join(d.Sys, "class", "infiniband_verbs", name, "dev"))
}

// CM returns /dev/infiniband/rdma_cm.
func (d Devices) CM() (CharDevice, error) {
	return d.char(rdmaCM, filepath.Join(d.Sys, "class", "misc", rdmaCM, "dev"))
}

// uverbsOf finds the uverbsN of an RDMA device. The infiniband_verbs class is read first: it
// is not filtered by network namespace, so it still shows a device that moved into a pod in
// exclusive mode, which the infiniband class of the host's sysfs no longer does.
func (d Devices) uverbsOf(rdma string) (string, error) {
	ibdevs, _ := filepath.Glob(filepath.Join(d.Sys, "class", "infiniband_verbs", "uverbs*", "ibdev"))
	sort.Strings(ibdevs)
	for _, f := range ibdevs {
		if data, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(data)) == rdma {
			return filepath.Base(filepath.Dir(f)), nil
		}
	}
	under, _ := filepath.Glob(filepath.Join(d.Sys, "class", "infiniband", rdma, "device", "infiniband_verbs", "uverbs*"))
	if len(under) > 0 {
		sort.Strings(under)
		return filepath.Base(under[0]), nil
	}
	return "", fmt.Errorf("RDMA device %s has no uverbs device in %s (is ib_uverbs loaded?)", rdma, filepath.Join(d.Sys, "class", "infiniband_verbs"))
}

// char reads a device's numbers from its sysfs dev file ("231:192"), else from the device node.
func (d Devices) char(name, devFile string) (CharDevice, error) {
	c := CharDevice{Path: "/dev/infiniband/" + name}
	if data, err := os.ReadFile(devFile); err == nil {
		if c.Major, c.Minor, err = parseDev(strings.TrimSpace(string(data))); err != nil {
			return CharDevice{}, fmt.Errorf("%s: %w", devFile, err)
		}
		return c, nil
	}
	node := filepath.Join(d.Dev, "infiniband", name)
	var st unix.Stat_t
	if err := unix.Stat(node, &st); err != nil {
		return CharDevice{}, fmt.Errorf("%s: neither %s nor the device node can be read: %w", name, devFile, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFCHR {
		return CharDevice{}, fmt.Errorf("%s is not a character device", node)
	}
	c.Major, c.Minor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	return c, nil
}

func parseDev(s string) (major, minor int64, err error) {
	a, b, ok := strings.Cut(s, ":")
	if ok {
		major, err = strconv.ParseInt(a, 10, 32)
	}
	if ok && err == nil {
		minor, err = strconv.ParseInt(b, 10, 32)
	}
	if !ok || err != nil {
		return 0, 0, errors.New("want major:minor, got " + strconv.Quote(s))
	}
	return major, minor, nil
}
