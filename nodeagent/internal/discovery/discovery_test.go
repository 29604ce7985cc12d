package discovery_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolane/topolane/nodeagent/internal/discovery"
	"github.com/topolane/topolane/nodeagent/internal/sysfs"
	"github.com/topolane/topolane/nodeagent/internal/sysfs/sysfstest"
	"github.com/topolane/topolane/nodeagent/internal/topotable"
	"github.com/topolane/topolane/topology/topologytest"
)

var update = flag.Bool("update", false, "rewrite the golden tables and the fixture trees under nodeagent/testdata")

const testdata = "../../testdata"

// writeMachine lays a fixture out in a temp dir and returns the sysfs root.
func writeMachine(t testing.TB, m topologytest.Machine) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "sys")
	if err := sysfstest.Write(root, m); err != nil {
		t.Fatal(err)
	}
	return root
}

func discover(t testing.TB, root, name string) *discovery.Result {
	t.Helper()
	res, err := discovery.Discover(discovery.Options{NodeName: name, Sysfs: sysfs.Paths{Root: root}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestDiscoverFixtures: discovery of every fixture tree finds exactly the machine it was
// written from, without a warning.
func TestDiscoverFixtures(t *testing.T) {
	for name, m := range topologytest.All() {
		t.Run(name, func(t *testing.T) {
			res := discover(t, writeMachine(t, m), m.Name)
			if len(res.Warnings) > 0 {
				t.Errorf("warnings: %q", res.Warnings)
			}
			if diff := cmp.Diff(m.Node(), res.Node); diff != "" {
				t.Errorf("discovered node differs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTables compares the table of every fixture with its golden file; the golden files were
// checked by hand against the fixtures' layouts (see topologytest) and nvidia-smi's legend.
func TestTables(t *testing.T) {
	for name, m := range topologytest.All() {
		t.Run(name, func(t *testing.T) {
			res := discover(t, writeMachine(t, m), m.Name)
			var got bytes.Buffer
			if err := topotable.Write(&got, res.Node, res.Notes); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join(testdata, "tables", name+".txt")
			if *update {
				writeFile(t, golden, got.Bytes())
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestTables -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got.String()); diff != "" {
				t.Errorf("table differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

// TestFixtureTreesCurrent keeps the trees under testdata/sysfs (used by README's discover
// examples) identical to what the fixtures write today.
func TestFixtureTreesCurrent(t *testing.T) {
	for name, m := range topologytest.All() {
		dir := filepath.Join(testdata, "sysfs", name)
		if *update {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := sysfstest.Write(dir, m); err != nil {
				t.Fatal(err)
			}
		}
		want := snapshot(t, writeMachine(t, m))
		if diff := cmp.Diff(want, snapshot(t, dir)); diff != "" {
			t.Errorf("%s is stale (go test ./nodeagent/internal/discovery -update rewrites it):\n%s", dir, diff)
		}
	}
}

// snapshot maps every path under root to its content or link target.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(path)
			files[rel] = "-> " + target
			return err
		case !info.IsDir():
			b, err := os.ReadFile(path)
			files[rel] = string(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestNodeWithoutGPUs(t *testing.T) {
	res := discover(t, writeMachine(t, topologytest.NoGPU()), "cpu")
	if len(res.Node.GPUs) != 0 || !contains(res.Notes, "no NVIDIA GPUs on this node") {
		t.Errorf("want no GPUs and a note saying so, got %d GPUs, notes %q", len(res.Node.GPUs), res.Notes)
	}
}

func contains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
