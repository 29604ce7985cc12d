package discovery_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/topolane/topolane/nodeagent/internal/sysfs"
	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/topologytest"
)

func TestDiscoverBadInput(t *testing.T) {
	const pf, vf1, gpu0 = "0000:1a:00.0", "0000:1a:00.3", "0000:1b:00.0"
	dev := func(root, addr string, elem ...string) string {
		return sysfs.Paths{Root: root}.PCIDevice(addr, elem...)
	}
	tests := []struct {
		name   string
		break_ func(t *testing.T, root string)
		want   string // a warning containing this
		check  func(t *testing.T, n *topology.Node)
	}{
		{"truncated numa_node", func(t *testing.T, root string) { write(t, dev(root, gpu0, "numa_node"), "") },
			"numa_node: \"\" is not a number", func(t *testing.T, n *topology.Node) {
				if n.GPU(gpu0).NUMANode != topology.NoNUMA {
					t.Error("a bad numa_node should read as unknown")
				}
			}},
		{"numa_node is a directory", func(t *testing.T, root string) { replaceWithDir(t, dev(root, gpu0, "numa_node")) },
			"numa_node", nil},
		{"missing modalias skips that function alone", func(t *testing.T, root string) { remove(t, dev(root, gpu0, "modalias")) },
			gpu0 + "/modalias", func(t *testing.T, n *topology.Node) {
				if len(n.GPUs) != 7 || len(n.NICs) != 9 {
					t.Errorf("want the other 7 GPUs and 9 NICs, got %d and %d", len(n.GPUs), len(n.NICs))
				}
			}},
		{"truncated modalias", func(t *testing.T, root string) { write(t, dev(root, gpu0, "modalias"), "pci:v000010DEd0000") },
			"not a PCI modalias", nil},
		{"dangling device link", func(t *testing.T, root string) { remove(t, filepath.Join(root, "devices", "pci0000:17")) },
			"skipping PCI function 0000:17:01.0", func(t *testing.T, n *topology.Node) {
				if n.GPU(gpu0) != nil || n.NIC(pf) != nil {
					t.Error("functions whose directory is gone should be left out")
				}
			}},
		{"VF whose PF is missing", func(t *testing.T, root string) { remove(t, dev(root, pf)) },
			"VF 0000:1a:00.2 is left out: its PF 0000:1a:00.0", nil},
		{"virtfn link to a missing VF", func(t *testing.T, root string) { remove(t, dev(root, vf1)) },
			"VF 1 of 0000:1a:00.0 is left out", func(t *testing.T, n *topology.Node) {
				if got := len(n.NIC(pf).SRIOV.VFs); got != 3 {
					t.Errorf("want the 3 VFs that are there, got %d", got)
				}
			}},
		{"garbage sriov_numvfs", func(t *testing.T, root string) { write(t, dev(root, pf, "sriov_numvfs"), "four") },
			"sriov_numvfs: \"four\" is not a number", func(t *testing.T, n *topology.Node) {
				if n.NIC(pf).SRIOV != nil {
					t.Error("a NIC whose SR-IOV state cannot be read should be treated as without SR-IOV")
				}
			}},
		{"more VFs than total", func(t *testing.T, root string) { write(t, dev(root, pf, "sriov_numvfs"), "99") },
			"says 99 VFs but", nil},
		{"path outside the device tree", func(t *testing.T, root string) {
			link := dev(root, gpu0)
			remove(t, link)
			if err := os.Symlink("../../../elsewhere/"+gpu0, link); err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(root, "elsewhere", gpu0, "modalias"), "pci:v000010DEd00002330sv000010DEsd00002330bc03sc02i00")
		}, "outside", func(t *testing.T, n *topology.Node) {
			if l := n.Level(gpu0, pf); l != topology.Unknown {
				t.Errorf("a GPU without a PCIe path should have unknown levels, got %v", l)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeMachine(t, topologytest.DGXH100())
			tt.break_(t, root)
			res := discover(t, root, "dgx")
			if !contains(res.Warnings, tt.want) {
				t.Errorf("no warning containing %q in %q", tt.want, res.Warnings)
			}
			if tt.check != nil {
				tt.check(t, res.Node)
			}
		})
	}
}

func TestDiscoverEmptyRoot(t *testing.T) {
	res := discover(t, t.TempDir(), "empty")
	if !contains(res.Warnings, "no PCI functions under") {
		t.Errorf("warnings = %q", res.Warnings)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
}

func replaceWithDir(t *testing.T, path string) {
	t.Helper()
	remove(t, path)
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
}
