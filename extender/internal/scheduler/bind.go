package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
)

// Bind reserves the device for the pod on the node and binds the pod, under the node's lock:
// check again, record the reservation on the pod (topolane.io/allocation), then create the
// Binding. On any failure the reservation is released. A repeated bind of a pod already bound
// to the node succeeds.
func (x *Extender) Bind(ctx context.Context, args *extenderv1.ExtenderBindingArgs) error {
	logger := klog.FromContext(ctx).WithValues("pod", klog.KRef(args.PodNamespace, args.PodName), "node", args.Node)
	pod, err := x.client.CoreV1().Pods(args.PodNamespace).Get(ctx, args.PodName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err) || (err == nil && args.PodUID != "" && pod.UID != args.PodUID):
		return x.bindFailed("not_found", fmt.Errorf("%w: pod %s/%s (uid %s) does not exist", ErrNotFound, args.PodNamespace, args.PodName, args.PodUID))
	case err != nil:
		return x.bindFailed("error", fmt.Errorf("reading pod %s/%s: %w", args.PodNamespace, args.PodName, err))
	case pod.Spec.NodeName == args.Node:
		x.metrics.binds.WithLabelValues("repeated").Inc()
		return nil
	case pod.Spec.NodeName != "":
		return x.bindFailed("conflict", fmt.Errorf("%w: pod %s/%s is already bound to %s", ErrConflict, pod.Namespace, pod.Name, pod.Spec.NodeName))
	}
	unlock := x.store.LockNode(args.Node)
	defer unlock()
	alloc, err := x.reserve(ctx, pod, args.Node)
	if err != nil {
		return x.bindFailed("conflict", err)
	}
	if err := x.bindPod(ctx, pod, args.Node); err != nil {
		x.release(ctx, pod, alloc)
		return x.bindFailed("error", err)
	}
	logger.V(2).Info("Bound", "allocation", alloc)
	x.metrics.binds.WithLabelValues("ok").Inc()
	return nil
}

func (x *Extender) bindFailed(result string, err error) error {
	x.metrics.binds.WithLabelValues(result).Inc()
	return err
}

// reserve decides the device and records it on the pod and in the store. A pod that already
// carries a reservation for this node (an earlier bind whose reply was lost) keeps it.
func (x *Extender) reserve(ctx context.Context, pod *corev1.Pod, node string) (*v1alpha1.Allocation, error) {
	if a, err := v1alpha1.ParseAllocation(pod.Annotations[v1alpha1.AnnotationAllocation]); err == nil && a.Node == node {
		return &a, nil
	}
	req, err := x.request(pod)
	if err != nil {
		return nil, fmt.Errorf("%w: pod %s/%s: %v", ErrBadRequest, pod.Namespace, pod.Name, err)
	}
	choice, need, err := x.choose(node, req)
	if err != nil || need == placement.NeedNothing {
		return nil, err
	}
	alloc := &v1alpha1.Allocation{Node: node, Kind: choice.Kind, NIC: choice.NIC, Device: choice.Device}
	if err := x.annotate(ctx, pod, alloc); err != nil {
		return nil, err
	}
	return alloc, nil
}

// choose checks the node again against the ledger and picks the device, from one view of the
// node: the store may replace its summary meanwhile, even with none.
func (x *Extender) choose(node string, req placement.Request) (placement.Choice, placement.Need, error) {
	view := x.store.Node(node)
	v, err := verdictOf(view, node, req)
	if err != nil {
		return placement.Choice{}, 0, err
	}
	if !v.Fits && v.Code == placement.CodeNoFreePF && x.cfg.NoPF == NoPFFallbackVF && req.Mode == placement.ModeAuto {
		req.Mode = placement.ModeVF
		v, _ = verdictOf(view, node, req)
	}
	if !v.Fits {
		return placement.Choice{}, 0, fmt.Errorf("%w: node %s can no longer take the pod: %s", ErrConflict, node, v.Reason)
	}
	if v.Need == placement.NeedNothing {
		return placement.Choice{}, v.Need, nil
	}
	c, err := view.Summary.Choose(v.Need, nil)
	if err != nil {
		return c, v.Need, fmt.Errorf("%w: %v", ErrConflict, err)
	}
	return c, v.Need, nil
}

// annotate writes the reservation on the pod, then counts it in the store at once so that
// filters running before the pod informer catches up see the device taken.
func (x *Extender) annotate(ctx context.Context, pod *corev1.Pod, alloc *v1alpha1.Allocation) error {
	var value any
	if alloc != nil {
		value = alloc.String()
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{v1alpha1.AnnotationAllocation: value}}})
	updated, err := x.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("recording the reservation on pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	x.store.SetPod(updated)
	return nil
}

func (x *Extender) bindPod(ctx context.Context, pod *corev1.Pod, node string) error {
	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}
	err := x.client.CoreV1().Pods(pod.Namespace).Bind(ctx, binding, metav1.CreateOptions{})
	if err == nil {
		return nil
	}
	if current, getErr := x.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{}); getErr == nil && current.Spec.NodeName == node {
		return nil // an earlier attempt went through
	}
	return fmt.Errorf("binding pod %s/%s to %s: %w", pod.Namespace, pod.Name, node, err)
}

// release undoes a reservation whose binding failed. If the annotation cannot be removed the
// device stays reserved for the pod, which is safe: it is released when the pod is bound
// elsewhere (a new reservation replaces it) or deleted.
func (x *Extender) release(ctx context.Context, pod *corev1.Pod, alloc *v1alpha1.Allocation) {
	if alloc == nil {
		return
	}
	if err := x.annotate(ctx, pod, nil); err != nil {
		klog.FromContext(ctx).Error(errors.Unwrap(err), "Could not release a reservation; it stays until the pod is bound or deleted",
			"pod", klog.KObj(pod), "allocation", alloc)
	}
}
