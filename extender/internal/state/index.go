package state

import (
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/topolane/topolane/topology/placement"
)

// index holds every node's view by an ordinal, finds the ordinal by name in a flat
// open-addressed table, and keeps for each pod shape that requests asked about a column of every
// node's answer, one byte a node. A pass over 5,000 names then reads the table, the names laid
// end to end and one column: a few hundred kilobytes that stay in the CPU's cache. With a map
// of views each lookup went to a key and a summary scattered over the heap, and that was most
// of a filter's time once the scheduler and the network had run in between.
//
// Everything is changed under the store's write lock; readers hold its read lock. The one
// change readers make, adding a column, is serialized by colMu and published atomically.
type index struct {
	seed  maphash.Seed
	slots []slot // linear probing; the length is a power of two, at most half full
	live  int    // ordinals in use

	names   []byte     // every live node's name, end to end, and the names of some removed ones
	spans   []nameSpan // by ordinal: where its name is in names
	views   []View     // by ordinal
	free    []int32    // ordinals of removed nodes, to reuse
	garbage int        // bytes of names that removed nodes left in names

	colMu   sync.Mutex
	columns atomic.Pointer[[]*column] // newest first
}

// slot is a table entry: the low half of the name's hash (its home slot and a cheap first
// comparison) and the ordinal plus one; zero is an empty slot.
type slot struct {
	hash uint32
	ord1 int32
}

type nameSpan struct{ off, len int32 }

// column is every node's answer to one pod shape: 0 when the node does not fit it, or is not
// known, or has no summary; else 1 + its score. Why a node does not fit is kept too, once a
// request has worded it, until the node changes: a pending pod is filtered again and again,
// and the same nodes refuse it for the same reason each time.
type column struct {
	shape    placement.Shape
	fits     []uint8
	rejected []Memo
}

// Memo keeps why a node refuses a shape, as the caller worded it; nil until then.
type Memo = atomic.Pointer[Rejection]

// Rejection is why a node refuses a pod.
type Rejection struct {
	Code         string
	Unresolvable bool // freeing devices would not help
	Reason       string
}

// maxColumns bounds the shapes kept: a cluster asks a handful (mode × rails × gdr × GPUs); past
// the bound the least used lately is dropped and rebuilt when next asked, one pass over the
// summaries.
const maxColumns = 32

func newIndex() *index {
	x := &index{seed: maphash.MakeSeed(), slots: make([]slot, 64)}
	x.columns.Store(&[]*column{})
	return x
}

func (x *index) hash(name string) uint32 { return uint32(maphash.String(x.seed, name)) }

// find returns the name's slot and ordinal, or the empty slot where it would go and -1.
func (x *index) find(name string) (at int, ord int32) {
	h, mask := x.hash(name), len(x.slots)-1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := x.slots[i]
		if s.ord1 == 0 {
			return i, -1
		}
		// string(bytes) == string compares without copying.
		if s.hash == h && int(x.spans[s.ord1-1].len) == len(name) && string(x.names[x.spans[s.ord1-1].off:][:len(name)]) == name {
			return i, s.ord1 - 1
		}
	}
}

// view is the node's view; the zero View for a node the index does not hold.
func (x *index) view(name string) View {
	if _, ord := x.find(name); ord >= 0 {
		return x.views[ord]
	}
	return View{}
}

// set records a node's view, adding the node when it is new.
func (x *index) set(name string, v View) {
	at, ord := x.find(name)
	if ord < 0 {
		ord = x.add(name, at)
	}
	x.views[ord] = v
	for _, c := range *x.columns.Load() {
		c.fits[ord] = answerOf(v, c.shape)
		c.rejected[ord].Store(nil)
	}
}

