// Package state is the extender's picture of the cluster: for every node its topology, the pods
// on it and the devices they hold, folded into a placement.Summary that is rebuilt when, and only
// when, an event changes the node. Requests read summaries; they never compute them.
package state

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"

	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
)

// Reporter hears of allocations a node's summary could not count (forged, stale, or two holders
// of one device). It is called under the store's lock: it must not block or call back.
type Reporter interface {
	Problem(node string, p placement.Problem)
}

// Store holds every node's state. It is safe for concurrent use.
type Store struct {
	gpuResources []corev1.ResourceName
	weights      placement.Weights
	reporter     Reporter

	mu    sync.RWMutex
	nodes map[string]*node
	// views is what requests read, by node, kept apart from nodes so that a pass over
	// thousands of names touches little memory.
	views   *index
	podNode map[types.UID]string // the node each pod the informer placed counts on
	ledger  ledger
}

// node is one node's state; its summary is replaced, never changed, so readers may keep it.
type node struct {
	name            string // the key of nodes and views, a string of its own
	exists          bool   // the Node object is known
	allocatableGPUs int    // -1 when the Node does not say
	topo            *topology.Node
	topoProblem     string // why there is no usable topology
	attachments     map[types.UID][]v1alpha1.Attachment
	pods            map[types.UID]podUse
	summary         *placement.Summary
	problems        []placement.Problem
}

// New makes an empty store counting the given resources as GPUs and scoring with w. reporter
// may be nil.
func New(gpuResources []corev1.ResourceName, w placement.Weights, reporter Reporter) *Store {
	return &Store{gpuResources: gpuResources, weights: w, reporter: reporter, nodes: map[string]*node{}, views: newIndex(),
		podNode: map[types.UID]string{}, ledger: newLedger()}
}

// GPUResources are the resources the store counts as GPUs.
func (s *Store) GPUResources() []corev1.ResourceName { return s.gpuResources }

// Weights are the weights the summaries score with.
func (s *Store) Weights() placement.Weights { return s.weights }

const noTopology = "no NodeTopology: is topolane-agent running on this node?"

func (s *Store) entry(name string) *node {
	n := s.nodes[name]
	if n == nil {
		name = strings.Clone(name) // not a piece of an informer's object
		n = &node{name: name, allocatableGPUs: -1, topoProblem: noTopology, pods: map[types.UID]podUse{}}
		s.nodes[name] = n
	}
	return n
}

// SetNode records a Node's GPU allocatable.
func (s *Store) SetNode(n *corev1.Node) { s.SetNodeInfo(NewNodeInfo(n, s.gpuResources)) }

// SetNodeInfo is SetNode for what the Node informer caches.
func (s *Store) SetNodeInfo(n *NodeInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(n.Name)
	if e.exists && e.allocatableGPUs == n.AllocatableGPUs {
		return // a status heartbeat: nothing the summary reads changed
	}
	e.exists = true
	e.allocatableGPUs = n.AllocatableGPUs
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
	s.views.remove(name)
}

// SetTopology records a node's NodeTopology (copied in), or why it cannot be used.
func (s *Store) SetTopology(name string, nt *v1alpha1.NodeTopology, problem error) {
	info := &TopologyInfo{}
	info.Name = name
	if problem != nil {
		info.Problem = problem.Error()
	} else {
		nt = nt.DeepCopy()
		info.Topology, info.Attachments = &nt.Status.Topology, nt.Status.Attachments
	}
	s.SetTopologyInfo(info)
}

// SetTopologyInfo records what the NodeTopology informer decoded. The topology is kept as it
// is, shared with the informer's cache: nothing changes it.
func (s *Store) SetTopologyInfo(t *TopologyInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(t.Name)
	e.topo, e.topoProblem, e.attachments = t.Topology, t.Problem, nil
	if e.topo != nil {
		e.attachments = map[types.UID][]v1alpha1.Attachment{}
		for _, a := range t.Attachments {
			e.attachments[a.PodUID] = append(e.attachments[a.PodUID], a)
		}
	}
	s.rebuild(e)
}

