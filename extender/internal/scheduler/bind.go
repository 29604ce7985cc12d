package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/extender/internal/state"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
)

// readTimeout bounds reading the pod again after a failed Binding, which outlives the
// scheduler's request.
const readTimeout = 30 * time.Second

// DefaultBindingInFlight is how long a Binding whose outcome is unknown may still be written:
// kube-apiserver's default --request-timeout (60 s), and some margin.
const DefaultBindingInFlight = 90 * time.Second

// Bind reserves the pod's devices on the node and binds the pod in one write, under the node's
// lock: check again, decide the devices, assume them in the store, then create the Binding with
// the allocation as its annotation (topolane.io/allocation), which the API server copies onto
// the pod as it sets the pod's node. So the reservation and the node land together or not at
// all: a second bind of the same pod (the scheduler retried after its timeout) finds the pod
// bound and fails, and a pod never runs on one node holding another node's devices. A failed
// Binding writes nothing to undo; the store's reservation is settled by what the pod shows. A
// repeated bind of a pod already bound to the node succeeds. Only pods of the schedulers the
// extender serves are bound.
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
	if err := ctx.Err(); err != nil {
		// The scheduler gave up while the bind waited for the node (and may bind the pod elsewhere).
		return x.bindFailed("error", fmt.Errorf("binding pod %s/%s to %s: %w", pod.Namespace, pod.Name, args.Node, err))
	}
	r, err := x.reserve(pod, args.Node)
	if err != nil {
		return x.bindFailed("conflict", err)
	}
	if err := x.bindPod(ctx, pod, args.Node, r); err != nil {
		return x.bindFailed("error", err)
	}
	logger.V(2).Info("Bound", "reservation", r)
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

// reserve decides the pod's devices on the node and assumes them in the store, so that binds
// and filters that follow see them taken. It returns nil for a pod topolane gives nothing to,
// with or without a topology. An allocation the pod already carries (left by an earlier
// version's failed release) is not kept: the pod's own usage is left out of the node's view,
// and the Binding's annotation replaces it.
func (x *Extender) reserve(pod *corev1.Pod, node string) (*state.Reservation, error) {
	req, err := x.request(pod)
	if err != nil {
		return nil, fmt.Errorf("%w: pod %s/%s: %v", ErrBadRequest, pod.Namespace, pod.Name, err)
	}
	if !acts(req) {
		return nil, nil
	}
	view := x.store.NodeWithout(node, pod.UID)
	shape := x.shapeFor(req, []string{node}, ownView{node: node, view: view})
	v := verdictOf(view, node, shape)
	if !v.Fits {
		return nil, fmt.Errorf("%w: node %s can no longer take the pod: %s", ErrConflict, node, v.Reason)
	}
	choices, err := view.Summary.Plan(shape.Request, v.Need, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConflict, err)
	}
	r := x.store.Reserve(reservation(pod, req.GPUs, v1alpha1.AllocationOf(node, pod.UID, choices)))
	return &r, nil
}

func reservation(pod *corev1.Pod, gpus int, a v1alpha1.Allocation) state.Reservation {
	return state.Reservation{UID: pod.UID, Pod: pod.Namespace + "/" + pod.Name, GPUs: gpus, Allocation: a, ResourceVersion: pod.ResourceVersion}
}

// bindPod creates the pod's Binding, carrying the reservation's allocation, on the condition
// that the pod is still the one read (its UID). After a failure it reads the pod once, with a
// context of its own, and settles the reservation by what the pod shows: the Binding may have
// gone through with its answer lost (often because the scheduler's request ended, its extender
// timeout), or another bind of the pod went through first.
func (x *Extender) bindPod(ctx context.Context, pod *corev1.Pod, node string, r *state.Reservation) error {
	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}
	if r != nil {
		binding.Annotations = map[string]string{v1alpha1.AnnotationAllocation: r.Allocation.String()}
	}
	err := x.client.CoreV1().Pods(pod.Namespace).Bind(ctx, binding, metav1.CreateOptions{})
	if err == nil {
		return nil
	}
	err = fmt.Errorf("binding pod %s/%s to %s: %w", pod.Namespace, pod.Name, node, err)
	current, getErr := x.podOutliving(ctx, pod)
	if getErr == nil && current.UID != pod.UID {
		current, getErr = nil, apierrors.NewNotFound(corev1.Resource("pods"), pod.Name) // replaced by a pod of the same name
	}
	if r != nil {
		x.settle(*r, current, getErr, err)
	}
	switch {
	case getErr != nil:
		return fmt.Errorf("%w (and reading it again: %v)", err, getErr)
	case current.Spec.NodeName == node:
		return nil // it went through, its answer lost; or another bind put it here
	}
	return err
}

// settle decides what becomes of the reservation of a bind whose Binding failed (bindErr), by
// the pod as read again. Bound with this reservation's allocation, the Binding went through, its
// answer lost: it stays until the pod informer shows the pod. Otherwise it goes: at once if the
// Binding certainly did not land (the pod is gone or bound without it, or the API server refused
// the Binding); else (no answer, or a server error: the Binding may still be being written) once
// no Binding can still be in flight. Another bind's reservation of the pod, on its own node, is
// that bind's.
func (x *Extender) settle(r state.Reservation, current *corev1.Pod, getErr, bindErr error) {
	switch {
	case apierrors.IsNotFound(getErr):
		x.store.Release(r)
	case getErr != nil:
		x.releaseLater(r)
	case current.Spec.NodeName != "":
		if current.Annotations[v1alpha1.AnnotationAllocation] != r.Allocation.String() {
			x.store.Release(r)
		}
	case refused(bindErr):
		x.store.Release(r)
	default:
		x.releaseLater(r)
	}
}

// releaseLater releases r once no Binding of its bind can still be in flight; by then, one that
// landed has been shown by the pod informer, which ended the reservation.
func (x *Extender) releaseLater(r state.Reservation) {
	time.AfterFunc(x.cfg.bindingInFlight(), func() { x.store.Release(r) })
}

// refused reports whether the API server answered with a refusal (a 4xx status), which writes
// nothing. Without an answer, or with a server error or timeout, the write may still land.
func refused(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false
	}
	code := status.Status().Code
	return code >= 400 && code < 500
}

// podOutliving reads the pod with a context that outlives the scheduler's request.
func (x *Extender) podOutliving(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readTimeout)
	defer cancel()
	return x.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
}
