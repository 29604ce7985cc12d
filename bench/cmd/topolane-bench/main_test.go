package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/topolane/topolane/bench/internal/realapi"
)

func TestMain(m *testing.M) {
	realapi.RunChildIfAsked()
	quietKlog()
	os.Exit(m.Run())
}

// capture runs the command with its standard output captured.
func capture(t *testing.T, args ...string) (string, error) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = f
	runErr := run(context.Background(), args)
	os.Stdout = stdout
	out, _ := os.ReadFile(f.Name())
	return string(out), runErr
}

func TestPlacementCommand(t *testing.T) {
	plot := filepath.Join(t.TempDir(), "p.svg")
	out, err := capture(t, "placement", "--scenario", filepath.Join(scenarioDir(), "small.yaml"), "--plot", plot)
	if err != nil {
		t.Fatal(err)
	}
	for _, policy := range []string{"topolane", "one-nic-per-pod", "default-like", "numa-only"} {
		if n := regexp.MustCompile(`(?m)^\s+`+policy+`\s`).FindAllStringIndex(out, -1); len(n) != 2 {
			t.Errorf("want a row for %s in both tables, got %d:\n%s", policy, len(n), out)
		}
	}
	if !regexp.MustCompile(`NIC bandwidth per GPU, topolane ÷ one-nic-per-pod: mean \d+\.\d\d×`).MatchString(out) {
		t.Errorf("no ratio of bandwidth per GPU:\n%s", out)
	}
	if svg, err := os.ReadFile(plot); err != nil || !strings.HasPrefix(string(svg), "<svg") {
		t.Errorf("plot %s: %v", plot, err)
	}
}

// TestDemo is `make demo`, shortened: the real kube-scheduler with and without the extender.
func TestDemo(t *testing.T) {
	out, err := capture(t, "demo", "--jobs", "8")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`job-0007`,
		`job-0002\s+8\s+-\s+dgx-h100-\d+\s+8×pf\s+PIX`, // an 8-GPU pod gets the PF of each of its 8 rails
		`topolane\s+\d+/8`,
		`one-nic-per-pod\s+\d+\s+\d+\.\d`, // the network table
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("demo output has no %q:\n%s", want, out)
		}
	}
}

// TestThroughput is the throughput and memory measurement at a size CI affords: the real
// kube-apiserver, kube-scheduler and topolane-extender binary, 200 nodes, 2,000 bound pods, 20
// pods for each scheduler. It checks that the measurement runs and prints every figure (the
// command itself fails unless the extender counts the pods and allocations the bench wrote),
// not the figures.
func TestThroughput(t *testing.T) {
	out, err := capture(t, "throughput", "--nodes", "200", "--pods", "20", "--bound-pods", "2000")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`DGX H100 \d+ bytes of JSON`,
		`RSS +\d+\.\d MiB +Go heap in use +\d+\.\d MiB`,
		`without the extender +\d+\.\d pods/s .* attempt p50 +\d+\.\d ms +p99 +\d+\.\d ms \(20\)`,
		`with topolane +\d+\.\d pods/s .* attempt p50 +\d+\.\d ms +p99 +\d+\.\d ms \(20\)`,
		`ratio +\d+\.\d\d`,
		`with topolane +rounds: \d+\.\d, \d+\.\d pods/s`,
		`with topolane +\d+\.\d +\d+\.\d +\d+\.\d`, // CPU per pod
		`with topolane +scheduling attempts: .*scheduled 20`,
		`binds: .*ok 20`,
		`bind +p50 +\d+\.\d\d ms +p99 +\d+\.\d\d ms +\(\d+ calls\)`, // a bind that lost a race is retried
		`filter +p50 .*\(\d+ calls\)`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("throughput output has no %q:\n%s", want, out)
		}
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{{}, {"fly"}, {"placement", "--scenario", "/nonexistent.yaml"}, {"throughput", "--nodes", "0"}, {"throughput", "--bound-pods", "-1"}, {"throughput", "--rounds", "0"}, {"demo", "--jobs", "0"}} {
		if _, err := capture(t, args...); err == nil {
			t.Errorf("%q: want an error", args)
		}
	}
}
