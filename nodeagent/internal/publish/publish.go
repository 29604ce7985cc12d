// Package publish writes what the agent found and did into the cluster: the node's NodeTopology
// (topology, devices bound to pods, counts), the pod's topolane.io/attachment annotation and
// events.
package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
)

// AnnotationTopology on the Node changes whenever its NodeTopology does: the scheduler retries
// pending pods on Node events, not on NodeTopology ones.
const AnnotationTopology = "topolane.io/topology-hash"

// Publisher keeps one node's NodeTopology current.
type Publisher struct {
	Client   kubernetes.Interface
	Dyn      dynamic.Interface
	NodeName string

	mu   sync.Mutex
	last string // hash of the status last written
}

// Publish writes the NodeTopology if its status differs from the last written: creates it,
// owned by the Node (so that it goes with the Node), or updates it; then marks the Node.
func (p *Publisher) Publish(ctx context.Context, node *topology.Node, attachments []v1alpha1.Attachment) (changed bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	status, err := statusOf(node, attachments)
	if err != nil {
		return false, err
	}
	hash := hashOf(status)
	if hash == p.last {
		return false, nil
	}
	if err := p.write(ctx, status); err != nil {
		return false, err
	}
	if err := p.markNode(ctx, hash); err != nil {
		return false, err
	}
	p.last = hash
	return true, nil
}

// statusOf is what the NodeTopology says: the node without its PCIe paths (the levels carry
// what placement needs of them; `topolane-agent discover` shows them), its attachments, counts.
func statusOf(node *topology.Node, attachments []v1alpha1.Attachment) (v1alpha1.NodeTopologyStatus, error) {
	return v1alpha1.NodeTopologyOf(node.WithoutPaths(), attachments).Status, nil
}

func hashOf(status v1alpha1.NodeTopologyStatus) string {
	data, _ := json.Marshal(status)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

func (p *Publisher) write(ctx context.Context, status v1alpha1.NodeTopologyStatus) error {
	res := p.Dyn.Resource(v1alpha1.GroupVersionResource)
	current, err := res.Get(ctx, p.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, err := p.Client.CoreV1().Nodes().Get(ctx, p.NodeName, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("reading Node %s to own its NodeTopology (is --node-name right?): %w", p.NodeName, err)
		}
		nt := &v1alpha1.NodeTopology{
			TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.Group + "/" + v1alpha1.Version, Kind: v1alpha1.Kind},
			ObjectMeta: metav1.ObjectMeta{Name: p.NodeName, OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}},
			Status: status,
		}
		u, err := v1alpha1.ToUnstructured(nt)
		if err == nil {
			_, err = res.Create(ctx, u, metav1.CreateOptions{})
		}
		if err != nil {
			return fmt.Errorf("creating NodeTopology %s (is the CRD installed?): %w", p.NodeName, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading NodeTopology %s: %w", p.NodeName, err)
	}
	nt, err := v1alpha1.FromUnstructured(current)
	if err != nil {
		return err
	}
	nt.Status = status
	u, err := v1alpha1.ToUnstructured(nt)
	if err == nil {
		_, err = res.Update(ctx, u, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("updating NodeTopology %s: %w", p.NodeName, err)
	}
	return nil
}

func (p *Publisher) markNode(ctx context.Context, hash string) error {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{AnnotationTopology: hash}}})
	if _, err := p.Client.CoreV1().Nodes().Patch(ctx, p.NodeName, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("marking Node %s: %w", p.NodeName, err)
	}
	return nil
}

// Event records an event on a pod; a pod already gone is not an error.
func Event(ctx context.Context, client kubernetes.Interface, namespace, name, uid, reason, message, eventType string) error {
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: name + ".", Namespace: namespace},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: namespace, Name: name, UID: types.UID(uid), APIVersion: "v1"},
		Reason:         reason, Message: message, Type: eventType,
		Source:         corev1.EventSource{Component: "topolane-agent"},
		FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 1,
	}
	_, err := client.CoreV1().Events(namespace).Create(ctx, ev, metav1.CreateOptions{})
	return err
}
