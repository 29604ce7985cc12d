package charttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// Helm runs a pinned helm binary.
type Helm struct {
	Path  string // the binary
	Chart string // the chart's directory
}

// Template renders the chart with `helm template`, always for a given Kubernetes version (helm
// would otherwise render as if the cluster were its own default), with the CRDs and the
// optional APIs (Multus, the Prometheus Operator) available, plus args.
func (h Helm) Template(kubeVersion string, args ...string) (string, error) {
	base := []string{"template", "topolane", h.Chart, "--namespace", "topolane-system", "--kube-version", kubeVersion, "--include-crds",
		"--api-versions", "k8s.cni.cncf.io/v1/NetworkAttachmentDefinition", "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor"}
	return h.run(append(base, args...)...)
}

// TemplateWithout renders like Template but offers only the cluster's built-in APIs.
func (h Helm) TemplateWithout(kubeVersion string, args ...string) (string, error) {
	return h.run(append([]string{"template", "topolane", h.Chart, "--namespace", "topolane-system", "--kube-version", kubeVersion}, args...)...)
}

// Lint runs `helm lint --strict` for a Kubernetes version.
func (h Helm) Lint(kubeVersion string, args ...string) (string, error) {
	return h.run(append([]string{"lint", "--strict", h.Chart, "--kube-version", kubeVersion}, args...)...)
}

func (h Helm) run(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(h.Path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String(), nil
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// Objects splits a YAML stream into objects, numbers kept as json.Number, dropping empty
// documents (comments only).
func Objects(stream string) ([]map[string]any, error) {
	var out []map[string]any
	for i, doc := range docSeparator.Split(stream, -1) {
		data, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			return nil, fmt.Errorf("document %d: %w\n%s", i, err, doc)
		}
		if string(data) == "null" {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			return nil, fmt.Errorf("document %d is not an object: %w\n%s", i, err, doc)
		}
		out = append(out, obj)
	}
	return out, nil
}

// Name is an object's kind/name, for messages.
func Name(obj map[string]any) string {
	meta, _ := obj["metadata"].(map[string]any)
	return fmt.Sprintf("%v/%v", obj["kind"], meta["name"])
}
