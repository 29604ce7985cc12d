package v1alpha1_test

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/topolane/topolane/topology/apis/v1alpha1"
)

// schema is the part of an OpenAPI schema that says which fields exist.
type schema struct {
	Properties map[string]schema `json:"properties"`
	Items      *schema           `json:"items"`
}

// TestCRDSchemaHasEveryField: the API server prunes fields its schema does not list, so every
// field of NodeTopologyStatus must be in the CRD, or the agent publishes it and nobody reads it.
func TestCRDSchemaHasEveryField(t *testing.T) {
	data, err := os.ReadFile("../../../charts/topolane/crds/nodetopologies.topolane.io.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Name   string
				Schema struct {
					OpenAPIV3Schema schema `json:"openAPIV3Schema"`
				}
			}
		}
	}
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatal(err)
	}
	for _, v := range crd.Spec.Versions {
		if v.Name == v1alpha1.Version {
			status := v.Schema.OpenAPIV3Schema.Properties["status"]
			checkFields(t, "status", reflect.TypeOf(v1alpha1.NodeTopologyStatus{}), status)
			return
		}
	}
	t.Fatalf("the CRD has no version %s", v1alpha1.Version)
}

var marshaler = reflect.TypeOf((*json.Marshaler)(nil)).Elem()

// checkFields walks a Go type beside its schema; a type that encodes itself (Levels) is the
// schema's business.
func checkFields(t *testing.T, path string, typ reflect.Type, s schema) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ.Implements(marshaler) || reflect.PointerTo(typ).Implements(marshaler) {
		return
	}
	switch typ.Kind() {
	case reflect.Slice:
		if s.Items == nil {
			t.Errorf("%s is a list in Go, the CRD has no items for it", path)
			return
		}
		checkFields(t, path+"[]", typ.Elem(), *s.Items)
	case reflect.Struct:
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" { // embedded, inline
				checkFields(t, path, f.Type, s)
				continue
			}
			sub, ok := s.Properties[name]
			if !ok {
				t.Errorf("%s.%s is not in the CRD schema: the API server would drop it", path, name)
				continue
			}
			checkFields(t, path+"."+name, f.Type, sub)
		}
	}
}
