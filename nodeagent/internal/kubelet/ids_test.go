package kubelet

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	gpu0 = "GPU-5d0a5e3c-8c37-8f6f-5c4b-5e9d2f3b4a1c"
	gpu1 = "GPU-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
	mig0 = "MIG-1f2e3d4c-5b6a-5978-8a9b-0c1d2e3f4a5b" // on gpu0
	mig1 = "MIG-2a3b4c5d-6e7f-8091-a2b3-c4d5e6f7a8b9" // on gpu1
)

// node is a resolver over two GPUs, with NVML knowing two MIG devices.
func node() Resolver {
	known := map[string]bool{gpu0: true, gpu1: true, "0000:1b:00.0": true}
	parents := map[string]string{mig0: gpu0, mig1: gpu1}
	return Resolver{
		Known: func(id string) bool { return known[id] },
		MIGParent: func(uuid string) (string, error) {
			if p, ok := parents[uuid]; ok {
				return p, nil
			}
			return "", errors.New("NVML does not know it")
		},
	}
}

func TestGPU(t *testing.T) {
	tests := []struct {
		id, want, err string
	}{
		{gpu0, gpu0, ""},
		{gpu0 + "::0", gpu0, ""},                   // time-slicing / MPS replica
		{gpu1 + "::12", gpu1, ""},                  // 〃
		{gpu0 + "-3", gpu0, ""},                    // older sharing plugins
		{mig0, gpu0, ""},                           // mig-strategy single or mixed
		{mig1 + "::2", gpu1, ""},                   // a shared MIG device
		{"MIG-" + gpu1 + "/1/0", gpu1, ""},         // before R470
		{"MIG-" + gpu1 + "/7/0::1", gpu1, ""},      // 〃, shared
		{"0000:1b:00.0", "0000:1b:00.0", ""},       // a plugin that gives PCI addresses
		{"0000:1B:00.0", "0000:1b:00.0", ""},       // 〃, NVML's case
		{gpu0 + "::x", "", "not a replica number"}, // replica not a number
		{gpu0 + "::", "", "not a replica number"},  // 〃
		{"MIG-00000000-0000-0000-0000-000000000000", "", "NVML does not know it"},
		{"GPU-00000000-0000-0000-0000-000000000000", "", "not one of this node's GPUs"},
		{"MIG-GPU-00000000-0000-0000-0000-000000000000/1/0", "", "not one of this node's GPUs"},
		{"0", "", "deviceIDStrategy=uuid"},
		{"0:1", "", "deviceIDStrategy=uuid"},
		{"nvidia0", "", "not a GPU id topolane knows"},
		{"GPU-5d0a5e3c", "", "not a GPU id topolane knows"},
		{"../../etc", "", "not a GPU id topolane knows"},
		{"", "", "not a GPU id topolane knows"},
	}
	r := node()
	for _, tt := range tests {
		got, err := r.GPU(tt.id)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("GPU(%q) = %q, %v; want %q", tt.id, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), tt.id)):
			t.Errorf("GPU(%q) = %q, %v; want an error naming the id and saying %q", tt.id, got, err, tt.err)
		}
	}
}

func TestMIGWithoutNVML(t *testing.T) {
	r := node()
	r.MIGParent = nil
	if _, err := r.GPU(mig0); err == nil || !strings.Contains(err.Error(), "needs NVML") {
		t.Errorf("MIG without NVML: %v", err)
	}
}

func TestGPUs(t *testing.T) {
	tests := []struct {
		name     string
		ids      []string
		want     []string
		unmapped []string
	}{
		{"init, sidecar and app containers repeat an id", []string{gpu0, gpu1, gpu0, gpu1, gpu0}, []string{gpu0, gpu1}, nil},
		{"replicas of one GPU", []string{gpu1 + "::0", gpu1 + "::3", gpu0 + "::1"}, []string{gpu1, gpu0}, nil},
		{"MIG devices of one GPU", []string{mig0, "MIG-" + gpu0 + "/2/0", gpu0}, []string{gpu0}, nil},
		{"some cannot be mapped", []string{"nvidia0", gpu0, "7", "nvidia0"}, []string{gpu0}, []string{"nvidia0", "7"}},
		{"none", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := node().GPUs(tt.ids)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("GPUs (-want +got):\n%s", diff)
			}
			for _, id := range tt.unmapped {
				if err == nil || strings.Count(err.Error(), `"`+id+`"`) != 1 {
					t.Errorf("error %v should name %q once", err, id)
				}
			}
			if len(tt.unmapped) == 0 && err != nil {
				t.Errorf("unexpected error %v", err)
			}
		})
	}
}
