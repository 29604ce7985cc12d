package scenario

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestShippedScenarios(t *testing.T) {
	files, _ := filepath.Glob("../../scenarios/*.yaml")
	if len(files) == 0 {
		t.Fatal("no scenario files under bench/scenarios")
	}
	for _, f := range files {
		s, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(s.Trace()), s.Jobs.Count; got != want {
			t.Errorf("%s: %d jobs, want %d", f, got, want)
		}
		if !reflect.DeepEqual(s.Trace(), s.Trace()) || !reflect.DeepEqual(s.Cluster(), s.Cluster()) {
			t.Errorf("%s: the same seed gave two different traces or clusters", f)
		}
	}
}

func TestTraceFollowsTheMix(t *testing.T) {
	s := &Scenario{Seed: 1, Jobs: JobMix{Count: 4000, MeanArrivalSeconds: 10, GPUWeights: map[int]int{1: 3, 8: 1}, MinSeconds: 5, MaxSeconds: 50, NICOverrides: map[string]int{"vf": 100}}}
	counts := map[int]int{}
	overrides, last := 0, 0.0
	for _, j := range s.Trace() {
		counts[j.GPUs]++
		if j.NIC == "vf" {
			overrides++
		}
		if j.Arrival < last || j.Duration < 5 || j.Duration > 50 {
			t.Fatalf("job %+v: arrivals must grow, durations stay in [5, 50]", j)
		}
		last = j.Arrival
	}
	if share := float64(counts[1]) / 4000; share < 0.72 || share > 0.78 {
		t.Errorf("1-GPU share %.2f, want about 0.75 (weights 3:1)", share)
	}
	if share := float64(overrides) / 4000; share < 0.08 || share > 0.12 {
		t.Errorf("override share %.2f, want about 0.10 (100 per mille)", share)
	}
}

func TestBadScenarios(t *testing.T) {
	good := "name: x\nseed: 1\nnodes: [{machine: dgx-h100, count: 1}]\njobs: {count: 1, meanArrivalSeconds: 1, gpuWeights: {1: 1}, minSeconds: 1, maxSeconds: 2}\n"
	tests := []struct{ name, text, want string }{
		{"unknown machine", strings.Replace(good, "dgx-h100", "dgx-z", 1), `machine "dgx-z" is not a fixture`},
		{"no nodes", strings.Replace(good, "nodes: [{machine: dgx-h100, count: 1}]", "nodes: []", 1), "no nodes"},
		{"zero count", strings.Replace(good, "count: 1}]", "count: 0}]", 1), "count 0"},
		{"no jobs", strings.Replace(good, "{count: 1,", "{count: 0,", 1), "jobs.count is 0"},
		{"durations", strings.Replace(good, "maxSeconds: 2", "maxSeconds: 0.5", 1), "0 < min ≤ max"},
		{"unknown field", good + "extra: 1\n", "unknown field"},
		{"bad override", strings.Replace(good, "maxSeconds: 2}", "maxSeconds: 2, nicOverrides: {fast: 1}}", 1), "fast"},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "s.yaml")
		if err := os.WriteFile(path, []byte(tt.text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("a missing file must be an error")
	}
}
