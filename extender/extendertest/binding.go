package extendertest

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/topolane/topolane/topology/apis/v1alpha1"
)

// BindLikeTheAPIServer makes the fake clientset's pods/binding set spec.nodeName (and refuse a
// pod already bound), as the API server does; the fake alone records the action and nothing else.
func BindLikeTheAPIServer(client *fake.Clientset) {
	client.PrependReactor("create", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() != "binding" {
			return false, nil, nil
		}
		// The fake's lock is held while reactors run: use its tracker, not its client.
		b := action.(k8stesting.CreateAction).GetObject().(*corev1.Binding)
		gvr := corev1.SchemeGroupVersion.WithResource("pods")
		obj, err := client.Tracker().Get(gvr, b.Namespace, b.Name)
		if err != nil {
			return true, nil, err
		}
		pod := obj.(*corev1.Pod).DeepCopy()
		if b.ResourceVersion != "" && b.ResourceVersion != pod.ResourceVersion {
			return true, nil, apierrors.NewConflict(gvr.GroupResource(), pod.Name, fmt.Errorf("the pod is at resourceVersion %q, not %q", pod.ResourceVersion, b.ResourceVersion))
		}
		if pod.Spec.NodeName != "" {
			return true, nil, fmt.Errorf("pod %s/%s is already bound to %s", pod.Namespace, pod.Name, pod.Spec.NodeName)
		}
		pod.Spec.NodeName = b.Target.Name
		return true, b, client.Tracker().Update(gvr, pod, b.Namespace)
	})
}

// DynamicClient is a fake dynamic client that lists NodeTopologies, as the extender's and the
// agent's NodeTopology code needs.
func DynamicClient() *dynamicfake.FakeDynamicClient {
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{v1alpha1.GroupVersionResource: v1alpha1.Kind + "List"})
}
