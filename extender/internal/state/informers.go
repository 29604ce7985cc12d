package state

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
)

// Watch feeds the store from informers on Nodes, Pods and NodeTopologies until ctx ends. The
// returned function reports whether the store has taken in everything the first lists held
// (the handlers' registrations have synced, not merely the informers' caches): before that the
// store may miss reservations and topologies, so the verbs must not answer.
func Watch(ctx context.Context, s *Store, client kubernetes.Interface, dyn dynamic.Interface) (synced func() bool, err error) {
	factory := informers.NewSharedInformerFactory(client, 0)
	nodes := factory.Core().V1().Nodes().Informer()
	if err := nodes.SetTransform(s.TransformNode); err != nil {
		return nil, fmt.Errorf("setting the node transform: %w", err)
	}
	pods := factory.Core().V1().Pods().Informer()
	if err := pods.SetTransform(s.TransformPod); err != nil {
		return nil, fmt.Errorf("setting the pod transform: %w", err)
	}
	topos := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0).ForResource(v1alpha1.GroupVersionResource).Informer()
	if err := topos.SetTransform(TransformTopology); err != nil {
		return nil, fmt.Errorf("setting the NodeTopology transform: %w", err)
	}
	var regs []cache.ResourceEventHandlerRegistration
	for _, reg := range []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{{nodes, nodeHandler(s)}, {pods, podHandler(s)}, {topos, topologyHandler(s)}} {
		r, err := reg.inf.AddEventHandler(reg.h)
		if err != nil {
			return nil, fmt.Errorf("adding an event handler: %w", err)
		}
		regs = append(regs, r)
	}
	factory.Start(ctx.Done())
	go topos.Run(ctx.Done())
	return func() bool {
		for _, r := range regs {
			if !r.HasSynced() {
				return false
			}
		}
		return true
	}, nil
}

// WaitForSync blocks until synced reports true or the timeout passes.
func WaitForSync(ctx context.Context, synced func() bool, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return cache.WaitForCacheSync(ctx.Done(), synced)
}

// tombstone unwraps the object of a delete event that the informer missed.
func tombstone(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}

// handler turns informer events on objects of type T into store calls; anything else (the
// informer hands only T, or a tombstone holding one) is ignored.
func handler[T any](set, del func(T)) cache.ResourceEventHandler {
	call := func(fn func(T), obj any) {
		if o, ok := tombstone(obj).(T); ok {
			fn(o)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { call(set, obj) },
		UpdateFunc: func(_, obj any) { call(set, obj) },
		DeleteFunc: func(obj any) { call(del, obj) },
	}
}

func nodeHandler(s *Store) cache.ResourceEventHandler {
	return handler(s.SetNodeInfo, func(n *NodeInfo) { s.DeleteNode(n.Name) })
}

func podHandler(s *Store) cache.ResourceEventHandler {
	return handler(s.SetPodInfo, func(p *PodInfo) { s.DeletePod(p.UID) })
}

func topologyHandler(s *Store) cache.ResourceEventHandler {
	return handler(func(t *TopologyInfo) { s.SetTopologyInfo(t) }, func(t *TopologyInfo) { s.DeleteTopology(t.Name) })
}

// NodeInfo is what the Node informer caches: the name and the GPUs allocatable, all the store
// reads of a Node. A kubelet's Node (its images, conditions, managed fields) is kilobytes, and
// the extender would otherwise cache thousands.
type NodeInfo struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	// AllocatableGPUs is the sum of the GPU resources' allocatable, or -1 when the Node lists
	// none of them.
	AllocatableGPUs int
}

// DeepCopyObject implements runtime.Object.
func (n *NodeInfo) DeepCopyObject() runtime.Object {
	c := *n
	n.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	return &c
}

// NewNodeInfo keeps what the store needs of a Node.
func NewNodeInfo(n *corev1.Node, gpuResources []corev1.ResourceName) *NodeInfo {
	info := &NodeInfo{AllocatableGPUs: -1}
	info.Name, info.UID, info.ResourceVersion = n.Name, n.UID, n.ResourceVersion
	for _, r := range gpuResources {
		if q, ok := n.Status.Allocatable[r]; ok {
			info.AllocatableGPUs = max(info.AllocatableGPUs, 0) + int(q.Value())
		}
	}
	return info
}

// TransformNode is the Node informer's transform: Nodes in, NodeInfos out.
func (s *Store) TransformNode(obj any) (any, error) {
	if n, ok := obj.(*corev1.Node); ok {
		return NewNodeInfo(n, s.gpuResources), nil
	}
	return obj, nil
}

// TopologyInfo is what the NodeTopology informer caches: the node's topology decoded once (its
// dense levels, not the unstructured maps a dynamic informer would keep, ten times the size),
// shared with the store, or why it cannot be used. Its parts are shared with other nodes'
// topologies where they are equal (see share).
type TopologyInfo struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	Topology    *topology.Node
	Attachments []v1alpha1.Attachment
	Problem     string
	shared      sharedParts // keeps the shared parts alive while this topology uses them
}

// DeepCopyObject implements runtime.Object. The topology is shared: nothing changes it once
// decoded.
func (t *TopologyInfo) DeepCopyObject() runtime.Object {
	c := *t
	t.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	c.Attachments = slices.Clone(t.Attachments)
	return &c
}

// TransformTopology is the NodeTopology informer's transform: unstructured in, TopologyInfo out.
func TransformTopology(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil
	}
	info := &TopologyInfo{}
	info.Name, info.UID, info.ResourceVersion = u.GetName(), u.GetUID(), u.GetResourceVersion()
	nt, err := v1alpha1.FromUnstructured(u)
	if err != nil {
		klog.ErrorS(err, "Unusable NodeTopology; its node will reject GPU pods", "node", u.GetName())
		info.Problem = err.Error()
		return info, nil
	}
	info.Topology, info.Attachments = &nt.Status.Topology, nt.Status.Attachments
	info.shared = share(info.Topology)
	return info, nil
}
