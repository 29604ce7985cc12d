package v1alpha1

import (
	"encoding/json"
	"fmt"

	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/placement"
)

// Pod annotations.
const (
	// AnnotationNIC is set by the user: auto (default), pf, vf or none.
	AnnotationNIC = "topolane.io/nic"
	// AnnotationAllocation is set by the extender at bind time, before the Binding: the device
	// reserved for the pod. The extender rebuilds its ledger from it after a restart.
	AnnotationAllocation = "topolane.io/allocation"
)

// Allocation is the value of AnnotationAllocation.
type Allocation struct {
	Node   string         `json:"node"`
	Kind   placement.Kind `json:"kind"`
	NIC    string         `json:"nic"`
	Device string         `json:"device"`
}

// ParseAllocation reads and checks an allocation annotation.
func ParseAllocation(s string) (Allocation, error) {
	var a Allocation
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return a, fmt.Errorf("%s is not JSON: %w", AnnotationAllocation, err)
	}
	switch a.Kind {
	case placement.KindPF, placement.KindVF, placement.KindMacvlan:
	default:
		return a, fmt.Errorf("%s has kind %q: want pf, vf or macvlan", AnnotationAllocation, a.Kind)
	}
	for _, addr := range []string{a.NIC, a.Device} {
		if norm, err := topology.NormalizePCIAddress(addr); err != nil || norm != addr {
			return a, fmt.Errorf("%s names device %q: want a PCI address such as 0000:1a:00.0", AnnotationAllocation, addr)
		}
	}
	if a.Node == "" {
		return a, fmt.Errorf("%s names no node", AnnotationAllocation)
	}
	return a, nil
}

// String encodes the allocation for the annotation.
func (a Allocation) String() string {
	b, _ := json.Marshal(a)
	return string(b)
}
