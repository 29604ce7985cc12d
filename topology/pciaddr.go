package topology

import (
	"fmt"
	"strconv"
	"strings"
)

// NormalizePCIAddress turns a PCI address into sysfs form, "0000:1b:00.0". It accepts NVML's
// form ("00000000:1B:00.0", an 8-digit domain in upper case) and a missing domain ("1b:00.0").
func NormalizePCIAddress(s string) (string, error) {
	fields := strings.Split(s, ":")
	if len(fields) == 2 {
		fields = append([]string{"0"}, fields...)
	}
	devFn := []string{}
	if len(fields) == 3 {
		devFn = strings.Split(fields[2], ".")
	}
	if len(devFn) != 2 {
		return "", fmt.Errorf("invalid PCI address %q: want the form 0000:1b:00.0", s)
	}
	var v [4]uint64
	limits := [4]uint64{0xffff, 0xff, 0x1f, 0x7}
	for i, f := range []string{fields[0], fields[1], devFn[0], devFn[1]} {
		n, err := strconv.ParseUint(f, 16, 32)
		if err != nil || n > limits[i] {
			return "", fmt.Errorf("invalid PCI address %q: want the form 0000:1b:00.0", s)
		}
		v[i] = n
	}
	return fmt.Sprintf("%04x:%02x:%02x.%x", v[0], v[1], v[2], v[3]), nil
}

// compareAddr orders normalized PCI addresses; fixed-width lower-case hex sorts as text.
func compareAddr(a, b string) int { return strings.Compare(a, b) }

// sameDevice reports whether two normalized addresses are functions of one PCI device.
func sameDevice(a, b string) bool {
	i, j := strings.LastIndex(a, "."), strings.LastIndex(b, ".")
	return i > 0 && j > 0 && a[:i] == b[:j]
}
