package state

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2"

	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
)

// DefaultGPUResources are the extended resources counted as GPUs.
var DefaultGPUResources = []corev1.ResourceName{"nvidia.com/gpu"}

// PodGPUs is how many GPUs a pod asks for: its containers' sum, or its largest init container
// if that is more, as the scheduler counts.
func PodGPUs(pod *corev1.Pod, resources []corev1.ResourceName) int {
	sum, initMax := 0, 0
	for _, c := range pod.Spec.Containers {
		sum += containerGPUs(c, resources)
	}
	for _, c := range pod.Spec.InitContainers {
		initMax = max(initMax, containerGPUs(c, resources))
	}
	return max(sum, initMax)
}

func containerGPUs(c corev1.Container, resources []corev1.ResourceName) int {
	n := 0
	for _, r := range resources {
		q, ok := c.Resources.Limits[r]
		if !ok {
			q = c.Resources.Requests[r]
		}
		n += int(q.Value())
	}
	return n
}

// podUse is what a pod holds on a node.
type podUse struct {
	key   string // namespace/name
	gpus  int
	alloc *placement.Allocation
}

// PodInfo is the little of a pod the store reads. The pod informer caches these instead of
// Pods (see TransformPod), so that 40,000 cached pods stay small.
type PodInfo struct {
	metav1.TypeMeta
	// ObjectMeta keeps the name, namespace, UID, resource version and the allocation annotation.
	metav1.ObjectMeta
	NodeName string
	GPUs     int
	Finished bool // Succeeded or Failed: it holds nothing
}

// DeepCopyObject implements runtime.Object.
func (p *PodInfo) DeepCopyObject() runtime.Object {
	c := *p
	p.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	return &c
}

// NewPodInfo keeps what the store needs of a pod.
func NewPodInfo(pod *corev1.Pod, gpuResources []corev1.ResourceName) *PodInfo {
	info := &PodInfo{NodeName: pod.Spec.NodeName, GPUs: PodGPUs(pod, gpuResources),
		Finished: pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed}
	info.Name, info.Namespace, info.UID, info.ResourceVersion = pod.Name, pod.Namespace, pod.UID, pod.ResourceVersion
	if a, ok := pod.Annotations[v1alpha1.AnnotationAllocation]; ok {
		info.Annotations = map[string]string{v1alpha1.AnnotationAllocation: a}
	}
	return info
}

// TransformPod is the pod informer's transform: Pods in, PodInfos out.
func (s *Store) TransformPod(obj any) (any, error) {
	if pod, ok := obj.(*corev1.Pod); ok {
		return NewPodInfo(pod, s.gpuResources), nil
	}
	return obj, nil
}

// placedOn returns the node a pod counts on, if any: where it is bound, or, before binding,
// where the extender reserved a device for it. Finished pods hold nothing.
func placedOn(pod *PodInfo) (node string, alloc *v1alpha1.Allocation) {
	if pod.Finished {
		return "", nil
	}
	if s, ok := pod.Annotations[v1alpha1.AnnotationAllocation]; ok {
		a, err := v1alpha1.ParseAllocation(s)
		if err != nil {
			klog.InfoS("Ignoring a pod's allocation annotation", "pod", klog.KObj(pod), "err", err)
		} else if pod.NodeName == "" || pod.NodeName == a.Node {
			alloc = &a
		}
	}
	switch {
	case pod.NodeName != "":
		return pod.NodeName, alloc
	case alloc != nil:
		return alloc.Node, alloc
	}
	return "", nil
}
