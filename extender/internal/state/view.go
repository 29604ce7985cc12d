package state

import (
	"sync"

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
	return s.view(name)
}

// Nodes calls fn with the view of every named node under one read lock, stopping at the first
// error. fn must not call back into the store. (Splitting long lists over the CPUs was tried:
// waking a second CPU costs more than it saves at 5,000 nodes.)
func (s *Store) Nodes(names []string, fn func(i int, v View) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i, name := range names {
		if err := fn(i, s.view(name)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) view(name string) View { return s.views[name] }

// LockNode serialises binds on one node; call the returned function to unlock.
func (s *Store) LockNode(name string) (unlock func()) {
	s.mu.Lock()
	m := s.binds[name]
	if m == nil {
		m = &sync.Mutex{}
		s.binds[name] = m
	}
	s.mu.Unlock()
	m.Lock()
	return m.Unlock
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
	Pods            []DebugPod             `json:"pods"`
	Reserved        []placement.Allocation `json:"devicesHeld"`
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
	d = Debug{Node: name, Known: e.exists, Problem: e.topoProblem, AllocatableGPUs: e.allocatableGPUs, Pods: []DebugPod{}, Reserved: []placement.Allocation{}}
	for _, p := range e.pods {
		d.Pods = append(d.Pods, DebugPod{Pod: p.key, GPUs: p.gpus})
	}
	if e.summaryErr != nil {
		d.Problem = e.summaryErr.Error()
	}
	if sum := e.summary; sum != nil {
		d.GPUs, d.GPUsFree, d.PFsFree, d.VFsFree = sum.GPUsTotal, sum.GPUsFree, sum.FreePFs(), sum.FreeVFs()
		d.Reserved = append(d.Reserved, e.usage().Allocations...)
	}
	return d, true
}
