package v1alpha1

import (
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/topolane/topolane/topology"
)

// FromUnstructured converts what a dynamic informer holds. It goes through JSON because the
// topology's levels encode themselves as text, which the reflective converter does not honour.
func FromUnstructured(u *unstructured.Unstructured) (*NodeTopology, error) {
	data, err := json.Marshal(u.Object)
	if err != nil {
		return nil, fmt.Errorf("NodeTopology %s: %w", u.GetName(), err)
	}
	var nt NodeTopology
	if err := json.Unmarshal(data, &nt); err != nil {
		return nil, fmt.Errorf("NodeTopology %s is malformed: %w", u.GetName(), err)
	}
	if nt.Status.SchemaVersion != topology.SchemaVersion {
		return nil, fmt.Errorf("NodeTopology %s has schemaVersion %d, this build reads %d: run the same topolane version on agents and extender",
			u.GetName(), nt.Status.SchemaVersion, topology.SchemaVersion)
	}
	return &nt, nil
}

// ToUnstructured converts for a dynamic client.
func ToUnstructured(nt *NodeTopology) (*unstructured.Unstructured, error) {
	data, err := json.Marshal(nt)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal(data, &u.Object); err != nil {
		return nil, err
	}
	u.SetAPIVersion(Group + "/" + Version)
	u.SetKind(Kind)
	return u, nil
}
