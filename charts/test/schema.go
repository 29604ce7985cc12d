// Package charttest checks topolane's Helm chart offline: helm lint and helm template for every
// supported Kubernetes minor, every rendered object validated strictly against that minor's
// OpenAPI schema (from the k8s.io/kubernetes module) and the CRDs it needs, and table tests of
// the templates.
package charttest

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
)

// Schema is the part of an OpenAPI v2 definition, or of a CRD's openAPIV3Schema, that
// validation needs.
type Schema struct {
	Ref                  string             `json:"$ref"`
	Type                 string             `json:"type"`
	Format               string             `json:"format"`
	Properties           map[string]*Schema `json:"properties"`
	AdditionalProperties *Additional        `json:"additionalProperties"`
	Items                *Schema            `json:"items"`
	Required             []string           `json:"required"`
	Enum                 []any              `json:"enum"`
	Pattern              string             `json:"pattern"`
	Minimum              *float64           `json:"minimum"`
	Maximum              *float64           `json:"maximum"`
	AllOf                []*Schema          `json:"allOf"`
	AnyOf                []*Schema          `json:"anyOf"`
	PreserveUnknown      bool               `json:"x-kubernetes-preserve-unknown-fields"`
	IntOrString          bool               `json:"x-kubernetes-int-or-string"`
	GVK                  []GVK              `json:"x-kubernetes-group-version-kind"`
}

// Additional is additionalProperties: a schema, or true/false.
type Additional struct {
	Allowed bool
	Schema  *Schema
}

// UnmarshalJSON reads either form.
func (a *Additional) UnmarshalJSON(data []byte) error {
	if err := json.Unmarshal(data, &a.Allowed); err == nil {
		return nil
	}
	a.Allowed = true
	return json.Unmarshal(data, &a.Schema)
}

// GVK names a kind.
type GVK struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

func (g GVK) String() string {
	if g.Group == "" {
		return g.Version + "/" + g.Kind
	}
	return g.Group + "/" + g.Version + "/" + g.Kind
}

const (
	refPrefix  = "#/definitions/"
	quantity   = "io.k8s.apimachinery.pkg.api.resource.Quantity"
	objectMeta = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
)

// Validator checks objects against one Kubernetes version's definitions and some CRDs.
type Validator struct {
	defs  map[string]*Schema
	kinds map[GVK]*Schema
	crds  map[GVK]bool
}

// NewValidator reads a Kubernetes swagger.json (OpenAPI v2).
func NewValidator(swagger []byte) (*Validator, error) {
	var doc struct {
		Definitions map[string]*Schema `json:"definitions"`
	}
	if err := json.Unmarshal(swagger, &doc); err != nil {
		return nil, fmt.Errorf("reading the OpenAPI document: %w", err)
	}
	if len(doc.Definitions) == 0 {
		return nil, fmt.Errorf("the OpenAPI document has no definitions")
	}
	v := &Validator{defs: doc.Definitions, kinds: map[GVK]*Schema{}, crds: map[GVK]bool{}}
	for _, s := range doc.Definitions {
		for _, g := range s.GVK {
			v.kinds[g] = s
		}
	}
	return v, nil
}

