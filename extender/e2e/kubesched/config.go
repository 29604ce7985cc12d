// Package kubesched loads the shipped KubeSchedulerConfiguration for the real scheduler in tests.
package kubesched

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	"k8s.io/kubernetes/pkg/scheduler"
	"k8s.io/kubernetes/pkg/scheduler/profile"

	schedulerapi "k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/apis/config/scheme"
)

// ExamplePath is the example shipped to users, relative to this package.
var ExamplePath = examplePath()

func examplePath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", "scheduler-config.yaml")
}

// LoadConfig decodes a KubeSchedulerConfiguration file and points its extender at url.
func LoadConfig(path, url string) (*schedulerapi.KubeSchedulerConfiguration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	obj, _, err := scheme.Codecs.UniversalDecoder().Decode(data, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%s does not decode as a KubeSchedulerConfiguration: %w", path, err)
	}
	cfg, ok := obj.(*schedulerapi.KubeSchedulerConfiguration)
	if !ok || len(cfg.Extenders) != 1 || len(cfg.Profiles) != 1 {
		return nil, fmt.Errorf("%s: want one profile and one extender", path)
	}
	cfg.Extenders[0].URLPrefix = url
	return cfg, nil
}

// Start runs a real kube-scheduler in-process until ctx ends: the shipped example configuration,
// its extender pointed at url (none when url is empty: the same scheduler without topolane), its
// one profile named schedulerName. Pod backoff is cut to a second so that tests do not wait on it.
func Start(ctx context.Context, client clientset.Interface, url, schedulerName string) error {
	cfg, err := LoadConfig(ExamplePath, url)
	if err != nil {
		return err
	}
	if url == "" {
		cfg.Extenders = nil
	}
	cfg.Profiles[0].SchedulerName = schedulerName
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
	factory.WaitForCacheSync(ctx.Done())
	go sched.Run(ctx)
	return nil
}
