package sim

import (
	"context"
	"fmt"
	"math/rand/v2"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/bench/internal/scenario"
	"github.com/topolane/topolane/extender/embedded"
	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
)

// Namespace holds the simulated pods.
const Namespace = "bench"

// extenderWeight is the example scheduler configuration's weight for the extender; its 0..10
// scores are scaled to the plugins' 0..100 first, as the scheduler does.
const extenderWeight = 5 * 10

// Topolane is the scheduler with topolane's extender: the extender's own filter, prioritize and
// bind (an in-process extender writing through a fake API client), added to the GPU count filter
// and LeastAllocated score of the scheduler itself.
type Topolane struct {
	ext    *embedded.Extender
	client *fake.Clientset
	rand   *rand.Rand
	pods   map[string]*corev1.Pod // created on arrival, by job name
}

// NewTopolane makes the policy over the scenario's nodes.
func NewTopolane(nodes []scenario.Node, cfg embedded.Config, seed uint64) *Topolane {
	client := fake.NewClientset()
	extendertest.BindLikeTheAPIServer(client)
	t := &Topolane{ext: embedded.New(client, cfg), client: client, rand: rand.New(rand.NewPCG(seed, 3)), pods: map[string]*corev1.Pod{}}
	for _, n := range nodes {
		nt := extendertest.Topology(n.Name, n.Machine)
		t.ext.SetTopology(nt)
		t.ext.SetNode(extendertest.Node(n.Name, nt.Status.GPUs))
	}
	return t
}

func (*Topolane) Name() string { return "topolane" }

func (t *Topolane) Place(c *Cluster, job scenario.Job) (Placement, bool) {
	pod, err := t.pod(job)
	if err != nil {
		panic(err) // the fake API client refusing a new pod is a bug of the bench
	}
	node, ok := t.schedule(c, pod, job.GPUs)
	if !ok {
		return Placement{}, false
	}
	ctx := context.Background()
	if err := t.ext.Bind(ctx, &extenderv1.ExtenderBindingArgs{PodName: pod.Name, PodNamespace: pod.Namespace, PodUID: pod.UID, Node: node.Name}); err != nil {
		return Placement{}, false // another pod took the device: as the scheduler would, retry later
	}
	bound, err := t.client.CoreV1().Pods(Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		panic(err)
	}
	pl := Placement{Node: node.Name, GPUs: node.LowestFreeGPUs(job.GPUs)}
	if a, err := v1alpha1.ParseAllocation(bound.Annotations[v1alpha1.AnnotationAllocation]); err == nil {
		pl.Device = Attach(node, a, pl.GPUs)
		a.Kind, a.NIC, a.Device = pl.Device.Kind, pl.Device.NIC, pl.Device.Device
		bound.Annotations[v1alpha1.AnnotationAllocation] = a.String() // as the agent's report overrides it
	}
	t.pods[job.Name] = bound
	return pl, true
}

// Attach is what topolane-agent does when the pod lands (nodeagent/internal/attach.decide, which
// the bench module cannot import): the extender reserved a kind of device without knowing which
// GPUs kubelet would give; the agent takes the free one of that kind nearest the pod's GPUs.
func Attach(n *Node, reserved v1alpha1.Allocation, gpus []int) placement.Allocation {
	keep := placement.Allocation{Kind: reserved.Kind, NIC: reserved.NIC, Device: reserved.Device}
	sum, err := placement.Summarize(n.Topo, n.Usage())
	if err != nil {
		return keep
	}
	need := placement.NeedOf(reserved.Kind)
	addrs := make([]string, len(gpus))
	for i, g := range gpus {
		addrs[i] = n.Topo.GPUs[g].PCIAddress
	}
	c, err := sum.Choose(need, addrs)
	if err != nil {
		return keep
	}
	return placement.Allocation{Kind: c.Kind, NIC: c.NIC, Device: c.Device}
}

// schedule is one scheduling cycle: the scheduler's GPU filter, then the extender's filter and
// prioritize, the two scores added.
func (t *Topolane) schedule(c *Cluster, pod *corev1.Pod, gpus int) (*Node, bool) {
	var names []string
	for _, n := range fitting(c, gpus) {
		names = append(names, n.Name)
	}
	if len(names) == 0 {
		return nil, false
	}
	res, err := t.ext.Filter(&extenderv1.ExtenderArgs{Pod: pod, NodeNames: &names})
	if err != nil || len(*res.NodeNames) == 0 {
		return nil, false
	}
	passing := append([]string(nil), *res.NodeNames...)
	list, err := t.ext.Prioritize(&extenderv1.ExtenderArgs{Pod: pod, NodeNames: &passing})
	if err != nil {
		panic(err)
	}
	extScore := map[string]int64{}
	for _, h := range *list {
		extScore[h.Host] = h.Score
	}
	nodes := make([]*Node, len(passing))
	for i, name := range passing {
		nodes[i] = c.Node(name)
	}
	return best(t.rand, nodes, func(n *Node) int64 { return leastAllocated(n, gpus) + extenderWeight*extScore[n.Name] }), true
}

// pod is the job's pod in the API, created the first time it is tried.
func (t *Topolane) pod(job scenario.Job) (*corev1.Pod, error) {
	if p := t.pods[job.Name]; p != nil {
		return p, nil
	}
	var annotations []string
	if job.NIC != "" {
		annotations = []string{v1alpha1.AnnotationNIC, job.NIC}
	}
	p, err := t.client.CoreV1().Pods(Namespace).Create(context.Background(), extendertest.Pod(Namespace, job.Name, job.GPUs, annotations...), metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating pod %s: %w", job.Name, err)
	}
	t.pods[job.Name] = p
	return p, nil
}

// Placed counts the bound pod in the extender's store, as its pod informer would.
func (t *Topolane) Placed(_ *Cluster, job scenario.Job, _ Placement) { t.ext.SetPod(t.pods[job.Name]) }

// Finished deletes the pod.
func (t *Topolane) Finished(_ *Cluster, job scenario.Job, _ Placement) {
	p := t.pods[job.Name]
	t.ext.DeletePod(p.UID)
	delete(t.pods, job.Name)
	_ = t.client.CoreV1().Pods(Namespace).Delete(context.Background(), p.Name, metav1.DeleteOptions{})
}
