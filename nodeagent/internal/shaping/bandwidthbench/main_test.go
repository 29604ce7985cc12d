package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/topolane/topolane/nodeagent/internal/shaping/shapingtest"
)

// TestShortRun is `make bench-bandwidth` cut short, so that it cannot rot: every flow runs and
// the table and plot come out. It asserts no figure: CI's CPUs are shared.
func TestShortRun(t *testing.T) {
	shapingtest.RequireRoot(t)
	plot := filepath.Join(t.TempDir(), "bandwidth.svg")
	var out bytes.Buffer
	err := run(context.Background(), []string{"--duration", "1200ms", "--burst", "20M", "--runs", "1", "--plot", plot}, &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{"topolane, veth end in the pod (PF/VF)", "topolane, macvlan in the pod", "CNI bandwidth plugin, host veth"} {
		if strings.Count(out.String(), row) != 2 {
			t.Errorf("want an egress and an ingress row for %q:\n%s", row, &out)
		}
	}
	if svg, err := os.ReadFile(plot); err != nil || !bytes.HasPrefix(svg, []byte("<svg")) || bytes.Count(svg, []byte("<polyline")) != 6 {
		t.Errorf("plot %s: %v\n%.300s", plot, err, svg)
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"--runs", "0"}, {"--average", "fast"}, {"--peak", "10M"}} {
		if err := run(context.Background(), args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
