package state

import (
	corev1 "k8s.io/api/core/v1"
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

// placedOn returns the node a pod counts on, if any: where it is bound, or, before binding,
// where the extender reserved a device for it. Finished pods hold nothing.
func placedOn(pod *corev1.Pod) (node string, alloc *v1alpha1.Allocation) {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return "", nil
	}
	if s, ok := pod.Annotations[v1alpha1.AnnotationAllocation]; ok {
		a, err := v1alpha1.ParseAllocation(s)
		if err != nil {
			klog.InfoS("Ignoring a pod's allocation annotation", "pod", klog.KObj(pod), "err", err)
		} else if pod.Spec.NodeName == "" || pod.Spec.NodeName == a.Node {
			alloc = &a
		}
	}
	switch {
	case pod.Spec.NodeName != "":
		return pod.Spec.NodeName, alloc
	case alloc != nil:
		return alloc.Node, alloc
	}
	return "", nil
}

// StripPod keeps what the store reads of a pod, so that 40,000 cached pods stay small. Use it
// as the pod informer's transform.
func StripPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	stripped := &corev1.Pod{}
	stripped.Name, stripped.Namespace, stripped.UID = pod.Name, pod.Namespace, pod.UID
	stripped.ResourceVersion = pod.ResourceVersion
	if a, ok := pod.Annotations[v1alpha1.AnnotationAllocation]; ok {
		stripped.Annotations = map[string]string{v1alpha1.AnnotationAllocation: a}
	}
	stripped.Spec.NodeName = pod.Spec.NodeName
	stripped.Spec.Containers = stripContainers(pod.Spec.Containers)
	stripped.Spec.InitContainers = stripContainers(pod.Spec.InitContainers)
	stripped.Status.Phase = pod.Status.Phase
	return stripped, nil
}

func stripContainers(cs []corev1.Container) []corev1.Container {
	out := make([]corev1.Container, 0, len(cs))
	for _, c := range cs {
		if len(c.Resources.Limits) > 0 || len(c.Resources.Requests) > 0 {
			out = append(out, corev1.Container{Resources: c.Resources})
		}
	}
	return out
}
