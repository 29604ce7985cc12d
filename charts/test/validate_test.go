package charttest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ciValues are the chart's CI values files; each is rendered for every supported version.
func ciValues(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) < 2 {
		t.Fatalf("want the chart's ci/*-values.yaml files, found %v (%v)", files, err)
	}
	return files
}

func TestLint(t *testing.T) {
	for _, version := range KubernetesVersions {
		for _, values := range ciValues(t) {
			t.Run(version+"/"+filepath.Base(values), func(t *testing.T) {
				out, err := helm().Lint(version, "--values", values,
					"--set", "networkAttachment.enabled=false", "--set", "serviceMonitor.enabled=false")
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(out, "0 chart(s) failed") {
					t.Errorf("helm lint:\n%s", out)
				}
			})
		}
	}
}

// TestRenderedObjectsMatchTheAPI renders the chart for every supported version with every CI
// values file and validates every object against that version's schema, strictly.
func TestRenderedObjectsMatchTheAPI(t *testing.T) {
	kinds := map[string]bool{}
	for _, version := range KubernetesVersions {
		v := validator(t, version)
		for _, values := range ciValues(t) {
			t.Run(version+"/"+filepath.Base(values), func(t *testing.T) {
				r := renderFor(t, version, "--values", values)
				if len(r.objs) < 10 {
					t.Fatalf("only %d objects rendered", len(r.objs))
				}
				for _, obj := range r.objs {
					kinds[obj["apiVersion"].(string)+"/"+obj["kind"].(string)] = true
					for _, err := range v.Validate(obj) {
						t.Errorf("%s: %v", Name(obj), err)
					}
				}
			})
		}
	}
	// Every kind the chart can render was seen (and so validated) at least once.
	for _, k := range []string{"v1/ServiceAccount", "v1/Secret", "v1/ConfigMap", "v1/Service", "apps/v1/Deployment", "apps/v1/DaemonSet",
		"policy/v1/PodDisruptionBudget", "rbac.authorization.k8s.io/v1/ClusterRole", "rbac.authorization.k8s.io/v1/ClusterRoleBinding",
		"rbac.authorization.k8s.io/v1/Role", "rbac.authorization.k8s.io/v1/RoleBinding",
		"admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy", "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding",
		"apiextensions.k8s.io/v1/CustomResourceDefinition", "k8s.cni.cncf.io/v1/NetworkAttachmentDefinition", "monitoring.coreos.com/v1/ServiceMonitor"} {
		if !kinds[k] {
			t.Errorf("no CI values file renders a %s: add one to charts/topolane/ci/", k)
		}
	}
}

// TestValidatorRejects proves the validator fails what the API server would refuse, for
// every supported version.
func TestValidatorRejects(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"unknown field", `{apiVersion: apps/v1, kind: Deployment, metadata: {name: x}, spec: {selector: {}, template: {spec: {containers: [{name: c, image: i, imagePullPolcy: Always}]}}}}`,
			`spec.template.spec.containers[0].imagePullPolcy: unknown field "imagePullPolcy"`},
		{"a number where a string goes", `{apiVersion: v1, kind: ConfigMap, metadata: {name: x, annotations: {a: 1}}}`,
			"metadata.annotations.a: want a string, got json.Number 1"},
		{"missing required field", `{apiVersion: apps/v1, kind: Deployment, metadata: {name: x}, spec: {template: {spec: {containers: [{image: i}]}}}}`,
			"spec.selector: required field is missing"},
		{"an object where a list goes", `{apiVersion: v1, kind: Pod, metadata: {name: x}, spec: {containers: {name: c}}}`,
			"spec.containers: want an array, got an object"},
		{"a kind this version lacks", `{apiVersion: example.com/v1, kind: Widget, metadata: {name: x}}`,
			"no schema for this kind"},
		{"a bad CRD object", `{apiVersion: topolane.io/v1alpha1, kind: NodeTopology, metadata: {name: x, labels: {a: 1}}, status: {schemaVersion: 0, topology: {gpus: [], nics: []}}}`,
			"status.schemaVersion: 0 is below the minimum 1"},
		{"a CRD object's metadata", `{apiVersion: topolane.io/v1alpha1, kind: NodeTopology, metadata: {name: x, labels: {a: 1}}}`,
			"metadata.labels.a: want a string"},
		{"a CRD's enum", `{apiVersion: monitoring.coreos.com/v1, kind: ServiceMonitor, metadata: {name: x}, spec: {selector: {}, endpoints: [{scheme: ftp}]}}`,
			"spec.endpoints[0].scheme"},
	}
	for _, version := range KubernetesVersions {
		v := validator(t, version)
		for _, tt := range tests {
			t.Run(version+"/"+tt.name, func(t *testing.T) {
				objs, err := Objects(tt.doc)
				if err != nil || len(objs) != 1 {
					t.Fatalf("%v %v", objs, err)
				}
				errs := v.Validate(objs[0])
				var msgs []string
				for _, e := range errs {
					msgs = append(msgs, e.Error())
				}
				if !strings.Contains(strings.Join(msgs, "\n"), tt.want) {
					t.Errorf("errors %q, want one with %q", msgs, tt.want)
				}
			})
		}
	}
}

// TestValidatorAccepts checks the validator on objects the API server takes: quantities as
// numbers, int-or-string ports, free-form fields, CRD objects.
func TestValidatorAccepts(t *testing.T) {
	doc := `
apiVersion: v1
kind: Pod
metadata: {name: x, annotations: {a: "1"}}
spec:
  containers:
    - name: c
      image: i
      resources: {requests: {cpu: 1, memory: 1Gi}}
      livenessProbe: {httpGet: {port: 8080, path: /}}
      readinessProbe: {httpGet: {port: http, path: /}}
---
apiVersion: topolane.io/v1alpha1
kind: NodeTopology
metadata: {name: node-1}
status: {schemaVersion: 1, topology: {gpus: [], nics: []}}
`
	objs, err := Objects(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, version := range KubernetesVersions {
		for _, obj := range objs {
			if errs := validator(t, version).Validate(obj); len(errs) > 0 {
				t.Errorf("%s %s: %v", version, Name(obj), errs)
			}
		}
	}
}

// TestSupportedWindow keeps KubernetesVersions and the chart's window (kubeVersion and the
// scheduler's version check) the same.
func TestSupportedWindow(t *testing.T) {
	chart, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(chart), `kubeVersion: ">=1.33.0-0"`) {
		t.Errorf("Chart.yaml kubeVersion is not >=1.33.0-0, the oldest of %v", KubernetesVersions)
	}
	if _, err := helm().Template("v1.32.9"); err == nil || !strings.Contains(err.Error(), "incompatible with Kubernetes v1.32.9") {
		t.Errorf("1.32: %v", err)
	}
	if _, err := helm().Template("v1.38.0"); err == nil || !strings.Contains(err.Error(), "supports Kubernetes 1.33 to 1.37") {
		t.Errorf("1.38: %v", err)
	}
	for _, version := range KubernetesVersions {
		if _, err := helm().Template(version); err != nil {
			t.Errorf("%s: %v", version, err)
		}
	}
}
