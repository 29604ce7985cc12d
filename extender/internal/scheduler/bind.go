package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/extender/internal/state"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
)

// releaseTimeout bounds undoing a reservation, which outlives the scheduler's request.
const releaseTimeout = 30 * time.Second

// Bind reserves the pod's devices on the node and binds the pod, under the node's lock: check
// again, record the reservation on the pod (topolane.io/allocation), then create the Binding,
// on the condition that the pod is still as the reservation left it (its resourceVersion): a
// second bind of the same pod to another node (the scheduler retried after its timeout) that
// wrote its own reservation in between makes this Binding fail, so a pod is never bound to one
// node holding another node's devices. On any failure the reservation is released. A repeated
// bind of a pod already bound to the node succeeds. Only pods of the schedulers the extender
// serves are bound.
func (x *Extender) Bind(ctx context.Context, args *extenderv1.ExtenderBindingArgs) error {
	logger := klog.FromContext(ctx).WithValues("pod", klog.KRef(args.PodNamespace, args.PodName), "node", args.Node)
	pod, err := x.client.CoreV1().Pods(args.PodNamespace).Get(ctx, args.PodName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err) || (err == nil && args.PodUID != "" && pod.UID != args.PodUID):
		return x.bindFailed("not_found", fmt.Errorf("%w: pod %s/%s (uid %s) does not exist", ErrNotFound, args.PodNamespace, args.PodName, args.PodUID))
	case err != nil:
		return x.bindFailed("error", fmt.Errorf("reading pod %s/%s: %w", args.PodNamespace, args.PodName, err))
	case !x.cfg.serves(pod.Spec.SchedulerName):
		return x.bindFailed("forbidden", fmt.Errorf("%w: pod %s/%s is for scheduler %q; this extender binds pods of %s only (--scheduler-names)",
			ErrForbidden, pod.Namespace, pod.Name, pod.Spec.SchedulerName, x.served()))
	case pod.Spec.NodeName == args.Node:
		x.metrics.binds.WithLabelValues("repeated").Inc()
		return nil
	case pod.Spec.NodeName != "":
		return x.bindFailed("conflict", fmt.Errorf("%w: pod %s/%s is already bound to %s", ErrConflict, pod.Namespace, pod.Name, pod.Spec.NodeName))
	}
	unlock := x.store.LockNode(args.Node)
	defer unlock()
	alloc, version, err := x.reserve(ctx, pod, args.Node)
	if err != nil {
		return x.bindFailed("conflict", err)
	}
	if err := x.bindPod(ctx, pod, args.Node, alloc, version); err != nil {
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

func (x *Extender) served() string {
	if len(x.cfg.SchedulerNames) == 0 {
		return DefaultSchedulerName
	}
	return strings.Join(x.cfg.SchedulerNames, ", ")
}

// reserve decides the devices and records them on the pod and in the ledger, returning them
// and the pod's resourceVersion that holds them. A pod that already carries its own
// reservation for this node, still free (an earlier bind whose reply was lost), keeps it. A pod
// topolane gives nothing to reserves nothing, with or without a topology.
func (x *Extender) reserve(ctx context.Context, pod *corev1.Pod, node string) (*v1alpha1.Allocation, string, error) {
	req, err := x.request(pod)
	if err != nil {
		return nil, "", fmt.Errorf("%w: pod %s/%s: %v", ErrBadRequest, pod.Namespace, pod.Name, err)
	}
	if !acts(req) {
		return nil, "", nil
	}
	view := x.store.NodeWithout(node, pod.UID)
	if a, ok := ownReservation(pod, node, view); ok {
		x.store.Reserve(reservation(pod, req.GPUs, a, pod.ResourceVersion))
		return &a, pod.ResourceVersion, nil
	}
	shape := x.shapeFor(req, []string{node}, ownView{node: node, view: view})
	v := verdictOf(view, node, shape)
	if !v.Fits {
		return nil, "", fmt.Errorf("%w: node %s can no longer take the pod: %s", ErrConflict, node, v.Reason)
	}
	choices, err := view.Summary.Plan(shape.Request, v.Need, nil)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrConflict, err)
	}
	a := v1alpha1.AllocationOf(node, pod.UID, choices)
	updated, err := x.annotate(ctx, pod, a)
	if err != nil {
		return nil, "", err
	}
	x.store.Reserve(reservation(pod, req.GPUs, a, updated.ResourceVersion))
	return &a, updated.ResourceVersion, nil
}

// ownReservation is the pod's allocation, if it is its own, for this node, and every device of it
// is still free for it.
func ownReservation(pod *corev1.Pod, node string, view state.View) (v1alpha1.Allocation, bool) {
	a, err := v1alpha1.ParseAllocation(pod.Annotations[v1alpha1.AnnotationAllocation])
	if err != nil || a.PodUID != pod.UID || a.Node != node || view.Summary == nil {
		return a, false
	}
	for _, held := range a.Held(pod.Namespace + "/" + pod.Name) {
		if !view.Summary.Available(held) {
			return a, false
		}
	}
	return a, true
}

