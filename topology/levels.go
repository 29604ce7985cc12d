package topology

import (
	"encoding/json"
	"maps"
	"slices"
)

// Levels is the connection of every pair of devices, by PCI address: a dense matrix, because
// the relation is dense and an extender keeps one per node for thousands of nodes. Its JSON is
// an object of objects, {"0000:1b:00.0": {"0000:1a:00.0": "PIX", ...}, ...}.
type Levels struct {
	index map[string]int
	cells []int16 // row-major, len(index)² entries; 0 is Unknown
}

// Get returns the level of a pair, or Unknown.
func (l *Levels) Get(a, b string) Level {
	i, ok := l.index[a]
	j, ok2 := l.index[b]
	if !ok || !ok2 {
		return Unknown
	}
	return Level(l.cells[i*len(l.index)+j])
}

// Set records the level of a pair in both directions.
func (l *Levels) Set(a, b string, v Level) {
	i, j := l.add(a), l.add(b)
	n := len(l.index)
	l.cells[i*n+j], l.cells[j*n+i] = int16(v), int16(v)
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
}

// IsZero reports whether no pair is recorded.
func (l Levels) IsZero() bool { return len(l.index) == 0 }

// Equal compares by content, whatever order the devices were added in.
func (l Levels) Equal(o Levels) bool {
	if len(l.index) != len(o.index) {
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
	return Levels{index: maps.Clone(l.index), cells: slices.Clone(l.cells)}
}

func (l Levels) MarshalJSON() ([]byte, error) {
	out := make(map[string]map[string]Level, len(l.index))
	for a := range l.index {
		row := map[string]Level{}
		for b := range l.index {
			if v := l.Get(a, b); v != Unknown {
				row[b] = v
			}
		}
		out[a] = row
	}
	return json.Marshal(out)
}

func (l *Levels) UnmarshalJSON(data []byte) error {
	var in map[string]map[string]Level
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	addrs := map[string]bool{}
	for a, row := range in {
		addrs[a] = true
		for b := range row {
			addrs[b] = true
		}
	}
	*l = Levels{index: make(map[string]int, len(addrs)), cells: make([]int16, len(addrs)*len(addrs))}
	for i, a := range slices.Sorted(maps.Keys(addrs)) {
		l.index[a] = i
	}
	for a, row := range in {
		for b, v := range row {
			l.Set(a, b, v)
		}
	}
	return nil
}
