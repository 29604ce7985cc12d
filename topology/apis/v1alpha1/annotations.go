package v1alpha1

import (
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/types"

	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/placement"
)

// Pod annotations.
const (
	// AnnotationNIC is set by the user: auto (default), pf, vf or none.
	AnnotationNIC = "topolane.io/nic"
	// AnnotationNICs is set by the user: rails (default: a device per rail of the pod's GPUs) or
	// one (a single device).
	AnnotationNICs = "topolane.io/nics"
	// AnnotationGDR is set by the user: preferred (default), required or off.
	AnnotationGDR = "topolane.io/gdr"
	// AnnotationAllocation is set by the extender at bind time, on the Binding, whose
	// annotations the API server copies onto the pod: the devices reserved for the pod. The
	// extender rebuilds its ledger from it after a restart.
	AnnotationAllocation = "topolane.io/allocation"
)

// ParseRequest reads what a pod with gpus GPUs asks of topolane from its annotations.
func ParseRequest(annotations map[string]string, gpus int) (placement.Request, error) {
	req := placement.Request{GPUs: gpus}
	var err error
	if req.Mode, err = placement.ParseMode(annotations[AnnotationNIC]); err != nil {
		return req, err
	}
	if req.NICs, err = placement.ParseNICs(annotations[AnnotationNICs]); err != nil {
		return req, err
	}
	req.GDR, err = placement.ParseGDR(annotations[AnnotationGDR])
	return req, err
}

// Allocation is the value of AnnotationAllocation: the devices reserved for one pod on one node.
type Allocation struct {
	Node string `json:"node"`
	// PodUID is the pod's own UID: an annotation copied onto another pod counts for nothing.
	PodUID  types.UID `json:"podUID"`
	Devices []Device  `json:"devices"`
}

// Device is one reserved device.
type Device struct {
	// Rail is the index of the rail it serves; -1 for a pod with topolane.io/nics: one.
	Rail   int            `json:"rail"`
	Kind   placement.Kind `json:"kind"`
	NIC    string         `json:"nic"`
	Device string         `json:"device"`
	// GPUs are the GPUs the extender expects it to serve; kubelet decides, the agent reports.
	GPUs []string `json:"gpus,omitempty"`
}

// maxDevices bounds a parsed allocation: no node has more NICs than this.
const maxDevices = 64

// ParseAllocation reads and checks an allocation annotation's syntax; whether it fits the node
// and the pod is for the ledger to say.
func ParseAllocation(s string) (Allocation, error) {
	var a Allocation
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return a, fmt.Errorf("%s is not JSON: %w", AnnotationAllocation, err)
	}
	switch {
	case a.Node == "":
		return a, fmt.Errorf("%s names no node", AnnotationAllocation)
	case a.PodUID == "":
		return a, fmt.Errorf("%s names no podUID", AnnotationAllocation)
	case len(a.Devices) == 0 || len(a.Devices) > maxDevices:
		return a, fmt.Errorf("%s lists %d devices: want 1 to %d", AnnotationAllocation, len(a.Devices), maxDevices)
	}
	for _, d := range a.Devices {
		if err := d.check(); err != nil {
			return a, fmt.Errorf("%s: %w", AnnotationAllocation, err)
		}
	}
	return a, nil
}

func (d Device) check() error {
	switch d.Kind {
	case placement.KindPF, placement.KindVF, placement.KindMacvlan:
	default:
		return fmt.Errorf("device kind %q: want pf, vf or macvlan", d.Kind)
	}
	for _, addr := range append([]string{d.NIC, d.Device}, d.GPUs...) {
		if norm, err := topology.NormalizePCIAddress(addr); err != nil || norm != addr {
			return fmt.Errorf("names device %q: want a PCI address such as 0000:1a:00.0", addr)
		}
	}
	if d.Rail < -1 {
		return fmt.Errorf("rail %d: want -1 or more", d.Rail)
	}
	return nil
}

// String encodes the allocation for the annotation.
func (a Allocation) String() string {
	b, _ := json.Marshal(a)
	return string(b)
}

// Held is what the allocation holds, for placement.Usage.
func (a Allocation) Held(pod string) []placement.Allocation {
	out := make([]placement.Allocation, len(a.Devices))
	for i, d := range a.Devices {
		out[i] = placement.Allocation{Pod: pod, Kind: d.Kind, NIC: d.NIC, Device: d.Device, GPUs: d.GPUs}
	}
	return out
}

// AllocationOf turns the devices planned for a pod into its annotation.
func AllocationOf(node string, uid types.UID, choices []placement.Choice) Allocation {
	a := Allocation{Node: node, PodUID: uid, Devices: make([]Device, len(choices))}
	for i, c := range choices {
		a.Devices[i] = Device{Rail: c.Rail, Kind: c.Kind, NIC: c.NIC, Device: c.Device, GPUs: c.GPUs}
	}
	return a
}
