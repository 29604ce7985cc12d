package topology

import (
	"fmt"
	"strconv"
	"strings"
)

// Level is how two devices are connected, with the legend of `nvidia-smi topo -m`.
// Smaller is nearer: NV# (more links nearer) < PIX < PXB < PHB < NODE < SYS.
// The zero value is Unknown, which ranks farther than SYS.
type Level int

const (
	Unknown Level = 0
	PIX     Level = 10 // at most one PCIe bridge (a switch counts as one)
	PXB     Level = 20 // several PCIe bridges, no host bridge
	PHB     Level = 30 // through a PCIe host bridge (same root complex)
	NODE    Level = 40 // across host bridges within one NUMA node
	SYS     Level = 50 // across NUMA nodes
	// Self is a device with itself ("X").
	Self Level = -1 << 10
)

// NV is an NVLink connection with the given number of links (NV18 on a DGX H100).
func NV(links int) Level { return Level(-links) }

// NVLinks returns the NVLink count of an NV# level, or 0.
func (l Level) NVLinks() int {
	if l < 0 && l != Self {
		return int(-l)
	}
	return 0
}

// Rank orders levels nearest first, with Unknown last.
func (l Level) Rank() int {
	if l == Unknown {
		return int(SYS) + 1
	}
	return int(l)
}

// Nearer reports whether l is strictly nearer than m.
func (l Level) Nearer(m Level) bool { return l.Rank() < m.Rank() }

func (l Level) String() string {
	switch l {
	case Self:
		return "X"
	case PIX:
		return "PIX"
	case PXB:
		return "PXB"
	case PHB:
		return "PHB"
	case NODE:
		return "NODE"
	case SYS:
		return "SYS"
	case Unknown:
		return "?"
	}
	if n := l.NVLinks(); n > 0 {
		return "NV" + strconv.Itoa(n)
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// ParseLevel is the inverse of String.
func ParseLevel(s string) (Level, error) {
	for _, l := range []Level{Self, PIX, PXB, PHB, NODE, SYS, Unknown} {
		if s == l.String() {
			return l, nil
		}
	}
	if rest, ok := strings.CutPrefix(s, "NV"); ok {
		if n, err := strconv.Atoi(rest); err == nil && n > 0 {
			return NV(n), nil
		}
	}
	return Unknown, fmt.Errorf("unknown connection level %q: want X, NV<links>, PIX, PXB, PHB, NODE, SYS or ?", s)
}

func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	*l = v
	return err
}
