package server

import (
	"bytes"
	"encoding/json"
	"sync"

	corev1 "k8s.io/api/core/v1"
)

// recentPods are the pods last decoded: kube-scheduler sends the pod it filtered again to
// prioritize, byte for byte.
var recentPods podCache

// podCache decodes pods with encoding/json, remembering the last few. Each request gets a copy
// of its own, so that nothing a request does to its pod reaches another.
type podCache struct {
	mu   sync.Mutex
	next int
	raw  [8][]byte
	pods [8]*corev1.Pod
}

// maxCachedPod bounds what the cache keeps: a pod with many containers is a few tens of KB.
const maxCachedPod = 64 << 10

func (c *podCache) decode(raw []byte) (*corev1.Pod, bool) {
	if pod := c.find(raw); pod != nil {
		return pod.DeepCopy(), true
	}
	pod := new(corev1.Pod)
	if json.Unmarshal(raw, pod) != nil {
		return nil, false
	}
	if len(raw) > maxCachedPod {
		return pod, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.raw[c.next], c.pods[c.next] = append(c.raw[c.next][:0], raw...), pod
	c.next = (c.next + 1) % len(c.raw)
	return pod.DeepCopy(), true
}

func (c *podCache) find(raw []byte) *corev1.Pod {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.raw {
		if c.pods[i] != nil && bytes.Equal(c.raw[i], raw) {
			return c.pods[i]
		}
	}
	return nil
}
