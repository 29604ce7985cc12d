package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/topolane/topolane/topology"
)

const fixtures = "../../testdata/sysfs/"

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestDiscoverTable(t *testing.T) {
	code, out, errOut := runCLI("discover", "--sysfs-root", fixtures+"dgx-h100", "--node-name", "dgx-1")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	want, err := os.ReadFile("../../testdata/tables/dgx-h100.txt")
	if err != nil {
		t.Fatal(err)
	}
	// The golden table was made with the fixture's name; names aside, the output is the same,
	// plus the note that pci.ids may be missing on this machine.
	got := strings.Replace(out, "Node dgx-1", "Node dgx-h100", 1)
	if !strings.HasPrefix(got, strings.TrimSuffix(string(want), "\n")) {
		t.Errorf("table differs from the golden file:\n%s", out)
	}
}

func TestDiscoverJSON(t *testing.T) {
	code, out, _ := runCLI("discover", "--sysfs-root", fixtures+"pcie-server", "-o", "json", "--node-name", "n1")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	n, err := topology.Decode([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if n.Name != "n1" || len(n.GPUs) != 4 || n.Level("0000:17:00.0", "0000:18:00.0") != topology.PHB {
		t.Errorf("decoded %s with %d GPUs, level %v", n.Name, len(n.GPUs), n.Level("0000:17:00.0", "0000:18:00.0"))
	}
	if !strings.Contains(out, `"devices": [`) || !strings.Contains(out, `"0000:18:00.2": "0000:18:00.0"`) || !strings.Contains(out, `"pciAddress": "0000:18:00.1"`) {
		t.Errorf("JSON should list the levels' devices, map each VF to its PF and carry each device's pciAddress:\n%s", out)
	}
	if !strings.Contains(out, `"rails": [`) {
		t.Error("JSON should carry the rails")
	}
}

func TestUsageErrors(t *testing.T) {
	state := t.TempDir()
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage:"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"discover", "-o", "yaml"}, 2, "want -o table or -o json"},
		{[]string{"discover", "extra"}, 2, "no arguments"},
		{[]string{"discover", "--nope"}, 2, "flag provided but not defined"},
		{[]string{"discover", "--sysfs-root", "/nonexistent"}, 1, "does not look like sysfs (no bus/pci): pass --sysfs-root the sysfs mount"},
		{[]string{"run", "--node-name", ""}, 2, "--node-name is empty"},
		{[]string{"run", "--period", "1ms"}, 2, "too short"},
		{[]string{"run", "extra"}, 2, "unexpected arguments"},
		{[]string{"run", "--state-dir", state, "--kubeconfig", "/nonexistent/kubeconfig"}, 1, "loading the Kubernetes client config"},
		{[]string{"run", "--socket", "/run/topolane/pods/agent.sock"}, 2, "inside --accel-dir /run/topolane/pods, which pods mount"},
		{[]string{"run", "--socket", "/srv/pods/x/agent.sock", "--accel-dir", "/srv/pods"}, 2, "inside --accel-dir"},
		{[]string{"run", "--netns-dirs", ""}, 2, "--netns-dirs and --cni-bin-dirs"},
		{[]string{"run", "--nri", "nri.sock"}, 2, "not an absolute path"},
	} {
		code, _, errOut := runCLI(tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", tt.args, code, errOut, tt.code, tt.want)
		}
	}
}
