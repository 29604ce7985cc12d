package state

import (
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
}

// ledger holds the reservations binds made that the pod informer has not shown yet (scheduler-
// plugins' "assumed" pods): an informer event older than the reservation cannot erase it, and
// the device stays taken until the informer catches up. Beside it, the per-node bind locks. The
// store guards it with its own lock.
type ledger struct {
	assumed map[types.UID]Reservation
	binds   map[string]*sync.Mutex
}

func newLedger() ledger {
	return ledger{assumed: map[types.UID]Reservation{}, binds: map[string]*sync.Mutex{}}
}

// reserve assumes a reservation; it returns the node of one it replaces, if any.
func (l *ledger) reserve(r Reservation) (replaced string) {
	if old, ok := l.assumed[r.UID]; ok {
		replaced = old.Allocation.Node
	}
	l.assumed[r.UID] = r
	return replaced
}

// release drops the pod's assumed reservation; it returns its node, if there was one.
func (l *ledger) release(uid types.UID) (node string) {
	r, ok := l.assumed[uid]
	if ok {
		delete(l.assumed, uid)
	}
	return r.Allocation.Node
}

// confirm drops an assumed reservation that the informer's pod now shows. It returns the node of the reservation it dropped.
func (l *ledger) confirm(pod *PodInfo) (node string) {
	r, ok := l.assumed[pod.UID]
	if !ok || !seenBy(pod, r) {
		return ""
	}
	delete(l.assumed, pod.UID)
	return r.Allocation.Node
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

// on lists the reservations assumed on a node.
func (l *ledger) on(node string) []Reservation {
	var out []Reservation
	for _, r := range l.assumed {
		if r.Allocation.Node == node {
			out = append(out, r)
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
// once: filters that run before the informer catches up see them taken.
func (s *Store) Reserve(r Reservation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.ledger.reserve(r); old != "" && old != r.Allocation.Node {
		s.rebuildNamed(old)
	}
	s.rebuildNamed(r.Allocation.Node)
}

// Release forgets a pod's assumed reservation of a, its bind having failed. A reservation of
// another allocation is a later bind's of the pod (the scheduler gave up on the first and bound
// it again meanwhile): it stays.
func (s *Store) Release(uid types.UID, a v1alpha1.Allocation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.ledger.assumed[uid]; !ok || r.Allocation.String() != a.String() {
		return
	}
	if node := s.ledger.release(uid); node != "" {
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
