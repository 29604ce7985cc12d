// Package kube runs the real kube-scheduler in-process over a simulated cluster (client-go's
// fake clientset), with topolane's extender served over HTTP, as the bench's demo needs. (The
// throughput measurement runs on a real API server: see realapi.)
package kube

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/topolane/topolane/bench/internal/scenario"
	"github.com/topolane/topolane/extender/e2e/kubesched"
	"github.com/topolane/topolane/extender/embedded"
	"github.com/topolane/topolane/extender/extendertest"
	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
)

// Scheduler names of the two profiles: the same scheduler with and without the extender.
const (
	WithTopolane = "topolane-scheduler"
	Plain        = "plain-scheduler"
)

// Namespace holds the pods.
const Namespace = "bench"

// Cluster is a simulated cluster with both schedulers and the extender running.
type Cluster struct {
	Client    *fake.Clientset
	dyn       *dynamicfake.FakeDynamicClient
	writes    int
	published map[string]*topology.Node // nodes whose NodeTopology lists attachments
}

// pace lets the watchers catch up after every few writes: the fake clientset's watch channels
// hold 100 events and it panics when one is full.
func (c *Cluster) pace() {
	if c.writes++; c.writes%25 == 0 {
		time.Sleep(5 * time.Millisecond)
	}
}

// Start creates the nodes (NodeTopology first, then the Node: the scheduler retries pods on Node
// events), then starts the extender and both schedulers; they run until ctx ends.
func Start(ctx context.Context, nodes []scenario.Node) (*Cluster, error) {
	c := &Cluster{Client: fake.NewClientset(), dyn: extendertest.DynamicClient(), published: map[string]*topology.Node{}}
	extendertest.BindLikeTheAPIServer(c.Client)
	for _, n := range nodes {
		if err := c.addNode(ctx, n); err != nil {
			return nil, err
		}
	}
	ext := embedded.New(c.Client, embedded.Config{NoPF: embedded.NoPFReject})
	if err := ext.Watch(ctx, c.Client, c.dyn, time.Minute); err != nil {
		return nil, fmt.Errorf("the extender's informers did not sync: %w", err)
	}
	srv := httptest.NewServer(ext.Handler())
	context.AfterFunc(ctx, srv.Close)
	if err := kubesched.Start(ctx, c.Client, srv.URL, WithTopolane); err != nil {
		return nil, err
	}
	if err := kubesched.Start(ctx, c.Client, "", Plain); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cluster) addNode(ctx context.Context, n scenario.Node) error {
	nt := extendertest.Topology(n.Name, n.Machine)
	u, err := v1alpha1.ToUnstructured(nt)
	if err == nil {
		_, err = c.dyn.Resource(v1alpha1.GroupVersionResource).Create(ctx, u, metav1.CreateOptions{})
	}
	if err == nil {
		_, err = c.Client.CoreV1().Nodes().Create(ctx, extendertest.Node(n.Name, nt.Status.GPUs), metav1.CreateOptions{})
	}
	if err != nil {
		return fmt.Errorf("creating node %s: %w", n.Name, err)
	}
	return nil
}

// CreatePod creates a pod for the job under the named scheduler, with the annotations given
// (key, value, ...) beside the job's own.
func (c *Cluster) CreatePod(ctx context.Context, job scenario.Job, schedulerName string, annotations ...string) error {
	annotations = slices.Clone(annotations)
	if job.NIC != "" {
		annotations = append(annotations, v1alpha1.AnnotationNIC, job.NIC)
	}
	pod := extendertest.Pod(Namespace, job.Name, job.GPUs, annotations...)
	pod.Spec.SchedulerName = schedulerName
	c.pace()
	_, err := c.Client.CoreV1().Pods(Namespace).Create(ctx, pod, metav1.CreateOptions{})
	return err
}

// Pod reads a pod.
func (c *Cluster) Pod(ctx context.Context, name string) (*corev1.Pod, error) {
	return c.Client.CoreV1().Pods(Namespace).Get(ctx, name, metav1.GetOptions{})
}

// WaitBound waits until the named pods are all bound, or ctx or timeout ends; it reports how
// many are bound along the way and returns the count bound.
func (c *Cluster) WaitBound(ctx context.Context, names []string, timeout time.Duration, progress func(bound int)) int {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	deadline := time.Now().Add(timeout)
	bound := 0
	for time.Now().Before(deadline) && ctx.Err() == nil {
		pods, err := c.Client.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{})
		if err == nil {
			bound = 0
			for _, p := range pods.Items {
				if want[p.Name] && p.Spec.NodeName != "" {
					bound++
				}
			}
		}
		if progress != nil {
			progress(bound)
		}
		if bound == len(names) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return bound
}

// Publish is the agent's NodeTopology update: the node with the devices attached to its pods.
func (c *Cluster) Publish(ctx context.Context, n *topology.Node, attachments []v1alpha1.Attachment) error {
	u, err := v1alpha1.ToUnstructured(extendertest.TopologyOf(n, attachments...))
	if err == nil {
		c.pace()
		_, err = c.dyn.Resource(v1alpha1.GroupVersionResource).Update(ctx, u, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("publishing the NodeTopology of %s: %w", n.Name, err)
	}
	c.published[n.Name] = n
	return nil
}

// WaitScheduled waits until the scheduler has bound the pod (true) or marked it unschedulable
// (false), or timeout ends (false).
func (c *Cluster) WaitScheduled(ctx context.Context, name string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if p, err := c.Pod(ctx, name); err == nil {
			if p.Spec.NodeName != "" {
				return true
			}
			if unschedulable(p) {
				return false
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

func unschedulable(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return true
		}
	}
	return false
}

// DeleteAll deletes every pod (one by one: the fake clientset does not delete collections) and
// the attachments published for them.
func (c *Cluster) DeleteAll(ctx context.Context) error {
	for _, n := range c.published {
		if err := c.Publish(ctx, n, nil); err != nil {
			return err
		}
		delete(c.published, n.Name)
	}
	pods, err := c.Client.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, p := range pods.Items {
		c.pace()
		if err := c.Client.CoreV1().Pods(Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
			return err
		}
	}
	return nil
}
