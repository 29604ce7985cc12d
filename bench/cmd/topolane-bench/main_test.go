package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

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

// TestThroughput is the throughput measurement at a size CI affords; it checks the measurement
// works, not the figure.
func TestThroughput(t *testing.T) {
	out, err := capture(t, "throughput", "--nodes", "200", "--pods", "20")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`ratio\s+\d+\.\d\d`).MatchString(out) || !strings.Contains(out, "/bind") {
		t.Errorf("throughput output:\n%s", out)
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{{}, {"fly"}, {"placement", "--scenario", "/nonexistent.yaml"}, {"throughput", "--nodes", "0"}, {"demo", "--jobs", "0"}} {
		if _, err := capture(t, args...); err == nil {
			t.Errorf("%q: want an error", args)
		}
	}
}
