package discovery

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/topolane/topolane/topology"
)

// Selectors are the operator's choice of NICs (--nics, --exclude-nics): PCI addresses
// (0000:1a:00.0), netdev globs (enp*s0np0) and vendor:device ids (15b3:1021). A NIC matches
// when any selector does.
type Selectors []Selector

// Selector is one entry: exactly one of PCIAddress, Glob and VendorDevice is set.
type Selector struct {
	Text         string // as the operator wrote it
	PCIAddress   string // in sysfs form
	Glob         string
	VendorDevice [2]uint16
}

// vendorDevice is a vendor:device id as lspci -n prints it.
var vendorDevice = regexp.MustCompile(`^([0-9a-fA-F]{4}):([0-9a-fA-F]{4})$`)

// ParseSelectors reads a comma-separated list; flag names it in errors. An empty list selects
// nothing (and so, as --nics, filters nothing).
func ParseSelectors(flag, list string) (Selectors, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	var out Selectors
	for _, entry := range strings.Split(list, ",") {
		s, err := parseSelector(strings.TrimSpace(entry))
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", flag, list, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseSelector(entry string) (Selector, error) {
	s := Selector{Text: entry}
	switch {
	case entry == "":
		return s, fmt.Errorf("an empty entry (two commas in a row, or one at an end?): want a PCI address (0000:1a:00.0), a netdev glob (enp*s0np0) or a vendor:device id (15b3:1021)")
	case strings.Contains(entry, ".") && strings.Contains(entry, ":") || strings.Count(entry, ":") > 1:
		addr, err := topology.NormalizePCIAddress(entry)
		if err != nil {
			return s, fmt.Errorf("%q is not a PCI address: want the form 0000:1a:00.0", entry)
		}
		s.PCIAddress = addr
	case strings.Contains(entry, ":"):
		m := vendorDevice.FindStringSubmatch(entry)
		if m == nil {
			return s, fmt.Errorf("%q is not a vendor:device id: want four hex digits each, like 15b3:1021 (lspci -n shows them)", entry)
		}
		s.VendorDevice = [2]uint16{hex16(m[1]), hex16(m[2])}
	default:
		if err := checkGlob(entry); err != nil {
			return s, err
		}
		s.Glob = entry
	}
	return s, nil
}

func hex16(s string) uint16 {
	v, _ := strconv.ParseUint(s, 16, 16)
	return uint16(v)
}

// checkGlob accepts a pattern that can match a netdev name.
func checkGlob(glob string) error {
	if _, err := path.Match(glob, ""); err != nil {
		return fmt.Errorf("%q is not a valid netdev glob (an unclosed [ or a trailing \\?)", glob)
	}
	if strings.ContainsAny(glob, "/ \t") {
		return fmt.Errorf("%q cannot match a netdev name: they have no / or spaces", glob)
	}
	if !strings.ContainsAny(glob, "*?[\\") && len(glob) > 15 {
		return fmt.Errorf("%q cannot match a netdev name: they are at most 15 characters", glob)
	}
	return nil
}

// nicID is what selectors match a NIC by.
type nicID struct {
	PCIAddress, Netdev string
	Vendor, Device     uint16
}

// match returns the first selector that matches the NIC.
func (ss Selectors) match(id nicID) (Selector, bool) {
	for _, s := range ss {
		if s.matches(id) {
			return s, true
		}
	}
	return Selector{}, false
}

func (s Selector) matches(id nicID) bool {
	switch {
	case s.PCIAddress != "":
		return s.PCIAddress == id.PCIAddress
	case s.Glob != "":
		ok, _ := path.Match(s.Glob, id.Netdev)
		return ok && id.Netdev != ""
	}
	return s.VendorDevice == [2]uint16{id.Vendor, id.Device}
}

// String is the list as the operator wrote it.
func (ss Selectors) String() string {
	texts := make([]string, len(ss))
	for i, s := range ss {
		texts[i] = s.Text
	}
	return strings.Join(texts, ",")
}
