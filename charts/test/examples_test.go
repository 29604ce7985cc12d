package charttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestExamples validates the training examples against every supported version and checks
// each opts in as a pod must: topolane's scheduler, the network, and accel.env sourced before
// the trainer starts.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(chartDir, "examples", "*.yaml"))
	if err != nil || len(files) < 2 {
		t.Fatalf("want the PyTorch and TensorFlow examples, found %v (%v)", files, err)
	}
	trainers := map[string]string{"pytorch-ddp.yaml": "exec torchrun", "tensorflow-multiworker.yaml": "exec python3"}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := Objects(string(data))
			if err != nil {
				t.Fatal(err)
			}
			for _, version := range KubernetesVersions {
				for _, obj := range objs {
					for _, err := range validator(t, version).Validate(obj) {
						t.Errorf("%s %s: %v", version, Name(obj), err)
					}
				}
			}
			r := rendered{t: t, objs: objs}
			var job batchv1.Job
			r.must("Job", "", &job)
			var svc corev1.Service
			r.must("Service", "", &svc)
			trainer, ok := trainers[filepath.Base(file)]
			if !ok {
				t.Fatalf("no trainer command known for %s: add it to the table", file)
			}
			checkOptsIn(t, job, svc, trainer)
		})
	}
}

func checkOptsIn(t *testing.T, job batchv1.Job, svc corev1.Service, trainer string) {
	t.Helper()
	spec := job.Spec.Template.Spec
	if spec.SchedulerName != "topolane-scheduler" {
		t.Errorf("schedulerName = %q", spec.SchedulerName)
	}
	if got := job.Spec.Template.Annotations["k8s.v1.cni.cncf.io/networks"]; got != "topolane-system/rdma" {
		t.Errorf("network annotation = %q, want the chart's NetworkAttachmentDefinition", got)
	}
	if *job.Spec.Completions != 2 || *job.Spec.Parallelism != 2 || spec.Subdomain != svc.Name || svc.Spec.ClusterIP != "None" ||
		svc.Spec.Selector["batch.kubernetes.io/job-name"] != job.Name {
		t.Errorf("two workers that find each other: completions %d, subdomain %q, Service %s %v", *job.Spec.Completions, spec.Subdomain, svc.Name, svc.Spec.Selector)
	}
	var hostPath string
	for _, v := range spec.Volumes {
		if v.Name == "topolane" && v.HostPath != nil {
			hostPath = v.HostPath.Path
		}
	}
	if hostPath != "/run/topolane/pods" {
		t.Errorf("the pods' directory hostPath = %q, want /run/topolane/pods (agent.hostPaths.pods)", hostPath)
	}
	c := spec.Containers[0]
	var uidEnv bool
	for _, e := range c.Env {
		uidEnv = uidEnv || (e.Name == "POD_UID" && e.ValueFrom != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.uid")
	}
	var mount corev1.VolumeMount
	for _, m := range c.VolumeMounts {
		if m.Name == "topolane" {
			mount = m
		}
	}
	if !uidEnv || mount.SubPathExpr != "$(POD_UID)" || mount.MountPath != "/etc/topolane" || !mount.ReadOnly {
		t.Errorf("the pod's own directory: POD_UID env %v, mount %+v", uidEnv, mount)
	}
	if c.Resources.Limits.Name("nvidia.com/gpu", "").Value() != 8 {
		t.Errorf("GPUs = %v, want 8 per worker", c.Resources.Limits)
	}
	script := strings.Join(append(append([]string{}, c.Command...), c.Args...), " ")
	source := strings.Index(script, "set -a; . /etc/topolane/accel.env; set +a")
	start := strings.Index(script, trainer)
	if source < 0 || start < 0 || source > start {
		t.Errorf("accel.env must be exported before %q starts:\n%s", trainer, script)
	}
	if out, err := exec.Command("bash", "-n", "-c", c.Args[0]).CombinedOutput(); err != nil {
		t.Errorf("the container's script does not parse: %v %s", err, out)
	}
	if !strings.Contains(script, job.Name+"-0."+svc.Name) {
		t.Errorf("the workers do not reach worker 0 as %s-0.%s:\n%s", job.Name, svc.Name, script)
	}
}