func (x *index) add(name string, at int) int32 {
	var ord int32
	if n := len(x.free); n > 0 {
		ord, x.free = x.free[n-1], x.free[:n-1]
	} else {
		ord = int32(len(x.views))
		x.spans, x.views = append(x.spans, nameSpan{}), append(x.views, View{})
		for _, c := range *x.columns.Load() {
			c.fits = append(c.fits, 0)
			c.rejected = slices.Grow(c.rejected, 1)[:len(c.fits)]
		}
	}
	x.spans[ord] = nameSpan{off: int32(len(x.names)), len: int32(len(name))}
	x.names = append(x.names, name...)
	x.slots[at] = slot{hash: x.hash(name), ord1: ord + 1}
	if x.live++; 2*x.live > len(x.slots) {
		x.rehash(2 * len(x.slots))
	}
	return ord
}

// remove forgets a node; its ordinal is free for the next new one.
func (x *index) remove(name string) {
	at, ord := x.find(name)
	if ord < 0 {
		return
	}
	x.unslot(at)
	x.live--
	x.garbage += int(x.spans[ord].len)
	x.spans[ord], x.views[ord] = nameSpan{}, View{}
	for _, c := range *x.columns.Load() {
		c.fits[ord] = 0
		c.rejected[ord].Store(nil)
	}
	x.free = append(x.free, ord)
	if x.garbage > 4096 && 2*x.garbage > len(x.names) {
		x.compactNames()
	}
}

// unslot empties a slot, moving back the entries after it that probing would no longer reach
// (backward-shift deletion: the table keeps no tombstones).
func (x *index) unslot(i int) {
	mask := len(x.slots) - 1
	for j := (i + 1) & mask; x.slots[j].ord1 != 0; j = (j + 1) & mask {
		home := int(x.slots[j].hash) & mask
		// The entry at j may move to i unless its home lies cyclically in (i, j].
		if (i <= j && (home <= i || home > j)) || (i > j && home <= i && home > j) {
			x.slots[i], i = x.slots[j], j
		}
	}
	x.slots[i] = slot{}
}

func (x *index) rehash(n int) {
	old := x.slots
	x.slots = make([]slot, n)
	mask := n - 1
	for _, s := range old {
		if s.ord1 == 0 {
			continue
		}
		i := int(s.hash) & mask
		for x.slots[i].ord1 != 0 {
			i = (i + 1) & mask
		}
		x.slots[i] = s
	}
}

// compactNames drops the names of removed nodes.
func (x *index) compactNames() {
	names := make([]byte, 0, len(x.names)-x.garbage)
	for ord, sp := range x.spans {
		if sp.len > 0 {
			x.spans[ord].off = int32(len(names))
			names = append(names, x.names[sp.off:sp.off+sp.len]...)
		}
	}
	x.names, x.garbage = names, 0
}

// column is the shape's column, built on first use. The caller holds the store's read lock.
// A column used again moves to the front once it is in the older half, so the columns dropped
// are the ones least used lately, not merely the oldest.
func (x *index) column(shape placement.Shape) *column {
	if c, at := x.lookColumn(shape); c != nil && at < maxColumns/2 {
		return c
	}
	x.colMu.Lock()
	defer x.colMu.Unlock()
	c, at := x.lookColumn(shape) // another request may have built or moved it meanwhile
	if c != nil && at < maxColumns/2 {
		return c
	}
	old := *x.columns.Load()
	if c != nil {
		old = slices.Delete(slices.Clone(old), at, at+1)
	} else {
		c = &column{shape: shape, fits: make([]uint8, len(x.views)), rejected: make([]Memo, len(x.views))}
		for ord, v := range x.views {
			c.fits[ord] = answerOf(v, shape)
		}
	}
	cols := append([]*column{c}, old[:min(len(old), maxColumns-1)]...)
	x.columns.Store(&cols)
	return c
}

// lookColumn finds the shape's column and its place, newest first.
func (x *index) lookColumn(shape placement.Shape) (*column, int) {
	for i, c := range *x.columns.Load() {
		if c.shape == shape {
			return c, i
		}
	}
	return nil, -1
}

func answerOf(v View, shape placement.Shape) uint8 {
	if v.Known && v.Summary != nil {
		if fits, score := v.Summary.Lookup(shape); fits {
			return uint8(1 + score)
		}
	}
	return 0
}
