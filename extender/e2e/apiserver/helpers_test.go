package apiserver

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/topolane/topolane/extender/embedded"
	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
)

// installCRD creates the chart's CRD and waits until the API serves it.
func installCRD(t *testing.T, ctx context.Context, cfg *rest.Config) {
	t.Helper()
	data, err := os.ReadFile(crdPath)
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &crd); err != nil {
		t.Fatalf("%s: %v", crdPath, err)
	}
	client := apiextensions.NewForConfigOrDie(cfg).ApiextensionsV1().CustomResourceDefinitions()
	if _, err := client.Create(ctx, &crd, metav1.CreateOptions{}); err != nil {
		t.Fatalf("the API server refuses %s: %v", crdPath, err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := client.Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("CRD not established: %v", err)
	}
	// Discovery lags the Established condition a little.
	time.Sleep(time.Second)
}

// createNode creates a Node and sets its allocatable, as a kubelet would.
func createNode(t *testing.T, ctx context.Context, client kubernetes.Interface, name string, gpus int) {
	t.Helper()
	node := extendertest.Node(name, gpus)
	status := node.Status
	node.UID = ""
	created, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status = status
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// checkPrinterColumns asks the API for the table kubectl prints.
func checkPrinterColumns(t *testing.T, ctx context.Context, client kubernetes.Interface) {
	t.Helper()
	raw, err := client.Discovery().RESTClient().Get().AbsPath("/apis", v1alpha1.Group, v1alpha1.Version, v1alpha1.Resource).
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var table metav1.Table
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range table.ColumnDefinitions {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, ","); got != "Name,GPUs,Rails,Rails Free,PFs Free,VFs Free,Age" {
		t.Errorf("kubectl get nodetopologies columns = %s", got)
	}
	free := func(row int) any { return table.Rows[row].Cells[3] }
	if len(table.Rows) != 2 || table.Rows[0].Cells[0] != "dgx-free" || free(0) != float64(8) || free(1) != float64(0) {
		t.Errorf("rows %v %v: want dgx-free with 8 rails free, dgx-shared none", table.Rows[0].Cells, table.Rows[1].Cells)
	}
}

// startExtender serves a fresh extender on the real API and stops it with the test.
func startExtender(t *testing.T, ctx context.Context, c cluster) string {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	ext := embedded.New(c.client, embedded.Config{})
	if err := ext.Watch(ctx, c.client, c.dyn, 30*time.Second); err != nil {
		t.Fatalf("extender informers did not sync: %v", err)
	}
	srv := httptest.NewServer(ext.Handler())
	t.Cleanup(func() { srv.Close(); cancel() })
	return srv.URL
}

func waitBound(t *testing.T, ctx context.Context, client kubernetes.Interface, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		pod, err = client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && pod.Spec.NodeName != "", nil
	})
	if err != nil {
		t.Fatalf("pod %s not bound: %v", name, err)
	}
	return pod
}
