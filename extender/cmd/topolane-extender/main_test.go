package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"--gpu-resources", "nvidia.com/gpu, example.com/gpu,", "--weight-nic", "3"})
	if err != nil {
		t.Fatal(err)
	}
	if got := o.resources(); len(got) != 2 || got[1] != corev1.ResourceName("example.com/gpu") || o.weights.NIC != 3 || o.listen != ":8888" {
		t.Errorf("options = %+v, resources %v", o, got)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert-file", "c.pem"}, "--tls-cert-file and --tls-key-file go together"},
		{[]string{"--weight-fit", "-1"}, "cannot be negative"},
		{[]string{"--bogus"}, "flag provided but not defined"},
		// The profiler has no authentication: never on an address other hosts reach.
		{[]string{"--profiling"}, "--profiling needs a loopback --listen"},
		{[]string{"--profiling", "--listen", "0.0.0.0:8888"}, "--profiling needs a loopback --listen"},
		{[]string{"--profiling", "--listen", "10.0.0.7:8888"}, "--profiling needs a loopback --listen"},
		{[]string{"--profiling", "--listen", "[::]:8888"}, "--profiling needs a loopback --listen"},
	} {
		if _, err := parseFlags(tt.args); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want %q", tt.args, err, tt.want)
		}
	}
}

func TestRunRefusesABadPolicyAndConfig(t *testing.T) {
	o, _ := parseFlags([]string{"--no-pf", "maybe"})
	if err := run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "want reject or fallback-vf") {
		t.Errorf("bad --no-pf: %v", err)
	}
	o, _ = parseFlags([]string{"--kubeconfig", "/nonexistent/kubeconfig"})
	if err := run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "pass --kubeconfig outside a cluster") {
		t.Errorf("missing kubeconfig: %v", err)
	}
}

func TestProfiling(t *testing.T) {
	if o, _ := parseFlags(nil); o.profiling {
		t.Error("--profiling is on by default")
	}
	for _, listen := range []string{"127.0.0.1:8888", "[::1]:8888", "localhost:8888"} {
		if o, err := parseFlags([]string{"--profiling", "--listen", listen}); err != nil || !o.profiling {
			t.Fatalf("--profiling --listen %s: %+v, %v", listen, o, err)
		}
	}
	verbs := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "verbs "+r.URL.Path) })
	srv := httptest.NewServer(withProfiling(verbs))
	defer srv.Close()
	for _, tt := range []struct{ method, path, want string }{
		{http.MethodGet, "/debug/pprof/heap?debug=1", "heap profile:"},
		{http.MethodGet, "/debug/pprof/goroutine?debug=1", "goroutine profile:"},
		{http.MethodPost, "/filter", "verbs /filter"},
		{http.MethodGet, "/readyz", "verbs /readyz"},
	} {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), tt.want) {
			t.Errorf("%s %s: %d %.60q, want %q", tt.method, tt.path, resp.StatusCode, body, tt.want)
		}
	}
}
