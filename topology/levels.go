package topology

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Levels is the connection of every pair of devices, by PCI address: a dense matrix of the
// GPUs and NICs, because the relation is dense and an extender keeps one per node for thousands
// of nodes. A VF is where its PF is on the PCIe tree, so it is only an alias of its PF's row
// (and PIX to its PF and the PF's other VFs): a node with 16 VFs per NIC costs no more.
//
// Its JSON is compact, a row of level names per device:
//
//	{"devices": ["0000:1b:00.0", "0000:1a:00.0"], "rows": ["X PIX", "PIX X"], "vfs": {"0000:1a:00.2": "0000:1a:00.0"}}
type Levels struct {
	index map[string]int
	cells []int16           // row-major, len(index)² entries; 0 is Unknown
	vfOf  map[string]string // VF -> its PF
}

// Get returns the level of a pair, or Unknown.
func (l *Levels) Get(a, b string) Level {
	pa, pb := l.primary(a), l.primary(b)
	if pa == pb && a != b {
		return PIX // a VF and its PF, or two VFs of one PF: functions of one device
	}
	i, ok := l.index[pa]
	j, ok2 := l.index[pb]
	if !ok || !ok2 {
		return Unknown
	}
	return Level(l.cells[i*len(l.index)+j])
}

// primary is the device whose row holds addr's levels: its PF for a VF.
func (l *Levels) primary(addr string) string {
	if pf, ok := l.vfOf[addr]; ok {
		return pf
	}
	return addr
}

// Set records the level of a pair in both directions.
func (l *Levels) Set(a, b string, v Level) {
	i, j := l.add(a), l.add(b)
	n := len(l.index)
	l.cells[i*n+j], l.cells[j*n+i] = int16(v), int16(v)
}

// SetVF records that vf is a virtual function of pf: it shares pf's levels.
func (l *Levels) SetVF(vf, pf string) {
	if l.vfOf == nil {
		l.vfOf = map[string]string{}
	}
	l.vfOf[vf] = pf
}

// add returns a device's row, growing the matrix for a new one.
func (l *Levels) add(addr string) int {
	if i, ok := l.index[addr]; ok {
		return i
	}
	if l.index == nil {
		l.index = map[string]int{}
	}
	n := len(l.index)
	grown := make([]int16, (n+1)*(n+1))
	for r := range n {
		copy(grown[r*(n+1):r*(n+1)+n], l.cells[r*n:r*n+n])
	}
	l.index[addr], l.cells = n, grown
	return n
}

// Overlay copies every known pair of o into l.
func (l *Levels) Overlay(o Levels) {
	for a, i := range o.index {
		for b, j := range o.index {
			if v := Level(o.cells[i*len(o.index)+j]); v != Unknown {
				l.Set(a, b, v)
			}
		}
	}
	for vf, pf := range o.vfOf {
		l.SetVF(vf, pf)
	}
}

// IsZero reports whether no pair is recorded.
func (l Levels) IsZero() bool { return len(l.index) == 0 && len(l.vfOf) == 0 }

// Equal compares by content, whatever order the devices were added in.
func (l Levels) Equal(o Levels) bool {
	if len(l.index) != len(o.index) || !maps.Equal(l.vfOf, o.vfOf) {
		return false
	}
	for a := range l.index {
		for b := range l.index {
			if l.Get(a, b) != o.Get(a, b) {
				return false
			}
		}
	}
	return true
}

// clone copies the matrix.
func (l Levels) clone() Levels {
	return Levels{index: maps.Clone(l.index), cells: slices.Clone(l.cells), vfOf: maps.Clone(l.vfOf)}
}

// levelsJSON is the encoding of Levels.
type levelsJSON struct {
	Devices []string          `json:"devices"`
	Rows    []string          `json:"rows"`
	VFs     map[string]string `json:"vfs,omitempty"`
}

func (l Levels) MarshalJSON() ([]byte, error) {
	devices := slices.Sorted(maps.Keys(l.index))
	doc := levelsJSON{Devices: devices, Rows: make([]string, len(devices)), VFs: l.vfOf}
	for i, a := range devices {
		cells := make([]string, len(devices))
		for j, b := range devices {
			cells[j] = l.Get(a, b).String()
		}
		doc.Rows[i] = strings.Join(cells, " ")
	}
	return json.Marshal(doc)
}

func (l *Levels) UnmarshalJSON(data []byte) error {
	var doc levelsJSON
	if err := json.Unmarshal(data, &doc); err != nil {
		return err
	}
	if len(doc.Rows) != len(doc.Devices) {
		return fmt.Errorf("levels: %d rows for %d devices", len(doc.Rows), len(doc.Devices))
	}
	for i, row := range doc.Rows { // before the matrix is made: its size is what the rows hold
		if c := len(strings.Fields(row)); c != len(doc.Devices) {
			return fmt.Errorf("levels of %s: %d levels for %d devices", doc.Devices[i], c, len(doc.Devices))
		}
	}
	*l = Levels{index: make(map[string]int, len(doc.Devices)), cells: make([]int16, len(doc.Devices)*len(doc.Devices))}
	for i, a := range doc.Devices {
		if _, dup := l.index[a]; dup {
			return fmt.Errorf("levels: device %s listed twice", a)
		}
		l.index[a] = i
	}
	for i, row := range doc.Rows {
		if err := l.setRow(i, row); err != nil {
			return fmt.Errorf("levels of %s: %w", doc.Devices[i], err)
		}
	}
	for vf, pf := range doc.VFs {
		l.SetVF(vf, pf)
	}
	return nil
}

func (l *Levels) setRow(i int, row string) error {
	cells := strings.Fields(row)
	if len(cells) != len(l.index) {
		return fmt.Errorf("%d levels for %d devices", len(cells), len(l.index))
	}
	for j, c := range cells {
		v, err := ParseLevel(c)
		if err != nil {
			return err
		}
		l.cells[i*len(l.index)+j] = int16(v)
	}
	return nil
}
