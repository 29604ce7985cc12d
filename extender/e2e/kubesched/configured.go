package kubesched

import (
	"context"
	"fmt"
	"time"

	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	"k8s.io/kubernetes/pkg/scheduler"
	"k8s.io/kubernetes/pkg/scheduler/profile"

	schedulerapi "k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/apis/config/scheme"
	"k8s.io/kubernetes/pkg/scheduler/apis/config/validation"
)

// DecodeConfig reads a KubeSchedulerConfiguration as kube-scheduler does (strictly: an unknown
// field fails, then defaults) and validates it with kube-scheduler's own validation.
func DecodeConfig(data []byte) (*schedulerapi.KubeSchedulerConfiguration, error) {
	obj, _, err := scheme.Codecs.UniversalDecoder().Decode(data, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("kube-scheduler would not load this configuration: %w", err)
	}
	cfg, ok := obj.(*schedulerapi.KubeSchedulerConfiguration)
	if !ok {
		return nil, fmt.Errorf("not a KubeSchedulerConfiguration: %T", obj)
	}
	if err := validation.ValidateKubeSchedulerConfiguration(cfg); err != nil {
		return nil, fmt.Errorf("kube-scheduler refuses this configuration: %w", err)
	}
	return cfg, nil
}

// StartConfigured runs a real kube-scheduler in-process with cfg (its profiles, extenders and
// percentageOfNodesToScore) until ctx ends. Its informers must sync within timeout: one that
// cannot list what it watches (RBAC) fails the start instead of hanging. Leader election is
// left out: there is one scheduler.
func StartConfigured(ctx context.Context, client clientset.Interface, cfg *schedulerapi.KubeSchedulerConfiguration, timeout time.Duration) error {
	factory := scheduler.NewInformerFactory(client, 0, nil)
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: client.EventsV1()})
	sched, err := scheduler.New(ctx, client, factory, nil, profile.NewRecorderFactory(broadcaster),
		scheduler.WithProfiles(cfg.Profiles...), scheduler.WithExtenders(cfg.Extenders...),
		scheduler.WithPercentageOfNodesToScore(cfg.PercentageOfNodesToScore),
		scheduler.WithPodInitialBackoffSeconds(1), scheduler.WithPodMaxBackoffSeconds(1))
	if err != nil {
		return err
	}
	broadcaster.StartRecordingToSink(ctx.Done())
	factory.Start(ctx.Done())
	wait, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for informer, ok := range factory.WaitForCacheSync(wait.Done()) {
		if !ok {
			return fmt.Errorf("the scheduler's %v informer did not sync within %v (can it list and watch that resource?)", informer, timeout)
		}
	}
	go sched.Run(ctx)
	return nil
}
