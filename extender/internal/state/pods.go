package state

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/topolane/topolane/topology/apis/v1alpha1"
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
	key      string // namespace/name
	rv       string // the resource version it was read at
	gpus     int
	priority int32
	alloc    *v1alpha1.Allocation // nil when it has none, or one that does not count
	forged   string               // why its allocation annotation does not count
}

// PodInfo is the little of a pod the store reads. The pod informer caches these instead of
// Pods (see TransformPod), so that 40,000 cached pods stay small.
type PodInfo struct {
	metav1.TypeMeta
	// ObjectMeta keeps the name, namespace, UID, resource version and the allocation annotation.
	metav1.ObjectMeta
	NodeName string
	GPUs     int
	Priority int32
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
	if pod.Spec.Priority != nil {
		info.Priority = *pod.Spec.Priority
	}
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

// usageOf is what a pod holds and the node it counts on, if any: where it is bound, or, before
// binding, where its allocation reserved devices. Finished pods hold nothing. An allocation
// counts only when it is the pod's own (its UID) and for the node the pod is on.
func usageOf(pod *PodInfo) (podUse, string) {
	use := podUse{key: pod.Namespace + "/" + pod.Name, rv: pod.ResourceVersion, gpus: pod.GPUs, priority: pod.Priority}
	if pod.Finished {
		return use, ""
	}
	if s, ok := pod.Annotations[v1alpha1.AnnotationAllocation]; ok {
		a, err := v1alpha1.ParseAllocation(s)
		switch {
		case err != nil:
			use.forged = fmt.Sprintf("pod %s: %v: ignored", use.key, err)
		case a.PodUID != pod.UID:
			use.forged = fmt.Sprintf("pod %s carries an allocation of pod UID %s, not its own (%s; copied from another pod?): ignored", use.key, a.PodUID, pod.UID)
		case pod.NodeName != "" && pod.NodeName != a.Node:
			use.forged = fmt.Sprintf("pod %s runs on %s but its allocation is for %s: ignored", use.key, pod.NodeName, a.Node)
		default:
			use.alloc = &a
		}
	}
	switch {
	case pod.NodeName != "":
		return use, pod.NodeName
	case use.alloc != nil:
		return use, use.alloc.Node
	case use.forged != "":
		// Not placed: it holds nothing, but the node it names shows the problem.
		use.gpus = 0
		if a, err := v1alpha1.ParseAllocation(pod.Annotations[v1alpha1.AnnotationAllocation]); err == nil {
			return use, a.Node
		}
	}
	return use, ""
}