// DeleteTopology forgets a node's NodeTopology.
func (s *Store) DeleteTopology(name string) {
	s.SetTopology(name, nil, fmt.Errorf("%s", noTopology))
}

// SetPod counts a pod where it is placed (bound, or reserved at bind), and nowhere else.
func (s *Store) SetPod(pod *corev1.Pod) { s.SetPodInfo(NewPodInfo(pod, s.gpuResources)) }

// SetPodInfo is SetPod for what the pod informer caches. An event older than what the store
// already has of the pod changes nothing.
func (s *Store) SetPodInfo(pod *PodInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.older(pod) {
		return
	}
	confirmed := s.ledger.confirm(pod)
	s.forget(pod.UID)
	use, nodeName := usageOf(pod)
	if nodeName != "" {
		e := s.entry(nodeName)
		e.pods[pod.UID] = use
		s.podNode[pod.UID] = nodeName
		s.rebuild(e)
	}
	for _, node := range confirmed {
		if node != nodeName {
			s.rebuildNamed(node)
		}
	}
}

// older reports whether the store has a later version of the pod than this one.
func (s *Store) older(pod *PodInfo) bool {
	name, ok := s.podNode[pod.UID]
	if !ok {
		return false
	}
	c, err := resourceversion.CompareResourceVersion(pod.ResourceVersion, s.nodes[name].pods[pod.UID].rv)
	return err == nil && c < 0
}

// DeletePod stops counting a pod and forgets its reservation.
func (s *Store) DeletePod(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forget(uid)
	for _, node := range s.ledger.drop(uid, func(Reservation) bool { return true }) {
		s.rebuildNamed(node)
	}
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

func (s *Store) rebuildNamed(name string) {
	if e := s.nodes[name]; e != nil {
		s.rebuild(e)
	}
}

// rebuild folds a node's pods into a new summary and reports what it could not count. The
// caller holds s.mu.
func (s *Store) rebuild(e *node) {
	e.summary = nil
	var problems []placement.Problem
	if e.topo != nil {
		u, forged := e.usage(s.ledger.on(e.name))
		e.summary = placement.Summarize(e.topo, u, s.weights)
		problems = append(forged, e.summary.Problems...)
	}
	s.report(e, problems)
	s.views.set(e.name, View{Known: e.exists, Summary: e.summary, Problem: e.topoProblem})
}

// report tells the reporter of problems the node did not have before.
func (s *Store) report(e *node, problems []placement.Problem) {
	if s.reporter != nil {
		for _, p := range problems {
			if !slices.ContainsFunc(e.problems, func(q placement.Problem) bool { return q.Message == p.Message }) {
				s.reporter.Problem(e.name, p)
			}
		}
	}
	e.problems = problems
}

// usage is what the node's pods hold: GPUs by request; devices by the agent's report where it
// has one, else by the reservation a bind assumed, else by the pod's allocation annotation.
// GPUs the Node does not offer (fewer allocatable than discovered: unhealthy, or kept back)
// count as in use. It also returns the allocations it refused to count.
func (e *node) usage(assumed []Reservation) (placement.Usage, []placement.Problem) {
	u := placement.Usage{}
	var forged []placement.Problem
	if e.allocatableGPUs >= 0 {
		u.GPUsInUse = max(len(e.topo.GPUs)-e.allocatableGPUs, 0)
	}
	reserved := map[types.UID]bool{}
	for _, r := range assumed {
		reserved[r.UID] = true
		if _, counted := e.pods[r.UID]; !counted {
			u.GPUsInUse += r.GPUs
		}
		if _, reported := e.attachments[r.UID]; !reported {
			u.Allocations = append(u.Allocations, r.held()...)
		}
	}
	for uid, p := range e.pods {
		u.GPUsInUse += p.gpus
		if p.forged != "" {
			forged = append(forged, placement.Problem{Pods: []string{p.key}, Message: p.forged})
		}
		if _, reported := e.attachments[uid]; !reported && !reserved[uid] && p.alloc != nil {
			u.Allocations = append(u.Allocations, p.alloc.Held(p.key)...)
		}
	}
	for _, atts := range e.attachments {
		for _, a := range atts {
			u.Allocations = append(u.Allocations, a.Held())
		}
	}
	return u, forged
}
