// Package state is the extender's picture of the cluster: for every node its topology, the pods
// on it and the devices they hold, folded into a placement.Summary that is rebuilt when, and only
// when, an event changes the node. Requests read summaries; they never compute them.
package state

import (
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
)

// Store holds every node's state. It is safe for concurrent use.
type Store struct {
	gpuResources []corev1.ResourceName

	mu    sync.RWMutex
	nodes map[string]*node
	// views is what requests read, by node: kept apart from nodes and inline in the map so that
	// a pass over thousands of names touches little memory.
	views   map[string]View
	podNode map[types.UID]string // the node each tracked pod counts on
	binds   map[string]*sync.Mutex
}

// node is one node's state; its summary is replaced, never changed, so readers may keep it.
type node struct {
	name            string // the key of nodes and views, a string of its own
	exists          bool   // the Node object is known
	allocatableGPUs int    // -1 when the Node does not say
	topo            *topology.Node
	topoProblem     string // why there is no usable topology
	attachments     map[types.UID]v1alpha1.Attachment
	pods            map[types.UID]podUse
	summary         *placement.Summary
	summaryErr      error
}

// New makes an empty store counting the given resources as GPUs.
func New(gpuResources []corev1.ResourceName) *Store {
	return &Store{gpuResources: gpuResources, nodes: map[string]*node{}, views: map[string]View{}, podNode: map[types.UID]string{}, binds: map[string]*sync.Mutex{}}
}

// GPUResources are the resources the store counts as GPUs.
func (s *Store) GPUResources() []corev1.ResourceName { return s.gpuResources }

func (s *Store) entry(name string) *node {
	n := s.nodes[name]
	if n == nil {
		name = strings.Clone(name) // not a piece of an informer's object
		n = &node{name: name, allocatableGPUs: -1, topoProblem: "no NodeTopology: is topolane-agent running on this node?",
			pods: map[types.UID]podUse{}, attachments: map[types.UID]v1alpha1.Attachment{}}
		s.nodes[name] = n
	}
	return n
}

// SetNode records a Node's GPU allocatable.
func (s *Store) SetNode(n *corev1.Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(n.Name)
	e.exists = true
	e.allocatableGPUs = -1
	for _, r := range s.gpuResources {
		if q, ok := n.Status.Allocatable[r]; ok {
			e.allocatableGPUs = max(e.allocatableGPUs, 0) + int(q.Value())
		}
	}
	s.rebuild(e)
}

// DeleteNode forgets a node and what is counted on it.
func (s *Store) DeleteNode(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.nodes[name]; e != nil {
		for uid := range e.pods {
			delete(s.podNode, uid)
		}
	}
	delete(s.nodes, name)
	delete(s.views, name)
}

// SetTopology records a node's NodeTopology, or why it cannot be used.
func (s *Store) SetTopology(name string, nt *v1alpha1.NodeTopology, problem error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(name)
	e.topo, e.topoProblem = nil, ""
	e.attachments = map[types.UID]v1alpha1.Attachment{}
	if problem != nil {
		e.topoProblem = problem.Error()
	} else {
		e.topo = nt.Status.Topology.DeepCopy()
		for _, a := range nt.Status.Attachments {
			e.attachments[a.PodUID] = a
		}
	}
	s.rebuild(e)
}

// DeleteTopology forgets a node's NodeTopology.
func (s *Store) DeleteTopology(name string) {
	s.SetTopology(name, nil, fmt.Errorf("no NodeTopology: is topolane-agent running on this node?"))
}

// SetPod counts a pod where it is placed (bound, or reserved at bind), and nowhere else.
func (s *Store) SetPod(pod *corev1.Pod) { s.SetPodInfo(NewPodInfo(pod, s.gpuResources)) }

// SetPodInfo is SetPod for what the pod informer caches.
func (s *Store) SetPodInfo(pod *PodInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forget(pod.UID)
	nodeName, alloc := placedOn(pod)
	if nodeName == "" {
		return
	}
	use := podUse{key: pod.Namespace + "/" + pod.Name, gpus: pod.GPUs}
	if alloc != nil {
		pa := placement.Allocation{Pod: use.key, Kind: alloc.Kind, NIC: alloc.NIC, Device: alloc.Device}
		use.alloc = &pa
	}
	e := s.entry(nodeName)
	e.pods[pod.UID] = use
	s.podNode[pod.UID] = nodeName
	s.rebuild(e)
}

// DeletePod stops counting a pod.
func (s *Store) DeletePod(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forget(uid)
}

func (s *Store) forget(uid types.UID) {
	name, ok := s.podNode[uid]
	if !ok {
		return
	}
	delete(s.podNode, uid)
	if e := s.nodes[name]; e != nil {
		delete(e.pods, uid)
		s.rebuild(e)
	}
}

// rebuild folds a node's pods into a new summary. The caller holds s.mu.
func (s *Store) rebuild(e *node) {
	e.summary, e.summaryErr = nil, nil
	if e.topo != nil {
		e.summary, e.summaryErr = placement.Summarize(e.topo, e.usage())
	}
	v := View{Known: e.exists, Summary: e.summary, Problem: e.topoProblem}
	if e.summaryErr != nil {
		v.Problem = "topology and reservations disagree: " + e.summaryErr.Error()
	}
	s.views[e.name] = v // the same key: assigning replaces a map's key too
}

// usage is what the node's pods hold: GPUs by request, devices by the agent's report where it
// has one and by the extender's reservation otherwise. GPUs the Node does not offer (fewer
// allocatable than discovered: unhealthy, or kept back) count as in use.
func (e *node) usage() placement.Usage {
	u := placement.Usage{}
	if e.allocatableGPUs >= 0 {
		u.GPUsInUse = max(len(e.topo.GPUs)-e.allocatableGPUs, 0)
	}
	for uid, p := range e.pods {
		u.GPUsInUse += p.gpus
		if _, reported := e.attachments[uid]; !reported && p.alloc != nil {
			u.Allocations = append(u.Allocations, *p.alloc)
		}
	}
	for _, a := range e.attachments {
		u.Allocations = append(u.Allocations, placement.Allocation{Pod: a.Pod, Kind: a.Kind, NIC: a.NIC, Device: a.Device})
	}
	return u
}
