package discovery_test

import (
	"os"
	"testing"

	"github.com/topolane/topolane/nodeagent/internal/sysfs"
	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/topologytest"
)

// FuzzSysfsAttributes feeds arbitrary contents to the attributes discovery parses. Whatever
// they hold, discovery must not panic or fail: it warns and carries on.
func FuzzSysfsAttributes(f *testing.F) {
	f.Add("pci:v000015B3d00001021sv000015B3sd00001021bc02sc00i00", "0", "4", "8", "100000")
	f.Add("", "-1", "0", "0", "-1")
	f.Add("pci:v", "x", "9", "2", "")
	f.Add("pci:v000010DEd00002330sv000010DEsd000016C1bc03sc02i00\x00\xff", "99999999999999999999", "-3", "-1", "1e9")
	root := writeMachine(f, topologytest.NoGPU())
	paths := sysfs.Paths{Root: root}
	const pf = "0000:01:00.0"
	f.Fuzz(func(t *testing.T, modalias, numa, numVFs, totalVFs, speed string) {
		for file, content := range map[string]string{
			paths.PCIDevice(pf, "modalias"):                                modalias,
			paths.PCIDevice(pf, "numa_node"):                               numa,
			paths.PCIDevice(pf, "sriov_numvfs"):                            numVFs,
			paths.PCIDevice(pf, "sriov_totalvfs"):                          totalVFs,
			paths.PCIDevice(pf, "net", "enp1s0np0", "speed"):               speed,
			paths.PCIDevice("0000:01:00.2", "modalias"):                    modalias,
			paths.PCIDevice("0000:00:02.0", "numa_node"):                   numa,
			paths.PCIDevice("0000:01:00.3", "net", "enp1s0np0v1", "speed"): speed,
		} {
			if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		res := discover(t, root, "fuzz")
		if _, err := topology.Encode(res.Node); err != nil {
			t.Fatal(err)
		}
	})
}
