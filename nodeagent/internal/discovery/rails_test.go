package discovery_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolane/topolane/nodeagent/internal/discovery"
	"github.com/topolane/topolane/nodeagent/internal/sysfs"
	"github.com/topolane/topolane/topology/topologytest"
)

// TestRailPins: --rails pins GPUs to NICs by PCI address, UUID or index and netdev; a pin this
// node cannot honour is left out with a warning saying why, and its GPU takes its nearest NIC.
func TestRailPins(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rails.yaml")
	pins := `# the fabric of this node is cabled GPU0 to the second NIC
"0": enp66s0np0
"0000:43:00.0": "0000:1a:00.0"
"9": enp66s0np0
"0000:52:00.0": eno3
`
	if err := os.WriteFile(file, []byte(pins), 0o600); err != nil {
		t.Fatal(err)
	}
	rails, err := discovery.ReadRails(file)
	if err != nil {
		t.Fatal(err)
	}
	res, err := discovery.Discover(discovery.Options{NodeName: "dgx", Sysfs: sysfs.Paths{Root: filepath.Join(testdata, "sysfs", "dgx-h100")}, Rails: rails})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range res.Node.Rails[:3] {
		got[strings.Join(r.GPUs, ",")] = r.NIC
	}
	want := map[string]string{"0000:1b:00.0": "0000:42:00.0", "0000:43:00.0": "0000:1a:00.0", "0000:52:00.0": "0000:51:00.0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rails (-want +got):\n%s", diff)
	}
	warnings := strings.Join(res.Warnings, "\n")
	for _, w := range []string{`GPU "9" is not a PCI address, UUID or index of this node's 8 GPUs`, "0000:0c:00.0, which has no RDMA device"} {
		if !strings.Contains(warnings, w) {
			t.Errorf("warnings lack %q:\n%s", w, warnings)
		}
	}
}

// TestRailPinOfANICInAPod: a pin names a NIC by its netdev, and that netdev is in a pod (the
// whole PF was given to one): rediscovery, which runs every period and after every DEL, still
// honours the pin by the name the NIC had in the host, as --nics globs do. Otherwise the rail
// would move to the GPU's nearest NIC, and be published so, for as long as the pod runs.
func TestRailPinOfANICInAPod(t *testing.T) {
	root := writeMachine(t, topologytest.DGXH100())
	if err := os.RemoveAll(sysfs.Paths{Root: root}.PCIDevice("0000:42:00.0", "net")); err != nil {
		t.Fatal(err)
	}
	res, err := discovery.Discover(discovery.Options{NodeName: "dgx", Sysfs: sysfs.Paths{Root: root},
		Rails: map[string]string{"0": "enp66s0np0"}, LastNames: map[string]string{"0000:42:00.0": "enp66s0np0"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Node.RailOf("0000:1b:00.0"); r == nil || r.NIC != "0000:42:00.0" || !r.Pinned {
		t.Errorf("GPU0's rail %+v, want the pinned NIC 0000:42:00.0", r)
	}
	if len(res.Warnings) > 0 {
		t.Errorf("warnings: %v", res.Warnings)
	}
}

func TestReadRailsRefusesWhatItCannotRead(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rails.yaml")
	if err := os.WriteFile(file, []byte("- 0000:1b:00.0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := discovery.ReadRails(file); err == nil || !strings.Contains(err.Error(), "want a map from GPU") {
		t.Errorf("a list: %v", err)
	}
	if _, err := discovery.ReadRails(filepath.Join(t.TempDir(), "none")); err == nil || !strings.Contains(err.Error(), "--rails") {
		t.Errorf("no file: %v", err)
	}
}
