package extendertest

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/topolane/topolane/topology/apis/v1alpha1"
)

// BindLikeTheAPIServer makes the fake clientset's pods/binding act as the API server's; the fake
// alone records the action and nothing else.
func BindLikeTheAPIServer(client *fake.Clientset) {
	client.PrependReactor("create", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() != "binding" {
			return false, nil, nil
		}
		b := action.(k8stesting.CreateAction).GetObject().(*corev1.Binding)
		return true, b, ApplyBinding(client, b)
	})
}

// Binding is the Binding of a pod (its UID as the precondition) to a node, carrying an
// allocation as the extender's bind does; allocation "" carries none.
func Binding(namespace, name string, uid types.UID, node, allocation string) *corev1.Binding {
	b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, UID: uid},
		Target: corev1.ObjectReference{Kind: "Node", Name: node}}
	if allocation != "" {
		b.Annotations = map[string]string{v1alpha1.AnnotationAllocation: allocation}
	}
	return b
}

// ApplyBinding does to the fake's pod what the API server does for a Binding: checks its
// preconditions (UID, resourceVersion) and that the pod is unbound, sets its node and copies the
// Binding's annotations onto it. It uses the fake's tracker, not its client, so reactors (which
// run under the fake's lock) may call it.
func ApplyBinding(client *fake.Clientset, b *corev1.Binding) error {
	gvr := corev1.SchemeGroupVersion.WithResource("pods")
	obj, err := client.Tracker().Get(gvr, b.Namespace, b.Name)
	if err != nil {
		return err
	}
	pod := obj.(*corev1.Pod).DeepCopy()
	conflict := func(why string, args ...any) error {
		return apierrors.NewConflict(schema.GroupResource{Resource: "pods/binding"}, pod.Name, fmt.Errorf(why, args...))
	}
	switch {
	case b.UID != "" && b.UID != pod.UID:
		return conflict("the pod's UID is %s, not %s", pod.UID, b.UID)
	case b.ResourceVersion != "" && b.ResourceVersion != pod.ResourceVersion:
		return conflict("the pod is at resourceVersion %q, not %q", pod.ResourceVersion, b.ResourceVersion)
	case pod.Spec.NodeName != "":
		return conflict("pod %s is already assigned to node %q", pod.Name, pod.Spec.NodeName)
	}
	pod.Spec.NodeName = b.Target.Name
	for k, v := range b.Annotations {
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[k] = v
	}
	return client.Tracker().Update(gvr, pod, b.Namespace)
}

// DynamicClient is a fake dynamic client that lists NodeTopologies, as the extender's and the
// agent's NodeTopology code needs.
func DynamicClient() *dynamicfake.FakeDynamicClient {
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.GroupVersionResource: v1alpha1.Kind + "List"})
}
