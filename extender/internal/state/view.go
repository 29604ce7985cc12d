package state

import (
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/types"

	"github.com/topolane/topolane/topology/placement"
)

// View is what a request may know of a node.
type View struct {
	Known bool // the Node object exists
	// Summary is nil when the node has no usable topology; Problem then says why.
	Summary *placement.Summary
	Problem string
}

// Node returns a node's view. The summary is immutable: keep it as long as needed.
func (s *Store) Node(name string) View {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.views.view(name)
}

// Nodes calls fn with the view of every named node under one read lock, stopping at the first
// error. fn must not call back into the store. (Splitting long lists over the CPUs was tried:
// waking a second CPU costs more than it saves at 5,000 nodes.)
func (s *Store) Nodes(names []string, fn func(i int, v View) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i, name := range names {
		if err := fn(i, s.views.view(name)); err != nil {
			return err
		}
	}
	return nil
}

// Pass asks every named node whether a pod of the shape fits, under one read lock: fits(i,
// score) for each node that is known, has a summary and fits; other(i, view, memo) for every
// other node, and for except (when not "": a node the caller sees otherwise, such as where the
// pod holds a reservation of its own). memo, when not nil, is where the caller may keep why
// the node refuses the shape; the store empties it when the node changes. Neither callback may
// call back into the store.
func (s *Store) Pass(names []string, shape placement.Shape, except string, fits func(i, score int), other func(i int, v View, memo *Memo)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	col := s.views.column(shape)
	for i, name := range names {
		_, ord := s.views.find(name)
		switch {
		case ord < 0:
			other(i, View{}, nil)
		case except != "" && name == except:
			other(i, s.views.views[ord], nil)
		case col.fits[ord] > 0:
			fits(i, int(col.fits[ord])-1)
		default:
			other(i, s.views.views[ord], &col.rejected[ord])
		}
	}
}

// ReservedFor returns the node where the pod holds a reservation (the latest a bind assumed, or
// its own allocation as the informer shows it), or "".
func (s *Store) ReservedFor(uid types.UID) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if r, ok := s.ledger.latest(uid); ok {
		return r.Allocation.Node
	}
	if name, ok := s.podNode[uid]; ok && s.nodes[name].pods[uid].alloc != nil {
		return name
	}
	return ""
}

// NodeWithout is the node's view as if the pods held nothing there: a pod's own leftover
// reservation must not count against it, and preemption asks what evicting pods would free.
func (s *Store) NodeWithout(name string, uids ...types.UID) View {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.nodes[name]
	if e == nil || e.topo == nil {
		return s.views.view(name)
	}
	var assumed []Reservation
	for _, r := range s.ledger.on(name) {
		if !slices.Contains(uids, r.UID) {
			assumed = append(assumed, r)
		}
	}
	without := *e
	without.pods = maps.Clone(e.pods)
	without.attachments = maps.Clone(e.attachments)
	for _, uid := range uids {
		delete(without.pods, uid)
		delete(without.attachments, uid)
	}
	u, _ := without.usage(assumed)
	return View{Known: e.exists, Summary: placement.Summarize(e.topo, u, s.weights), Problem: e.topoProblem}
}

// Holder is a pod that holds GPUs or devices on a node.
type Holder struct {
	UID      types.UID
	Pod      string // namespace/name
	Priority int32
	GPUs     int
}

// Holders lists the pods counted on a node (preemption's candidates), in no particular order.
func (s *Store) Holders(name string) []Holder {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.nodes[name]
	if e == nil {
		return nil
	}
	var out []Holder
	for uid, p := range e.pods {
		if p.gpus > 0 || p.alloc != nil || len(e.attachments[uid]) > 0 {
			out = append(out, Holder{UID: uid, Pod: p.key, Priority: p.priority, GPUs: p.gpus})
		}
	}
	return out
}

// Debug is what /debug/nodes/{node} shows.
type Debug struct {
	Node            string                 `json:"node"`
	Known           bool                   `json:"known"`
	Problem         string                 `json:"problem,omitempty"`
	GPUs            int                    `json:"gpus"`
	GPUsFree        int                    `json:"gpusFree"`
	AllocatableGPUs int                    `json:"allocatableGPUs"`
	PFsFree         int                    `json:"pfsFree"`
	VFsFree         int                    `json:"vfsFree"`
	Rails           []placement.RailInfo   `json:"rails"`
	Pods            []DebugPod             `json:"pods"`
	Held            []placement.Allocation `json:"devicesHeld"`
	// Assumed are reservations binds made that the pod informer has not shown yet.
	Assumed []string `json:"assumed"`
	// Problems are allocations that do not count: forged, stale, or a device held twice.
	Problems []string `json:"problems"`
}

// DebugPod is a pod counted on the node.
type DebugPod struct {
	Pod  string `json:"pod"`
	GPUs int    `json:"gpus"`
}

// DebugNode describes a node; ok is false for a node the store has never heard of.
func (s *Store) DebugNode(name string) (d Debug, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.nodes[name]
	if e == nil {
		return Debug{}, false
	}
	d = Debug{Node: name, Known: e.exists, Problem: e.topoProblem, AllocatableGPUs: e.allocatableGPUs,
		Rails: []placement.RailInfo{}, Pods: []DebugPod{}, Held: []placement.Allocation{}, Assumed: []string{}, Problems: []string{}}
	for _, p := range e.pods {
		d.Pods = append(d.Pods, DebugPod{Pod: p.key, GPUs: p.gpus})
	}
	slices.SortFunc(d.Pods, func(a, b DebugPod) int { return strings.Compare(a.Pod, b.Pod) })
	for _, r := range s.ledger.on(name) {
		d.Assumed = append(d.Assumed, r.Pod)
	}
	for _, p := range e.problems {
		d.Problems = append(d.Problems, p.Message)
	}
	if sum := e.summary; sum != nil {
		d.GPUs, d.GPUsFree, d.PFsFree, d.VFsFree, d.Rails = sum.GPUsTotal, sum.GPUsFree, sum.FreePFs(), sum.FreeVFs(), sum.Rails()
		u, _ := e.usage(s.ledger.on(name))
		d.Held = append(d.Held, u.Allocations...)
	}
	return d, true
}
