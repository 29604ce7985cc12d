package realapi

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/topolane/topolane/bench/internal/scenario"
	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
)

// Workers is how many requests the bench keeps in flight while it fills the cluster: enough
// that the API server, not the bench, sets the pace.
const Workers = 32

// Cluster is a client of the API server, for an administrator.
type Cluster struct {
	Client kubernetes.Interface
	Dyn    dynamic.Interface
	config *rest.Config
}

// NewCluster makes the clients (unthrottled).
func NewCluster(cfg *rest.Config) (*Cluster, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS = -1
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Cluster{Client: client, Dyn: dyn, config: cfg}, nil
}

// crdPath is the chart's NodeTopology CRD, relative to this package.
var crdPath = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "charts", "topolane", "crds", "nodetopologies.topolane.io.yaml")
}()

// InstallCRD creates the chart's NodeTopology CRD and waits until the API serves it.
func (c *Cluster) InstallCRD(ctx context.Context) error {
	data, err := os.ReadFile(crdPath)
	if err != nil {
		return err
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &crd); err != nil {
		return fmt.Errorf("%s: %w", crdPath, err)
	}
	crds := apiextensions.NewForConfigOrDie(c.config).ApiextensionsV1().CustomResourceDefinitions()
	if _, err := crds.Create(ctx, &crd, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("the API server refuses %s: %w", crdPath, err)
	}
	// Established, then served: discovery lags the condition a little.
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := c.Dyn.Resource(v1alpha1.GroupVersionResource).List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil, nil
	})
}

// CreateNamespaces creates the named namespaces.
func (c *Cluster) CreateNamespaces(ctx context.Context, names ...string) error {
	for _, n := range names {
		if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating namespace %s: %w", n, err)
		}
	}
	return nil
}

// parallel calls fn(0..n-1) with Workers in flight, stopping at the first error.
func parallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(Workers)
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(ctx, i) })
	}
	return g.Wait()
}

// PublishedTopology is the NodeTopology topolane-agent publishes for a node of this machine,
// before any pod (nodeagent/internal/publish writes NodeTopologyOf the discovered node, without
// its PCIe paths).
func PublishedTopology(name string, m scenario.Node) *v1alpha1.NodeTopology {
	n := m.Machine.Node().WithoutPaths()
	n.Name = name
	return v1alpha1.NodeTopologyOf(n, nil)
}

// TopologyBytes is the size of a published NodeTopology as JSON.
func TopologyBytes(m scenario.Node) int {
	data, _ := json.Marshal(PublishedTopology(m.Name, m))
	return len(data)
}

// ServedTopologyBytes is the size of the node's NodeTopology as the API server serves it
// (JSON, with its metadata and managed fields).
func (c *Cluster) ServedTopologyBytes(ctx context.Context, node string) (int, error) {
	u, err := c.Dyn.Resource(v1alpha1.GroupVersionResource).Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return 0, err
	}
	data, err := u.MarshalJSON()
	return len(data), err
}

// CreateNodes creates every node as the agent and a kubelet would: the NodeTopology first (the
// scheduler retries pods on Node events), then the Node, then its status with the GPUs
// allocatable and Ready.
func (c *Cluster) CreateNodes(ctx context.Context, nodes []scenario.Node) error {
	return parallel(ctx, len(nodes), func(ctx context.Context, i int) error {
		n := nodes[i]
		nt := PublishedTopology(n.Name, n)
		u, err := v1alpha1.ToUnstructured(nt)
		if err == nil {
			_, err = c.Dyn.Resource(v1alpha1.GroupVersionResource).Create(ctx, u, metav1.CreateOptions{})
		}
		if err != nil {
			return fmt.Errorf("creating the NodeTopology of %s: %w", n.Name, err)
		}
		return c.createNode(ctx, n.Name, nt.Status.GPUs)
	})
}

func (c *Cluster) createNode(ctx context.Context, name string, gpus int) error {
	node := extendertest.Node(name, gpus)
	status := node.Status
	node.UID, node.Status = "", corev1.NodeStatus{}
	created, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err == nil {
		created.Status = status
		_, err = c.Client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("creating node %s: %w", name, err)
	}
	return nil
}

// CreateBoundPods creates count pods already bound, pod i on node i mod len(nodes), as
// extender/internal/scheduler's bigCluster does: the first gpuPodsPerNode rounds over the nodes
// are 1-GPU pods holding a macvlan on rail 1 (their own allocation, with their own UID), the
// rest use no GPU.
func (c *Cluster) CreateBoundPods(ctx context.Context, ns string, nodes []scenario.Node, count, gpuPodsPerNode int) error {
	return parallel(ctx, count, func(ctx context.Context, i int) error {
		node := nodes[i%len(nodes)]
		gpus := 0
		if i/len(nodes) < gpuPodsPerNode {
			gpus = 1
		}
		pod := extendertest.Pod(ns, fmt.Sprintf("p-%05d", i), gpus)
		pod.UID, pod.Spec.SchedulerName = "", ""
		if gpus == 0 {
			pod.Spec.NodeName = node.Name
		}
		created, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating pod %s: %w", pod.Name, err)
		}
		if gpus == 0 {
			return nil
		}
		return c.bindWithAllocation(ctx, created, node)
	})
}

// bindWithAllocation binds the pod as the extender's bind would, its allocation on the Binding:
// a macvlan on rail 1, on the DGX's first NIC or the PCIe server's second port.
func (c *Cluster) bindWithAllocation(ctx context.Context, pod *corev1.Pod, node scenario.Node) error {
	nic := "0000:42:00.0"
	if node.Machine.Name == "pcie-server" {
		nic = "0000:18:00.1"
	}
	a := v1alpha1.Allocation{Node: node.Name, PodUID: pod.UID,
		Devices: []v1alpha1.Device{{Rail: 1, Kind: placement.KindMacvlan, NIC: nic, Device: nic}}}
	binding := extendertest.Binding(pod.Namespace, pod.Name, pod.UID, node.Name, a.String())
	if err := c.Client.CoreV1().Pods(pod.Namespace).Bind(ctx, binding, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("binding pod %s with its allocation: %w", pod.Name, err)
	}
	return nil
}

// CreatePending creates n 1-GPU pods for the named scheduler, names prefix-0000..., and
// returns their names.
func (c *Cluster) CreatePending(ctx context.Context, ns, schedulerName, prefix string, n int) ([]string, error) {
	names := make([]string, n)
	err := parallel(ctx, n, func(ctx context.Context, i int) error {
		names[i] = fmt.Sprintf("%s-%05d", prefix, i)
		pod := extendertest.Pod(ns, names[i], 1)
		pod.UID, pod.Spec.SchedulerName = "", schedulerName
		_, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = fmt.Errorf("pod %s/%s exists already: %w", ns, names[i], err)
		}
		return err
	})
	return names, err
}
