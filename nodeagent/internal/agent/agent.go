// Package agent is topolane-agent's daemon: it discovers the node on start and on a period,
// publishes its NodeTopology when it changes, serves the CNI plugin's calls through the
// attacher, and reports attachments on the pod and in the NodeTopology.
package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/topolane/topolane/nodeagent/internal/attach"
	"github.com/topolane/topolane/nodeagent/internal/publish"
	"github.com/topolane/topolane/nodeagent/internal/validate"
	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
)

// AnnotationAttachment is what the agent bound into a pod.
const AnnotationAttachment = "topolane.io/attachment"

// Agent ties discovery, the attacher and publishing together.
type Agent struct {
	Client    kubernetes.Interface
	Publisher *publish.Publisher
	Attacher  *attach.Attacher
	Discover  func() (*topology.Node, error)
	Metrics   *Metrics

	topo      atomic.Pointer[topology.Node]
	published atomic.Bool
	reports   reportQueue
}

// Topology is the node as last discovered, nil before the first discovery.
func (a *Agent) Topology() *topology.Node { return a.topo.Load() }

// Ready says whether the agent can serve ADDs: discovered and published.
func (a *Agent) Ready() error {
	if a.topo.Load() == nil || !a.published.Load() {
		return errNotReady
	}
	return nil
}

type notReady struct{}

func (notReady) Error() string {
	return "topolane-agent has not discovered and published this node's topology yet"
}

var errNotReady error = notReady{}

// Refresh discovers the node and publishes it with the current attachments.
func (a *Agent) Refresh(ctx context.Context) error {
	node, err := a.Discover()
	if err != nil {
		return err
	}
	a.topo.Store(node)
	return a.publish(ctx)
}

func (a *Agent) publish(ctx context.Context) error {
	node := a.topo.Load()
	if node == nil {
		return nil
	}
	atts, err := a.attachments()
	if err != nil {
		return err
	}
	changed, err := a.Publisher.Publish(ctx, node, atts)
	if err != nil {
		return err
	}
	a.published.Store(true)
	if a.Metrics != nil {
		a.Metrics.bound.Set(float64(len(atts)))
	}
	if changed {
		klog.FromContext(ctx).Info("Published the node's topology", "gpus", len(node.GPUs), "nics", len(node.NICs), "attachments", len(atts))
	}
	return nil
}

// attachments are the journal's finished attachments. A record that cannot be read is left out
// (reconcile reports it every period): failing here would leave the node unpublished, and the
// agent never ready.
func (a *Agent) attachments() ([]v1alpha1.Attachment, error) {
	records, _ := a.Attacher.Journal.All()
	out := []v1alpha1.Attachment{}
	for _, r := range records {
		if r.Step != attach.StepDone || r.Deleting {
			continue
		}
		for _, d := range r.Devices {
			out = append(out, v1alpha1.Attachment{Pod: r.Pod, PodUID: types.UID(r.PodUID), Kind: d.Kind, NIC: d.NIC, Device: d.Device,
				Rail: d.Rail, Interface: d.IfName, GPUs: d.GPUs})
		}
	}
	return out, nil
}

// Run reconciles the journal with the node and refreshes the topology every period until ctx
// ends; failures are logged and retried.
func (a *Agent) Run(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.Reconcile(ctx)
			if err := a.Refresh(ctx); err != nil {
				klog.FromContext(ctx).Error(err, "Refreshing the node's topology; retrying next period")
			}
		}
	}
}

// Reconcile returns devices of interrupted attachments, of pods whose namespace is gone and of
// an earlier boot, and logs what it did and could not do.
func (a *Agent) Reconcile(ctx context.Context) {
	logger := klog.FromContext(ctx)
	undone, err := a.Attacher.Reconcile(ctx)
	for _, u := range undone {
		logger.Info("Returned devices to the host", "attachment", u)
	}
	if err != nil {
		logger.Error(err, "Some devices could not be returned to the host; the journal keeps them and the agent tries again next period")
	}
}

// attachmentNote is one device in the pod's topolane.io/attachment annotation (a list).
type attachmentNote struct {
	Interface string   `json:"interface"`
	Kind      string   `json:"kind"`
	Rail      int      `json:"rail"`
	NIC       string   `json:"nic"`
	Device    string   `json:"device"`
	RDMA      string   `json:"rdmaDevice,omitempty"`
	Level     string   `json:"level"`
	GPUs      []string `json:"gpus"`
}

