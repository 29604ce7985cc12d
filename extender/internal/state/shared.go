package state

import (
	"crypto/sha256"
	"encoding/json"
	"runtime"
	"sync"
	"weak"

	"github.com/topolane/topolane/topology"
)

// A cluster has a few kinds of machine, and the NodeTopologies of one kind differ in little but
// the node's name and its GPUs' UUIDs. Decoded, a DGX H100's NICs, VFs, levels and rails are
// about 7 KB; 5,000 of them alike were a third of the extender's heap. The NodeTopology
// informer's transform therefore points every decoded topology at one copy of each part equal
// to another node's (see share). Nothing changes a decoded topology (TopologyInfo), so sharing
// is safe.

// machineParts are what nodes of one kind of machine have alike.
type machineParts struct {
	NUMANodes     []int
	NICs          []topology.NIC
	Levels        topology.Levels
	Rails         []topology.Rail
	RDMANetnsMode string
}

// gpuParts are a node's GPUs: alike only where their UUIDs are (fixtures, not real nodes).
type gpuParts struct {
	GPUs []topology.GPU
}

// sharedParts are the copies a topology was pointed at; its TopologyInfo holds them, so that a
// copy lives as long as some node's topology uses it.
type sharedParts struct {
	machine *machineParts
	gpus    *gpuParts
}

var (
	machines = newInterned[machineParts]()
	gpuSets  = newInterned[gpuParts]()
)

// share points n's parts at the copies other nodes already use where they are equal, and
// returns those copies for the caller to hold.
func share(n *topology.Node) sharedParts {
	m := machines.get(&machineParts{NUMANodes: n.NUMANodes, NICs: n.NICs, Levels: n.Levels, Rails: n.Rails, RDMANetnsMode: n.RDMANetnsMode})
	g := gpuSets.get(&gpuParts{GPUs: n.GPUs})
	n.NUMANodes, n.NICs, n.Levels, n.Rails, n.RDMANetnsMode = m.NUMANodes, m.NICs, m.Levels, m.Rails, m.RDMANetnsMode
	n.GPUs = g.GPUs
	return sharedParts{machine: m, gpus: g}
}

// interned holds one copy of each distinct value (by the SHA-256 of its JSON) while something
// holds it; a value nobody holds any more is forgotten.
type interned[T any] struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]weak.Pointer[T]
}

func newInterned[T any]() *interned[T] {
	return &interned[T]{m: map[[sha256.Size]byte]weak.Pointer[T]{}}
}

// get returns the copy held of a value equal to v, or v, which is then the copy held.
func (t *interned[T]) get(v *T) *T {
	data, err := json.Marshal(v)
	if err != nil {
		return v
	}
	key := sha256.Sum256(data)
	t.mu.Lock()
	defer t.mu.Unlock()
	if held := t.m[key].Value(); held != nil {
		return held
	}
	t.m[key] = weak.Make(v)
	runtime.AddCleanup(v, t.forget, key)
	return v
}

// forget drops a key whose value was collected, unless an equal value took its place since.
func (t *interned[T]) forget(key [sha256.Size]byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m[key].Value() == nil {
		delete(t.m, key)
	}
}
