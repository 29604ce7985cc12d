package charttest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"
)

// The chart's directory, and the Kubernetes version table tests render for by default.
var (
	chartDir    = filepath.Join(repoRoot(), "charts", "topolane")
	newest      = KubernetesVersions[len(KubernetesVersions)-1]
	validators  sync.Map // version -> *validatorOnce
	helmBinPath = os.Getenv("HELM")
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func TestMain(m *testing.M) {
	if helmBinPath == "" {
		fmt.Fprintln(os.Stderr, "HELM is not set: run `make chart-test`, which installs the pinned helm into .tools/ and passes it here")
		os.Exit(2)
	}
	os.Exit(m.Run())
}

func helm() Helm { return Helm{Path: helmBinPath, Chart: chartDir} }

type validatorOnce struct {
	once sync.Once
	v    *Validator
	err  error
}

// validator is the schema of a Kubernetes version plus the chart's CRD and the optional ones.
func validator(t *testing.T, version string) *Validator {
	t.Helper()
	vo, _ := validators.LoadOrStore(version, &validatorOnce{})
	o := vo.(*validatorOnce)
	o.once.Do(func() { o.v, o.err = loadValidator(version) })
	if o.err != nil {
		t.Fatal(o.err)
	}
	return o.v
}

func loadValidator(version string) (*Validator, error) {
	swagger, err := KubernetesSwagger(version).Read()
	if err != nil {
		return nil, err
	}
	v, err := NewValidator(swagger)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", version, err)
	}
	crds, err := filepath.Glob(filepath.Join(chartDir, "crds", "*.yaml"))
	if err != nil || len(crds) == 0 {
		return nil, fmt.Errorf("no CRD under %s/crds: %v", chartDir, err)
	}
	var docs [][]byte
	for _, path := range crds {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		docs = append(docs, data)
	}
	for _, f := range ExtraCRDs {
		data, err := f.Read()
		if err != nil {
			return nil, err
		}
		docs = append(docs, data)
	}
	for _, doc := range docs {
		objs, err := Objects(string(doc))
		if err != nil {
			return nil, err
		}
		for _, obj := range objs {
			if err := addCRD(v, obj); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

// addCRD validates a CRD against the version's own CustomResourceDefinition schema, then
// serves its kinds.
func addCRD(v *Validator, obj map[string]any) error {
	if errs := v.Validate(obj); len(errs) > 0 {
		return fmt.Errorf("CRD %s does not match apiextensions.k8s.io/v1: %v", Name(obj), errs)
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	return v.AddCRD(data)
}

// rendered is the chart rendered with some values.
type rendered struct {
	t    *testing.T
	objs []map[string]any
}

// render renders the chart for the newest supported version with --set style args.
func render(t *testing.T, args ...string) rendered {
	t.Helper()
	return renderFor(t, newest, args...)
}

func renderFor(t *testing.T, version string, args ...string) rendered {
	t.Helper()
	out, err := helm().Template(version, args...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Objects(out)
	if err != nil {
		t.Fatal(err)
	}
	return rendered{t: t, objs: objs}
}

// find returns the object of that kind whose name ends with suffix (names carry the release's
// prefix), into out.
func (r rendered) find(kind, suffix string, out any) bool {
	r.t.Helper()
	var found []map[string]any
	for _, obj := range r.objs {
		meta, _ := obj["metadata"].(map[string]any)
		if name, _ := meta["name"].(string); obj["kind"] == kind && strings.HasSuffix(name, suffix) {
			found = append(found, obj)
		}
	}
	switch len(found) {
	case 0:
		return false
	case 1:
		convert(r.t, found[0], out)
		return true
	}
	r.t.Fatalf("%d objects %s *%s", len(found), kind, suffix)
	return false
}

// must is find that fails the test when there is no such object.
func (r rendered) must(kind, suffix string, out any) {
	r.t.Helper()
	if !r.find(kind, suffix, out) {
		r.t.Fatalf("no %s named *%s rendered", kind, suffix)
	}
}

func (r rendered) all(kind string) []map[string]any {
	var out []map[string]any
	for _, obj := range r.objs {
		if obj["kind"] == kind {
			out = append(out, obj)
		}
	}
	return out
}

func convert(t *testing.T, in, out any) {
	t.Helper()
	data, err := json.Marshal(in)
	if err == nil {
		err = yaml.UnmarshalStrict(data, out)
	}
	if err != nil {
		t.Fatalf("%T: %v", out, err)
	}
}

// convertLoose converts into a struct that names only some fields.
func convertLoose(t *testing.T, in, out any) {
	t.Helper()
	data, err := json.Marshal(in)
	if err == nil {
		err = json.Unmarshal(data, out)
	}
	if err != nil {
		t.Fatalf("%T: %v", out, err)
	}
}