// AddCRD makes the kinds a CustomResourceDefinition (as JSON) serves known, with their schema.
func (v *Validator) AddCRD(crd []byte) error {
	var c struct {
		Kind string `json:"kind"`
		Spec struct {
			Group    string                `json:"group"`
			Names    struct{ Kind string } `json:"names"`
			Versions []struct {
				Name   string `json:"name"`
				Schema struct {
					OpenAPIV3Schema *Schema `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(crd, &c); err != nil {
		return err
	}
	if c.Kind != "CustomResourceDefinition" || len(c.Spec.Versions) == 0 {
		return fmt.Errorf("not a CustomResourceDefinition with versions: kind %q", c.Kind)
	}
	for _, ver := range c.Spec.Versions {
		if ver.Schema.OpenAPIV3Schema == nil {
			return fmt.Errorf("CRD %s/%s %s has no schema", c.Spec.Group, ver.Name, c.Spec.Names.Kind)
		}
		g := GVK{Group: c.Spec.Group, Version: ver.Name, Kind: c.Spec.Names.Kind}
		v.kinds[g], v.crds[g] = ver.Schema.OpenAPIV3Schema, true
	}
	return nil
}

// Has reports whether the validator knows a kind.
func (v *Validator) Has(g GVK) bool { return v.kinds[g] != nil }

// Validate checks one object: its kind must be known; unknown fields, wrong types and missing
// required fields are errors.
func (v *Validator) Validate(obj map[string]any) []error {
	g, err := gvkOf(obj)
	if err != nil {
		return []error{err}
	}
	s := v.kinds[g]
	if s == nil {
		return []error{fmt.Errorf("%s: no schema for this kind in this Kubernetes version", g)}
	}
	w := walker{v: v}
	if v.crds[g] {
		// A CRD's schema leaves metadata to the API server, which checks it as ObjectMeta.
		w.walk("metadata", &Schema{Ref: refPrefix + objectMeta}, obj["metadata"])
		rest := map[string]any{}
		for k, val := range obj {
			if k != "metadata" && k != "apiVersion" && k != "kind" {
				rest[k] = val
			}
		}
		obj = rest
	}
	w.walk("", s, obj)
	return w.errs
}

func gvkOf(obj map[string]any) (GVK, error) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if apiVersion == "" || kind == "" {
		return GVK{}, fmt.Errorf("object without apiVersion and kind")
	}
	group, version, found := strings.Cut(apiVersion, "/")
	if !found {
		group, version = "", apiVersion
	}
	return GVK{Group: group, Version: version, Kind: kind}, nil
}

type walker struct {
	v    *Validator
	errs []error
}

func (w *walker) fail(path, format string, args ...any) {
	if path == "" {
		path = "."
	}
	w.errs = append(w.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// walk checks val against s. A null value is what the API server reads as unset.
func (w *walker) walk(path string, s *Schema, val any) {
	if val == nil || s == nil {
		return
	}
	for s.Ref != "" {
		name := strings.TrimPrefix(s.Ref, refPrefix)
		if name == quantity {
			w.scalar(path, val, "a quantity", isString, isNumber)
			return
		}
		if s = w.v.defs[name]; s == nil {
			w.fail(path, "the schema refers to %s, which it lacks", name)
			return
		}
	}
	for _, sub := range s.AllOf {
		w.walk(path, sub, val)
	}
	if s.IntOrString || s.Format == "int-or-string" {
		w.scalar(path, val, "an integer or a string", isString, isInteger)
		return
	}
	if len(s.AnyOf) > 0 && !w.anyOf(path, s.AnyOf, val) {
		return
	}
	switch typ := s.Type; {
	case typ == "object" || (typ == "" && s.Properties != nil):
		w.object(path, s, val)
	case typ == "array":
		w.array(path, s, val)
	case typ == "string":
		w.scalar(path, val, "a string", isString)
	case typ == "integer":
		w.scalar(path, val, "an integer", isInteger)
	case typ == "number":
		w.scalar(path, val, "a number", isNumber)
	case typ == "boolean":
		w.scalar(path, val, "a boolean", isBool)
	}
	w.constraints(path, s, val)
}

// anyOf passes when val matches one of the alternatives.
func (w *walker) anyOf(path string, alts []*Schema, val any) bool {
	for _, alt := range alts {
		sub := walker{v: w.v}
		sub.walk(path, alt, val)
		if len(sub.errs) == 0 {
			return true
		}
	}
	w.fail(path, "matches none of the schema's alternatives")
	return false
}

func (w *walker) object(path string, s *Schema, val any) {
	m, ok := val.(map[string]any)
	if !ok {
		w.fail(path, "want an object, got %s", describe(val))
		return
	}
	for _, k := range sortedKeys(m) {
		sub := join(path, k)
		switch prop, add := s.Properties[k], s.AdditionalProperties; {
		case prop != nil:
			w.walk(sub, prop, m[k])
		case add != nil && add.Schema != nil:
			w.walk(sub, add.Schema, m[k])
		case add != nil && add.Allowed, s.PreserveUnknown, s.Properties == nil && add == nil:
			// a free-form object, or one that keeps unknown fields
		default:
			w.fail(sub, "unknown field %q", k)
		}
	}
	for _, r := range s.Required {
		if m[r] == nil {
			w.fail(join(path, r), "required field is missing")
		}
	}
}

func (w *walker) array(path string, s *Schema, val any) {
	list, ok := val.([]any)
	if !ok {
		w.fail(path, "want an array, got %s", describe(val))
		return
	}
	for i, item := range list {
		w.walk(fmt.Sprintf("%s[%d]", path, i), s.Items, item)
	}
}

func (w *walker) scalar(path string, val any, want string, accept ...func(any) bool) {
	for _, ok := range accept {
		if ok(val) {
			return
		}
	}
	w.fail(path, "want %s, got %s", want, describe(val))
}

// constraints checks enum, pattern, minimum and maximum where a schema has them (CRDs do).
func (w *walker) constraints(path string, s *Schema, val any) {
	if len(s.Enum) > 0 && !inEnum(s.Enum, val) {
		w.fail(path, "%v is not one of %v", val, s.Enum)
	}
	if str, ok := val.(string); ok && s.Pattern != "" {
		re, err := regexp.Compile(s.Pattern)
		if err != nil {
			w.fail(path, "the schema's pattern %q does not compile: %v", s.Pattern, err)
		} else if !re.MatchString(str) {
			w.fail(path, "%q does not match %s", str, s.Pattern)
		}
	}
	if n, ok := number(val); ok {
		if s.Minimum != nil && n < *s.Minimum {
			w.fail(path, "%v is below the minimum %v", n, *s.Minimum)
		}
		if s.Maximum != nil && n > *s.Maximum {
			w.fail(path, "%v is above the maximum %v", n, *s.Maximum)
		}
	}
}

func inEnum(enum []any, val any) bool {
	for _, e := range enum {
		if fmt.Sprint(e) == fmt.Sprint(val) {
			return true
		}
	}
	return false
}

func isString(v any) bool  { _, ok := v.(string); return ok }
func isBool(v any) bool    { _, ok := v.(bool); return ok }
func isNumber(v any) bool  { _, ok := number(v); return ok }
func isInteger(v any) bool { n, ok := number(v); return ok && n == math.Trunc(n) }

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	}
	return 0, false
}

func describe(v any) string {
	switch v.(type) {
	case string:
		return fmt.Sprintf("the string %q", v)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T %v", v, v)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
