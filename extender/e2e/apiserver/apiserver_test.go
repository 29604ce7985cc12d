package apiserver

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	kubeapiservertesting "k8s.io/kubernetes/cmd/kube-apiserver/app/testing"
	"k8s.io/kubernetes/test/integration/framework"

	"github.com/topolane/topolane/extender/e2e/kubesched"
	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
	"github.com/topolane/topolane/topology/topologytest"
)

const (
	crdPath = "../../../charts/topolane/crds/nodetopologies.topolane.io.yaml"
	ns      = "training"
)

type cluster struct {
	cfg    *rest.Config
	client kubernetes.Interface
	dyn    dynamic.Interface
}

// startAPIServer runs a kube-apiserver with CRDs. ServiceAccount admission is off: no
// controller-manager makes the default service account here.
func startAPIServer(t *testing.T, ctx context.Context) cluster {
	server := kubeapiservertesting.StartTestServerOrDie(t, kubeapiservertesting.NewDefaultTestServerOptions(),
		[]string{"--disable-admission-plugins=ServiceAccount,TaintNodesByCondition,Priority"}, framework.SharedEtcd())
	t.Cleanup(server.TearDownFn)
	c := cluster{cfg: server.ClientConfig, client: kubernetes.NewForConfigOrDie(server.ClientConfig), dyn: dynamic.NewForConfigOrDie(server.ClientConfig)}
	if _, err := c.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOnRealAPIServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startAPIServer(t, ctx)
	installCRD(t, ctx, c.cfg)
	topologies := c.dyn.Resource(v1alpha1.GroupVersionResource)

	bad := extendertest.Topology("bad", topologytest.NoSRIOV())
	bad.Status.Topology.Levels.Set("0000:43:00.0", "0000:45:00.0", 77) // not a level
	badU, _ := v1alpha1.ToUnstructured(bad)
	if _, err := topologies.Create(ctx, badU, metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "should match") {
		t.Errorf("the CRD schema should refuse an unknown level: %v", err)
	}
	for _, nt := range []*v1alpha1.NodeTopology{extendertest.EveryPFShared("dgx-shared"), extendertest.Topology("dgx-free", topologytest.DGXH100())} {
		u, _ := v1alpha1.ToUnstructured(nt)
		if _, err := topologies.Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("the API server refuses NodeTopology %s: %v", nt.Name, err)
		}
		createNode(t, ctx, c.client, nt.Name, nt.Status.GPUs)
	}
	checkPrinterColumns(t, ctx, c.client)

	url := startExtender(t, ctx, c)
	if err := kubesched.Start(ctx, c.client, url, "topolane-scheduler"); err != nil {
		t.Fatal(err)
	}
	pod := extendertest.Pod(ns, "train-0", 8)
	pod.UID = ""
	if _, err := c.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bound := waitBound(t, ctx, c.client, pod.Name)
	a, err := v1alpha1.ParseAllocation(bound.Annotations[v1alpha1.AnnotationAllocation])
	if bound.Spec.NodeName != "dgx-free" || err != nil || len(a.Devices) != 8 || a.Devices[7].Kind != placement.KindPF || a.Node != "dgx-free" {
		t.Errorf("pod on %q with allocation %q (%v), want a whole PF on dgx-free", bound.Spec.NodeName, bound.Annotations[v1alpha1.AnnotationAllocation], err)
	}
}
