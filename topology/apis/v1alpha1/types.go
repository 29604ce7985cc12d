// Package v1alpha1 is topolane's Kubernetes API: the NodeTopology resource the agent publishes
// and the pod annotations the extender and the agent exchange. Read through a dynamic informer
// and converted here (see FromUnstructured), so no generated clientset is needed.
package v1alpha1

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/placement"
)

const (
	Group    = "topolane.io"
	Version  = "v1alpha1"
	Kind     = "NodeTopology"
	Resource = "nodetopologies"
)

// GroupVersionResource names NodeTopology for dynamic clients and informers.
var GroupVersionResource = schema.GroupVersionResource{Group: Group, Version: Version, Resource: Resource}

// NodeTopology is one node's topology and what is bound on it, written by that node's agent.
// It is cluster-scoped, named after the node and owned by the Node object.
type NodeTopology struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Status            NodeTopologyStatus `json:"status,omitempty"`
}

// NodeTopologyStatus is what the agent found and did.
type NodeTopologyStatus struct {
	// SchemaVersion is topology.SchemaVersion of the writer; readers refuse others.
	SchemaVersion int           `json:"schemaVersion"`
	Topology      topology.Node `json:"topology"`
	// Attachments are the devices the agent has bound into pods. They override the extender's
	// reservation for the same pod: the agent may bind an equivalent nearer device.
	Attachments []Attachment `json:"attachments,omitempty"`
	// Counts shown by `kubectl get nodetopologies`.
	GPUs      int `json:"gpus"`
	Rails     int `json:"rails"`
	RailsFree int `json:"railsFree"` // rails whose NIC can be given whole
	PFsFree   int `json:"pfsFree"`
	VFsFree   int `json:"vfsFree"`
}

// Attachment is a device bound into a pod; a pod with several rails has one per device.
type Attachment struct {
	Pod    string         `json:"pod"` // namespace/name
	PodUID types.UID      `json:"podUID"`
	Kind   placement.Kind `json:"kind"`
	NIC    string         `json:"nic"`
	Device string         `json:"device"`
	// Rail is the index of the rail the device serves; -1 for topolane.io/nics: one.
	Rail      int    `json:"rail"`
	Interface string `json:"interface,omitempty"` // its name in the pod
	// GPUs are the pod's GPUs the device serves, as kubelet gave them (PCI addresses).
	GPUs []string `json:"gpus,omitempty"`
}

// Held is what the attachment holds, for placement.Usage.
func (a Attachment) Held() placement.Allocation {
	return placement.Allocation{Pod: a.Pod, Kind: a.Kind, NIC: a.NIC, Device: a.Device, GPUs: a.GPUs}
}

// NodeTopologyList is a list of NodeTopology.
type NodeTopologyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodeTopology `json:"items"`
}

// DeepCopyObject implements runtime.Object.
func (n *NodeTopology) DeepCopyObject() runtime.Object { return n.DeepCopy() }

// DeepCopy copies everything, the topology included.
func (n *NodeTopology) DeepCopy() *NodeTopology {
	if n == nil {
		return nil
	}
	c := *n
	n.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	c.Status.Topology = *n.Status.Topology.DeepCopy()
	c.Status.Attachments = append([]Attachment(nil), n.Status.Attachments...)
	for i := range c.Status.Attachments {
		c.Status.Attachments[i].GPUs = slices.Clone(c.Status.Attachments[i].GPUs)
	}
	return &c
}

// DeepCopyObject implements runtime.Object.
func (l *NodeTopologyList) DeepCopyObject() runtime.Object {
	c := *l
	l.ListMeta.DeepCopyInto(&c.ListMeta)
	c.Items = make([]NodeTopology, len(l.Items))
	for i := range l.Items {
		c.Items[i] = *l.Items[i].DeepCopy()
	}
	return &c
}

// NodeTopologyOf is the NodeTopology of a node with these attachments, its counts filled in.
// Attachments that do not fit the topology are published as they are and counted for nothing.
func NodeTopologyOf(n *topology.Node, attachments []Attachment) *NodeTopology {
	held := make([]placement.Allocation, len(attachments))
	for i, a := range attachments {
		held[i] = a.Held()
	}
	s := placement.Summarize(n, placement.Usage{Allocations: held}, placement.DefaultWeights)
	return &NodeTopology{
		TypeMeta:   metav1.TypeMeta{APIVersion: Group + "/" + Version, Kind: Kind},
		ObjectMeta: metav1.ObjectMeta{Name: n.Name},
		Status: NodeTopologyStatus{SchemaVersion: topology.SchemaVersion, Topology: *n, Attachments: attachments,
			GPUs: len(n.GPUs), Rails: len(n.Rails), RailsFree: s.RailsWhole(), PFsFree: s.FreePFs(), VFsFree: s.FreeVFs()},
	}
}