// annotate writes the pod's topolane.io/attachment: every device it got.
func (a *Agent) annotate(ctx context.Context, r *attach.Record) error {
	notes := make([]attachmentNote, len(r.Devices))
	for i, d := range r.Devices {
		notes[i] = attachmentNote{Interface: d.IfName, Kind: string(d.Kind), Rail: d.Rail, NIC: d.NIC, Device: d.Device, RDMA: d.RDMA, Level: d.Level, GPUs: d.GPUs}
	}
	note, _ := json.Marshal(notes)
	return a.patchAttachment(ctx, r, string(note))
}

// patchAttachment sets the annotation, or removes it (value "") once the devices are back: a
// pod whose sandbox is torn down and set up again must not keep a stale one. The patch names
// the pod's UID, so it cannot land on a new pod of the same name.
func (a *Agent) patchAttachment(ctx context.Context, r *attach.Record, value string) error {
	var v any
	if value != "" {
		v = value
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"uid": r.PodUID, "annotations": map[string]any{AnnotationAttachment: v}}})
	ns, name := split(r.Pod)
	_, err := a.Client.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

func (a *Agent) eventAttached(ctx context.Context, r *attach.Record) {
	ns, name := split(r.Pod)
	var parts []string
	for _, d := range r.Devices {
		parts = append(parts, fmt.Sprintf("%s %s as %s (%s to its GPUs)", d.Kind, d.Device, d.IfName, d.Level))
	}
	msg := "topolane attached " + strings.Join(parts, ", ")
	if err := publish.Event(ctx, a.Client, ns, name, r.PodUID, "DeviceAttached", msg, corev1.EventTypeNormal); err != nil {
		klog.FromContext(ctx).Error(err, "Recording an event", "pod", r.Pod)
	}
}

func (a *Agent) eventDetached(ctx context.Context, r *attach.Record) {
	ns, name := split(r.Pod)
	_ = publish.Event(ctx, a.Client, ns, name, r.PodUID, "DeviceDetached", fmt.Sprintf("topolane returned %d device(s) to the host", len(r.Devices)), corev1.EventTypeNormal)
	if err := a.patchAttachment(ctx, r, ""); err != nil && !apierrors.IsNotFound(err) {
		klog.FromContext(ctx).V(2).Info("Could not remove the pod's attachment annotation", "pod", r.Pod, "err", err)
	}
}

// Warn records a warning event on the pod.
func (a *Agent) Warn(ctx context.Context, r *attach.Record, reason, message string) {
	ns, name := split(r.Pod)
	if err := publish.Event(ctx, a.Client, ns, name, r.PodUID, reason, "topolane: "+message, corev1.EventTypeWarning); err != nil {
		klog.FromContext(ctx).Error(err, "Recording a warning", "pod", r.Pod, "reason", reason)
	}
}

// RDMADevices are the RDMA devices of the pod's finished attachments: what NRI gives its
// containers.
func (a *Agent) RDMADevices(podUID string) []string {
	records, err := a.Attacher.Journal.All()
	if err != nil {
		klog.Background().Error(err, "Reading the journal for a pod's RDMA devices", "podUID", podUID)
	}
	var out []string
	for _, r := range records {
		if r.PodUID != podUID || r.Step != attach.StepDone || r.Deleting {
			continue
		}
		for _, d := range r.Devices {
			if d.RDMA != "" && !slices.Contains(out, d.RDMA) {
				out = append(out, d.RDMA)
			}
		}
	}
	return out
}

func split(key string) (namespace, name string) {
	namespace, name, _ = strings.Cut(key, "/")
	return namespace, name
}

// APIPods reads pods from the API server.
type APIPods struct{ Client kubernetes.Interface }

// Get returns the pod's UID and annotations. The UID names the pod's directory under
// --accel-dir: one that is not a UUID is refused.
func (p APIPods) Get(ctx context.Context, namespace, name string) (attach.Pod, error) {
	pod, err := p.Client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return attach.Pod{}, err
	}
	if err := validate.PodUID(string(pod.UID)); err != nil {
		return attach.Pod{}, err
	}
	return attach.Pod{UID: string(pod.UID), Annotations: pod.Annotations}, nil
}
