package state

import (
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"

	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
)

// Reservation is a pod's devices as a bind reserved them.
type Reservation struct {
	UID        types.UID
	Pod        string // namespace/name
	GPUs       int
	Allocation v1alpha1.Allocation
	// ResourceVersion is the pod's as the bind read it, before its Binding: the pod informer's
	// pod at a later version, bound, shows the bind's outcome.
	ResourceVersion string
	// Seq tells this reservation from another bind's of the same pod, node and devices; the
	// store sets it.
	Seq uint64
}

// ledger holds the reservations binds made that the pod informer has not shown yet (scheduler-
// plugins' "assumed" pods): an informer event older than the reservation cannot erase it, and
// the device stays taken until the informer catches up. A pod may hold one on each of several
// nodes: the scheduler gives up on a bind (its timeout) and binds the pod elsewhere while the
// first bind still runs, and until one of them lands both nodes' devices stay taken. Beside it,
// the per-node bind locks. The store guards it with its own lock.
type ledger struct {
	assumed map[types.UID][]Reservation // at most one per node
	binds   map[string]*sync.Mutex
	seq     uint64 // the last Reservation.Seq given
}

func newLedger() ledger {
	return ledger{assumed: map[types.UID][]Reservation{}, binds: map[string]*sync.Mutex{}}
}

// reserve assumes a reservation, in place of the pod's earlier one on the same node.
func (l *ledger) reserve(r Reservation) {
	rs := slices.DeleteFunc(l.assumed[r.UID], func(old Reservation) bool { return old.Allocation.Node == r.Allocation.Node })
	l.assumed[r.UID] = append(rs, r)
}

// drop removes the pod's reservations for which gone is true and returns their nodes.
func (l *ledger) drop(uid types.UID, gone func(Reservation) bool) (nodes []string) {
	kept := slices.DeleteFunc(l.assumed[uid], func(r Reservation) bool {
		if gone(r) {
			nodes = append(nodes, r.Allocation.Node)
			return true
		}
		return false
	})
	if len(kept) == 0 {
		delete(l.assumed, uid)
	} else {
		l.assumed[uid] = kept
	}
	return nodes
}

// confirm drops the assumed reservations that the informer's pod now shows, and returns their
// nodes.
func (l *ledger) confirm(pod *PodInfo) []string {
	return l.drop(pod.UID, func(r Reservation) bool { return seenBy(pod, r) })
}

// seenBy reports whether the informer's pod shows the bind: it carries the reservation's
// allocation (it holds the devices itself now), or it is bound at a later version than the bind
// read (bound without it: by another bind of the pod, or another binder). A pod of a later
// version that is still unbound shows nothing yet: something else wrote it.
func seenBy(pod *PodInfo, r Reservation) bool {
	if pod.Annotations[v1alpha1.AnnotationAllocation] == r.Allocation.String() {
		return true
	}
	c, err := resourceversion.CompareResourceVersion(pod.ResourceVersion, r.ResourceVersion)
	return err == nil && c > 0 && pod.NodeName != ""
}

// latest is the pod's most recent reservation, if any.
func (l *ledger) latest(uid types.UID) (Reservation, bool) {
	rs := l.assumed[uid]
	if len(rs) == 0 {
		return Reservation{}, false
	}
	return rs[len(rs)-1], true
}

// on lists the reservations assumed on a node.
func (l *ledger) on(node string) []Reservation {
	var out []Reservation
	for _, rs := range l.assumed {
		for _, r := range rs {
			if r.Allocation.Node == node {
				out = append(out, r)
			}
		}
	}
	return out
}

// lock returns the node's bind lock.
func (l *ledger) lock(node string) *sync.Mutex {
	m := l.binds[node]
	if m == nil {
		m = &sync.Mutex{}
		l.binds[node] = m
	}
	return m
}

// Reserve assumes the devices of a bind until the pod informer shows them, and counts them at
// once: filters that run before the informer catches up see them taken. It returns the
// reservation as the store holds it, for Release.
func (s *Store) Reserve(r Reservation) Reservation {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ledger.seq++
	r.Seq = s.ledger.seq
	s.ledger.reserve(r)
	s.rebuildNamed(r.Allocation.Node)
	return r
}

// Release forgets a reservation Reserve returned, its bind having failed. Another bind's of the
// pod (the scheduler gave up on one and bound the pod again meanwhile) stays, even for the same
// node and devices.
func (s *Store) Release(r Reservation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, node := range s.ledger.drop(r.UID, func(held Reservation) bool { return held.Seq == r.Seq }) {
		s.rebuildNamed(node)
	}
}

// LockNode serialises binds on one node; call the returned function to unlock.
func (s *Store) LockNode(name string) (unlock func()) {
	s.mu.Lock()
	m := s.ledger.lock(name)
	s.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// Assumed lists the reservations on a node the pod informer has not shown yet.
func (s *Store) Assumed(node string) []Reservation {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ledger.on(node)
}

// held is what a reservation holds, for placement.Usage.
func (r Reservation) held() []placement.Allocation { return r.Allocation.Held(r.Pod) }