func reservation(pod *corev1.Pod, gpus int, a v1alpha1.Allocation, rv string) state.Reservation {
	return state.Reservation{UID: pod.UID, Pod: pod.Namespace + "/" + pod.Name, GPUs: gpus, Allocation: a, ResourceVersion: rv}
}

// annotate writes the reservation on the pod while it is unbound. The patch names the pod's
// UID, so it cannot land on another pod of the same name, and its resourceVersion, so it cannot
// land on a pod another bind has bound meanwhile: on a conflict the pod is read again and, still
// unbound, patched again.
func (x *Extender) annotate(ctx context.Context, pod *corev1.Pod, a v1alpha1.Allocation) (*corev1.Pod, error) {
	for attempt := 1; ; attempt++ {
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"uid": pod.UID, "resourceVersion": pod.ResourceVersion,
			"annotations": map[string]any{v1alpha1.AnnotationAllocation: a.String()}}})
		updated, err := x.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if err == nil {
			return updated, nil
		}
		if !apierrors.IsConflict(err) || attempt == maxAttempts {
			return nil, fmt.Errorf("recording the reservation on pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		current, err := x.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		switch {
		case err != nil:
			return nil, fmt.Errorf("reading pod %s/%s again: %w", pod.Namespace, pod.Name, err)
		case current.UID != pod.UID:
			return nil, fmt.Errorf("%w: pod %s/%s (uid %s) was deleted meanwhile", ErrNotFound, pod.Namespace, pod.Name, pod.UID)
		case current.Spec.NodeName != "":
			return nil, fmt.Errorf("%w: pod %s/%s was bound to %s meanwhile", ErrConflict, pod.Namespace, pod.Name, current.Spec.NodeName)
		}
		pod = current
	}
}

// maxAttempts bounds the writes a bind retries when another writer changed the pod in between.
const maxAttempts = 3

// bindPod creates the pod's Binding. With a reservation, only while the pod is at version, the
// resourceVersion that holds it (the API server checks it as a precondition). After a failure
// it reads the pod once, with a context of its own: the Binding may have gone through with its
// answer lost (often because the scheduler's request ended, its extender timeout), and then the
// release that follows must not take the reservation of a bound pod; or something else wrote
// the pod in between, and the Binding is sent again while the pod is still unbound and still
// holds this reservation.
func (x *Extender) bindPod(ctx context.Context, pod *corev1.Pod, node string, a *v1alpha1.Allocation, version string) error {
	for attempt := 1; ; attempt++ {
		binding := &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID, ResourceVersion: version},
			Target:     corev1.ObjectReference{Kind: "Node", Name: node},
		}
		err := x.client.CoreV1().Pods(pod.Namespace).Bind(ctx, binding, metav1.CreateOptions{})
		if err == nil {
			return nil
		}
		current, getErr := x.podOutliving(ctx, pod)
		switch {
		case getErr == nil && current.Spec.NodeName == node:
			return nil // this attempt or an earlier one went through
		case getErr == nil && a != nil && apierrors.IsConflict(err) && attempt < maxAttempts && current.UID == pod.UID &&
			current.Spec.NodeName == "" && current.Annotations[v1alpha1.AnnotationAllocation] == a.String():
			version = current.ResourceVersion
		default:
			return fmt.Errorf("binding pod %s/%s to %s: %w", pod.Namespace, pod.Name, node, err)
		}
	}
}

// podOutliving reads the pod with a context that outlives the scheduler's request.
func (x *Extender) podOutliving(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	return x.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
}

// release undoes a reservation whose binding failed. It outlives the scheduler's request (which
// may be why the binding failed), and it removes the annotation only while the pod is still
// unbound and the annotation is still the one this bind wrote: a Binding whose answer was lost
// (the request cancelled while the API server wrote it) may have gone through. Until the
// annotation is gone the reservation stays assumed, and the pod informer settles it with what
// the pod holds. If the release fails the pod keeps the reservation, which is safe: it never
// counts against the pod itself, and a new bind replaces it.
func (x *Extender) release(ctx context.Context, pod *corev1.Pod, a *v1alpha1.Allocation) {
	if a == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	patch, _ := json.Marshal([]map[string]any{
		{"op": "test", "path": "/spec/nodeName", "value": nil}, // absent: not bound
		{"op": "test", "path": allocationPath, "value": a.String()},
		{"op": "remove", "path": allocationPath},
	})
	if _, err := x.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
		klog.FromContext(ctx).Error(err, "Could not release a reservation (the pod may have been bound after all); it stays on the pod until the pod is bound or deleted",
			"pod", klog.KObj(pod), "allocation", a)
		return
	}
	x.store.Release(pod.UID, *a)
}

// allocationPath is the annotation in a JSON patch ("/" escaped as "~1").
var allocationPath = "/metadata/annotations/" + strings.ReplaceAll(v1alpha1.AnnotationAllocation, "/", "~1")
