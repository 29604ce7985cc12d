package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"

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

// The names of topolane's two policies: a device per rail, and one device per pod (topolane
// before rails).
const (
	PolicyTopolane = "topolane"
	PolicyOneNIC   = "one-nic-per-pod"
)

// Topolane is the scheduler with topolane's extender: the extender's own filter, prioritize and
// bind (an in-process extender writing through a fake API client), added to the GPU count filter
// and LeastAllocated score of the scheduler itself; then the agent's pick of devices for the GPUs
// kubelet gave, reported in the node's NodeTopology as the agent does.
type Topolane struct {
	name        string
	annotations []string // set on every pod (key, value, ...)
	ext         *embedded.Extender
	client      *fake.Clientset
	rand        *rand.Rand
	pods        map[string]*corev1.Pod           // created on arrival, by job name
	attached    map[string][]v1alpha1.Attachment // what the agent reports, by node
	attaching   map[string][]v1alpha1.Attachment // placed, not yet reported, by job name
}

// NewTopolane makes the policy over the scenario's nodes: every pod gets a device per rail of
// its GPUs (topolane.io/nics: rails, the default).
func NewTopolane(nodes []scenario.Node, cfg embedded.Config, seed uint64) *Topolane {
	// The plain object tracker: NewClientset's field-managed one builds a REST mapper on every
	// call, which was four fifths of a run.
	client := fake.NewSimpleClientset()
	extendertest.BindLikeTheAPIServer(client)
	t := &Topolane{name: PolicyTopolane, ext: embedded.New(client, cfg), client: client, rand: rand.New(rand.NewPCG(seed, 3)),
		pods: map[string]*corev1.Pod{}, attached: map[string][]v1alpha1.Attachment{}, attaching: map[string][]v1alpha1.Attachment{}}
	for _, n := range nodes {
		nt := extendertest.Topology(n.Name, n.Machine)
		t.ext.SetTopology(nt)
		t.ext.SetNode(extendertest.Node(n.Name, nt.Status.GPUs))
	}
	return t
}

// NewOneNIC is topolane before rails: the same extender and agent, every pod annotated
// topolane.io/nics: one (a single device, the free one nearest its GPUs).
func NewOneNIC(nodes []scenario.Node, cfg embedded.Config, seed uint64) *Topolane {
	t := NewTopolane(nodes, cfg, seed)
	t.name = PolicyOneNIC
	t.annotations = []string{v1alpha1.AnnotationNICs, string(placement.NICsOne)}
	return t
}

func (t *Topolane) Name() string { return t.name }

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
	t.pods[job.Name] = bound
	pl := Placement{Node: node.Name, GPUs: node.LowestFreeGPUs(job.GPUs)}
	choices, err := AttachPod(node, bound, pl.GPUs)
	if err != nil {
		panic(fmt.Sprintf("%s: %v", job.Name, err)) // the agent cannot give what the extender reserved: the bench's truth and the extender's disagree
	}
	pl.Devices = Allocations(choices)
	t.attaching[job.Name] = Attachments(bound, choices)
	return pl, true
}

// AttachPod is what topolane-agent does for a bound pod given gpus: nothing for a pod without
// a reservation (topolane.io/nic: none), else Attach with the pod's request.
func AttachPod(n *Node, pod *corev1.Pod, gpus []int) ([]placement.Choice, error) {
	v, ok := pod.Annotations[v1alpha1.AnnotationAllocation]
	if !ok {
		return nil, nil
	}
	reserved, err := v1alpha1.ParseAllocation(v)
	if err != nil {
		return nil, err
	}
	req, err := v1alpha1.ParseRequest(pod.Annotations, len(gpus))
	if err != nil {
		return nil, err
	}
	return Attach(n, req, reserved, gpus)
}

// Attach is what topolane-agent does when the pod lands (nodeagent/internal/attach, which the
// bench module cannot import): the extender reserved a kind of device per rail without knowing
// which GPUs kubelet would give; the agent plans again for the GPUs the pod really got, as the
// node stands: with topolane.io/nics: rails one device of that kind per distinct rail of those
// GPUs (the rail's own, else the nearest free one), with nics: one the single device nearest
// them.
func Attach(n *Node, req placement.Request, reserved v1alpha1.Allocation, gpus []int) ([]placement.Choice, error) {
	sum := placement.Summarize(n.Topo, n.Usage(), placement.DefaultWeights)
	cs, err := sum.Plan(req, placement.NeedOf(reserved.Devices[0].Kind), n.Addrs(gpus))
	if err != nil {
		return nil, fmt.Errorf("the agent on %s: %w", n.Name, err)
	}
	return cs, nil
}

// Allocations are the devices chosen, as the simulation holds them.
func Allocations(cs []placement.Choice) []placement.Allocation {
	out := make([]placement.Allocation, len(cs))
	for i, c := range cs {
		out[i] = placement.Allocation{Kind: c.Kind, NIC: c.NIC, Device: c.Device, GPUs: slices.Clone(c.GPUs)}
	}
	return out
}

// Attachments are the devices chosen as the agent reports them in NodeTopology.
func Attachments(pod *corev1.Pod, cs []placement.Choice) []v1alpha1.Attachment {
	out := make([]v1alpha1.Attachment, len(cs))
	for i, c := range cs {
		out[i] = v1alpha1.Attachment{Pod: pod.Namespace + "/" + pod.Name, PodUID: pod.UID, Kind: c.Kind, NIC: c.NIC,
			Device: c.Device, Rail: c.Rail, GPUs: slices.Clone(c.GPUs)}
	}
	return out
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
	annotations := slices.Clone(t.annotations)
	if job.NIC != "" {
		annotations = append(annotations, v1alpha1.AnnotationNIC, job.NIC)
	}
	p, err := t.client.CoreV1().Pods(Namespace).Create(context.Background(), extendertest.Pod(Namespace, job.Name, job.GPUs, annotations...), metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating pod %s: %w", job.Name, err)
	}
	t.pods[job.Name] = p
	return p, nil
}

// Placed counts the bound pod in the extender's store, as its pod informer would, and the
// devices the agent attached, as its NodeTopology informer would.
func (t *Topolane) Placed(c *Cluster, job scenario.Job, p Placement) {
	t.ext.SetPod(t.pods[job.Name])
	if atts := t.attaching[job.Name]; len(atts) > 0 {
		delete(t.attaching, job.Name)
		t.attached[p.Node] = append(t.attached[p.Node], atts...)
		t.publish(c.Node(p.Node))
	}
}

// Finished deletes the pod; the agent reports its devices free.
func (t *Topolane) Finished(c *Cluster, job scenario.Job, p Placement) {
	pod := t.pods[job.Name]
	t.ext.DeletePod(pod.UID)
	delete(t.pods, job.Name)
	_ = t.client.CoreV1().Pods(Namespace).Delete(context.Background(), pod.Name, metav1.DeleteOptions{})
	atts := t.attached[p.Node]
	if kept := slices.DeleteFunc(slices.Clone(atts), func(a v1alpha1.Attachment) bool { return a.PodUID == pod.UID }); len(kept) != len(atts) {
		t.attached[p.Node] = kept
		t.publish(c.Node(p.Node))
	}
}

// publish is the agent's NodeTopology update.
func (t *Topolane) publish(n *Node) {
	t.ext.SetTopology(extendertest.TopologyOf(n.Topo, t.attached[n.Name]...))
}
