// Package scenario reads a bench scenario (a cluster and a job trace, bench/scenarios/*.yaml)
// and generates both from its seed: the same file always gives the same cluster and trace.
package scenario

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"

	"sigs.k8s.io/yaml"

	"github.com/topolane/topolane/topology/placement"
	"github.com/topolane/topolane/topology/topologytest"
)

// Scenario is a scenario file.
type Scenario struct {
	Name  string      `json:"name"`
	Seed  uint64      `json:"seed"`
	Nodes []NodeGroup `json:"nodes"`
	Jobs  JobMix      `json:"jobs"`
}

// NodeGroup is Count nodes built like a fixture machine (see topologytest: dgx-h100,
// pcie-server, pcie-one-nic, single-socket, no-sriov, no-gpu).
type NodeGroup struct {
	Machine string `json:"machine"`
	Count   int    `json:"count"`
}

// JobMix describes the trace: Poisson arrivals, GPU counts drawn by weight, uniform durations,
// and a share of pods that set `topolane.io/nic` themselves.
type JobMix struct {
	Count              int            `json:"count"`
	MeanArrivalSeconds float64        `json:"meanArrivalSeconds"`
	GPUWeights         map[int]int    `json:"gpuWeights"`
	MinSeconds         float64        `json:"minSeconds"`
	MaxSeconds         float64        `json:"maxSeconds"`
	NICOverrides       map[string]int `json:"nicOverrides"` // mode -> per mille of pods
}

// Node is one generated node.
type Node struct {
	Name    string
	Machine topologytest.Machine
}

// Job is one generated pod.
type Job struct {
	Name     string
	Arrival  float64 // seconds from the start
	Duration float64 // seconds
	GPUs     int
	NIC      string // the pod's topolane.io/nic annotation; empty when it sets none
}

// Load reads and checks a scenario file.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading scenario: %w", err)
	}
	var s Scenario
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	return &s, nil
}

func (s *Scenario) validate() error {
	machines := Machines()
	if len(s.Nodes) == 0 {
		return fmt.Errorf("no nodes: add a nodes list of {machine, count}")
	}
	for _, g := range s.Nodes {
		if _, ok := machines[g.Machine]; !ok {
			return fmt.Errorf("machine %q is not a fixture: use one of %v", g.Machine, sortedKeys(machines))
		}
		if g.Count <= 0 {
			return fmt.Errorf("machine %q: count %d, want at least 1", g.Machine, g.Count)
		}
	}
	j := s.Jobs
	switch {
	case j.Count <= 0:
		return fmt.Errorf("jobs.count is %d: want at least 1", j.Count)
	case j.MeanArrivalSeconds <= 0:
		return fmt.Errorf("jobs.meanArrivalSeconds is %v: want more than 0", j.MeanArrivalSeconds)
	case j.MinSeconds <= 0 || j.MaxSeconds < j.MinSeconds:
		return fmt.Errorf("jobs.minSeconds %v, maxSeconds %v: want 0 < min ≤ max", j.MinSeconds, j.MaxSeconds)
	case len(j.GPUWeights) == 0:
		return fmt.Errorf("jobs.gpuWeights is empty: give weights by GPU count, e.g. {1: 4, 8: 1}")
	}
	for gpus, w := range j.GPUWeights {
		if gpus <= 0 || w < 0 {
			return fmt.Errorf("jobs.gpuWeights: %d GPUs weight %d: want GPUs > 0 and weight ≥ 0", gpus, w)
		}
	}
	total := 0
	for mode, perMille := range j.NICOverrides {
		if _, err := placement.ParseMode(mode); err != nil {
			return fmt.Errorf("jobs.nicOverrides: %w", err)
		}
		total += perMille
	}
	if total > 1000 {
		return fmt.Errorf("jobs.nicOverrides add up to %d per mille: want at most 1000", total)
	}
	return nil
}

// Machines are the fixture machines a scenario may name: topologytest's, and the PCIe server
// with one NIC per socket (two GPUs per rail).
func Machines() map[string]topologytest.Machine {
	ms := topologytest.All()
	one := topologytest.PCIeServerOneNIC()
	ms[one.Name] = one
	return ms
}

// Cluster generates the nodes, named after their machine.
func (s *Scenario) Cluster() []Node {
	machines := Machines()
	var nodes []Node
	for _, g := range s.Nodes {
		for i := range g.Count {
			nodes = append(nodes, Node{Name: fmt.Sprintf("%s-%03d", g.Machine, i), Machine: machines[g.Machine]})
		}
	}
	return nodes
}

// Trace generates the jobs, by arrival.
func (s *Scenario) Trace() []Job {
	r := rand.New(rand.NewPCG(s.Seed, 0x70b01a4e))
	j := s.Jobs
	sizes := sortedKeys(j.GPUWeights)
	modes := sortedKeys(j.NICOverrides)
	jobs := make([]Job, j.Count)
	now := 0.0
	for i := range jobs {
		now += r.ExpFloat64() * j.MeanArrivalSeconds
		jobs[i] = Job{
			Name:     fmt.Sprintf("job-%04d", i),
			Arrival:  now,
			Duration: j.MinSeconds + r.Float64()*(j.MaxSeconds-j.MinSeconds),
			GPUs:     pick(r, sizes, func(g int) int { return j.GPUWeights[g] }),
			NIC:      override(r, modes, j.NICOverrides),
		}
	}
	return jobs
}

// pick draws one of keys with probability proportional to its weight.
func pick(r *rand.Rand, keys []int, weight func(int) int) int {
	total := 0
	for _, k := range keys {
		total += weight(k)
	}
	n := r.IntN(max(total, 1))
	for _, k := range keys {
		if n -= weight(k); n < 0 {
			return k
		}
	}
	return keys[len(keys)-1]
}

func override(r *rand.Rand, modes []string, perMille map[string]int) string {
	n := r.IntN(1000)
	for _, m := range modes {
		if n -= perMille[m]; n < 0 {
			return m
		}
	}
	return ""
}

func sortedKeys[K int | string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool { return keys[a] < keys[b] })
	return slices.Clip(keys)
}
