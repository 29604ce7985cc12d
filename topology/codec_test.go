package topology_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/topologytest"
)

func TestCodecRoundTrip(t *testing.T) {
	for name, m := range topologytest.All() {
		want := m.Node()
		data, err := topology.Encode(want)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := topology.Decode(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: round trip changed the node (-want +got):\n%s", name, diff)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	for name, tt := range map[string]struct{ doc, wantErr string }{
		"future version": {`{"schemaVersion": 3, "name": "n"}`, "schemaVersion 3"},
		"no version":     {`{"name": "n"}`, "schemaVersion 0"},
		"unknown field":  {`{"schemaVersion": 2, "nme": "n"}`, "unknown field"},
		"bad level":      {`{"schemaVersion": 2, "levels": {"devices": ["a", "b"], "rows": ["X CLOSE", "CLOSE X"]}}`, "unknown connection level"},
		"short row":      {`{"schemaVersion": 2, "levels": {"devices": ["a", "b"], "rows": ["X", "PIX X"]}}`, "1 levels for 2 devices"},
		"missing row":    {`{"schemaVersion": 2, "levels": {"devices": ["a", "b"], "rows": ["X PIX"]}}`, "1 rows for 2 devices"},
		"truncated":      {`{"schemaVersion": 2, "gpus": [`, "decoding node topology"},
	} {
		_, err := topology.Decode([]byte(tt.doc))
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, tt.wantErr)
		}
	}
}

// TestDecodeBoundsTheLevelsByTheirRows: the matrix a levels document announces (devices²) is
// made only once its rows are there. A NodeTopology of a few hundred kilobytes listing 20,000
// devices, each with a row of one level, is refused without allocating 800 MB first.
func TestDecodeBoundsTheLevelsByTheirRows(t *testing.T) {
	const n = 20_000
	devices, rows := make([]string, n), make([]string, n)
	for i := range n {
		devices[i] = fmt.Sprintf("%q", fmt.Sprintf("0000:%02x:%02x.%d", i/256, i%256/8, i%8))
		rows[i] = `"X"`
	}
	doc := []byte(fmt.Sprintf(`{"schemaVersion": 2, "levels": {"devices": [%s], "rows": [%s]}}`, strings.Join(devices, ","), strings.Join(rows, ",")))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := topology.Decode(doc)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "1 levels for 20000 devices") {
		t.Errorf("got %v, want the short rows refused", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64*uint64(len(doc)) {
		t.Errorf("decoding a %d-byte document allocated %d bytes", len(doc), got)
	}
}

func TestDeepCopySharesNothing(t *testing.T) {
	orig := topologytest.DGXH100().Node()
	c := orig.DeepCopy()
	if diff := cmp.Diff(orig, c); diff != "" {
		t.Fatalf("copy differs:\n%s", diff)
	}
	c.GPUs[0].Path[0] = "changed"
	cx := c.NIC("0000:1a:00.0")
	cx.SRIOV.VFs[0].Path[0] = "changed"
	cx.SRIOV.NumVFs = 99
	c.Levels.Set(c.GPUs[0].PCIAddress, cx.PCIAddress, topology.SYS)
	c.NUMANodes[0] = 7
	if diff := cmp.Diff(topologytest.DGXH100().Node(), orig); diff != "" {
		t.Errorf("changing the copy changed the original:\n%s", diff)
	}
	var nilNode *topology.Node
	if nilNode.DeepCopy() != nil {
		t.Error("copy of nil should be nil")
	}
}
