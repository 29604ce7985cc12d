package attachtest

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolane/topolane/nodeagent/internal/netbind"
)

// TestHardwareFake: the fake moves RDMA devices only in exclusive mode and only from where
// they are, keeps GUIDs, records every call and fails a call when told to.
func TestHardwareFake(t *testing.T) {
	dir := t.TempDir()
	k := Kernel{vfFile: filepath.Join(dir, "vf-macs.json")}
	e := &Env{T: t, Fx: &Fixture{Dir: dir}}
	pod := "/proc/self/ns/net" // a namespace that exists
	check := func(what string, err error, want string) {
		t.Helper()
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: %v, want %q", what, err, want)
		}
	}
	mode, err := k.RDMANetnsMode()
	check("mode", err, "")
	if mode != "shared" {
		t.Errorf("mode %q before it is set, want shared", mode)
	}
	check("move in shared mode", k.MoveRDMA(netbind.Host, "mlx5_0", pod), "only in exclusive netns mode")
	e.SetRDMANetnsMode("exclusive")
	check("move into a pod", k.MoveRDMA(netbind.Host, "mlx5_0", pod), "")
	check("move from where it is not", k.MoveRDMA(netbind.Host, "mlx5_0", pod), `RDMA device mlx5_0 is not in ""`)
	check("move into a gone namespace", k.MoveRDMA(pod, "mlx5_0", "/nonexistent/ns"), "network namespace does not exist")
	if got := e.RDMANamespace("mlx5_0"); got != pod {
		t.Errorf("mlx5_0 is in %q, want %q", got, pod)
	}
	node, port := DefaultGUIDs("ib0", 1)
	gotNode, gotPort, err := k.VFGUID("ib0", 1)
	check("GUIDs before any set", err, "")
	if diff := cmp.Diff([]string{node.String(), port.String()}, []string{gotNode.String(), gotPort.String()}); diff != "" {
		t.Errorf("default GUIDs (-want +got):\n%s", diff)
	}
	check("set GUIDs", k.SetVFGUID("ib0", 1, port, node), "")
	if gotNode, _, _ = k.VFGUID("ib0", 1); gotNode.String() != port.String() {
		t.Errorf("node GUID %s after setting %s", gotNode, port)
	}
	e.FailKernel("MoveRDMA", "device busy")
	check("a failed move", k.MoveRDMA(pod, "mlx5_0", netbind.Host), "device busy")
	e.FailKernel("MoveRDMA", "")
	check("healed", k.MoveRDMA(pod, "mlx5_0", netbind.Host), "")
	want := []string{
		`RDMANetnsMode()`,
		`MoveRDMA("", mlx5_0, "/proc/self/ns/net")`, // shared mode
		`MoveRDMA("", mlx5_0, "/proc/self/ns/net")`,
		`MoveRDMA("", mlx5_0, "/proc/self/ns/net")`, // not there any more
		`MoveRDMA("/proc/self/ns/net", mlx5_0, "/nonexistent/ns")`,
		`VFGUID(ib0, 1)`,
		`SetVFGUID(ib0, 1, 0e:f1:00:00:00:00:03:01, 0e:f0:00:00:00:00:03:01)`,
		`VFGUID(ib0, 1)`,
		`MoveRDMA("/proc/self/ns/net", mlx5_0, "")`, // failed
		`MoveRDMA("/proc/self/ns/net", mlx5_0, "")`,
	}
	if diff := cmp.Diff(want, e.KernelCalls()); diff != "" {
		t.Errorf("calls recorded (-want +got):\n%s", diff)
	}
}
