package attach_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/topolane/topolane/nodeagent/internal/attach/attachtest"
)

// buildHostDevice builds the reference host-device plugin (containernetworking/plugins, the
// version in go.mod) beside host-local.
func buildHostDevice(dir string) error {
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "host-device"), "github.com/containernetworking/plugins/plugins/main/host-device").CombinedOutput()
	if err != nil {
		return fmt.Errorf("building host-device: %v\n%s", err, out)
	}
	return nil
}

// BenchmarkAddDel times ADD and DEL on the kernel against the reference host-device plugin moving
// the same kind of stand-in device with the same host-local IPAM, the two alternating in one run:
// a PF (topolane.io/nics: one, so that both move one device) and a VF (topolane also sets its MAC
// through the PF). Goals: topolane's PF ADD ≤ 1.0 × host-device's, VF ADD ≤ 1.2 ×.
func BenchmarkAddDel(b *testing.B) {
	e := newEnv(b)
	e.AddPod("pf", []int{3}, map[string]string{"topolane.io/nic": "pf", "topolane.io/nics": "one"})
	e.AddPod("vf", []int{0}, map[string]string{"topolane.io/nic": "vf", "topolane.io/nics": "one"})
	runs := []run{
		{"pf", topolane(e, "pf")}, {"hostdevice-pf", hostDevice(b, e, "enp194s0np0")},
		{"vf", topolane(e, "vf")}, {"hostdevice-vf", hostDevice(b, e, "enp26s0np0v3")},
	}
	took := cycles(b, runs)
	for _, name := range []string{"pf-add", "hostdevice-pf-add", "vf-add", "hostdevice-vf-add", "pf-del", "hostdevice-pf-del", "vf-del", "hostdevice-vf-del"} {
		report(b, name, took[name])
	}
	b.ReportMetric(p50(took["pf-add"])/p50(took["hostdevice-pf-add"]), "pf-add-ratio")
	b.ReportMetric(p50(took["vf-add"])/p50(took["hostdevice-vf-add"]), "vf-add-ratio")
	b.ReportMetric(p50(took["pf-del"])/p50(took["hostdevice-pf-del"]), "pf-del-ratio")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkAddDel8PF times the ADD and DEL of a full-node pod's 8 PFs, one per rail.
func BenchmarkAddDel8PF(b *testing.B) {
	e := newEnv(b)
	e.AddPod("full", allGPUs, nil)
	took := cycles(b, []run{{"8pf", topolane(e, "full")}})
	report(b, "8pf-add", took["8pf-add"])
	report(b, "8pf-del", took["8pf-del"])
	b.ReportMetric(0, "ns/op")
}

type run struct {
	name string
	add  func() error
}

// cycles runs every ADD, then every DEL in reverse order, b.N times, and times each.
func cycles(b *testing.B, runs []run) map[string][]time.Duration {
	took := map[string][]time.Duration{}
	for b.Loop() {
		for _, r := range runs {
			start := time.Now()
			if err := r.add(); err != nil {
				b.Fatalf("%s: %v", r.name, err)
			}
			took[r.name+"-add"] = append(took[r.name+"-add"], time.Since(start))
		}
		for i := len(runs) - 1; i >= 0; i-- {
			start := time.Now()
			if err := cycleDel(runs[i].name); err != nil {
				b.Fatalf("%s DEL: %v", runs[i].name, err)
			}
			took[runs[i].name+"-del"] = append(took[runs[i].name+"-del"], time.Since(start))
		}
	}
	return took
}

// dels are the DELs of the current cycle, by run name.
var dels = map[string]func() error{}

func cycleDel(name string) error { return dels[name]() }

// topolane is an ADD of the pod through the attacher; its DEL is registered for the cycle.
func topolane(e *attachtest.Env, pod string) func() error {
	q := e.Request(pod, e.NewPodNS())
	dels[map[string]string{"pf": "pf", "vf": "vf", "full": "8pf"}[pod]] = func() error { return e.Att.Del(ctx, q) }
	return func() error { _, err := e.Att.Add(ctx, q); return err }
}

// hostDevice is an ADD of the host-device plugin moving device into a pod's namespace, run as a
// runtime runs it, in the fixture's host namespace; its DEL is registered for the cycle.
func hostDevice(b *testing.B, e *attachtest.Env, device string) func() error {
	podNS := e.NewPodNS()
	conf := []byte(fmt.Sprintf(`{"cniVersion":"1.0.0","name":"hd","type":"host-device","device":%q,"ipam":{"type":"host-local","subnet":"10.79.0.0/24","dataDir":%q}}`,
		device, filepath.Join(b.TempDir(), "ipam")))
	args := func(cmd string) *invoke.Args {
		return &invoke.Args{Command: cmd, ContainerID: "hd-" + device, NetNS: podNS.Path(), IfName: "net1", Path: cniPath,
			PluginArgsStr: "IgnoreUnknown=1;K8S_POD_NAMESPACE=train;K8S_POD_NAME=hd"}
	}
	plugin := filepath.Join(cniPath, "host-device")
	name := "hostdevice-pf"
	if len(device) > len("enp194s0np0") {
		name = "hostdevice-vf"
	}
	dels[name] = func() error {
		return ns.WithNetNSPath(e.Fx.HostNS, func(ns.NetNS) error {
			return invoke.ExecPluginWithoutResult(ctx, plugin, conf, args("DEL"), nil)
		})
	}
	return func() error {
		return ns.WithNetNSPath(e.Fx.HostNS, func(ns.NetNS) error {
			_, err := invoke.ExecPluginWithResult(ctx, plugin, conf, args("ADD"), nil)
			return err
		})
	}
}

func p50(d []time.Duration) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[len(s)/2])
}

func report(b *testing.B, name string, d []time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	b.ReportMetric(float64(s[len(s)/2])/1e6, name+"-p50-ms")
	b.ReportMetric(float64(s[len(s)*99/100])/1e6, name+"-p99-ms")
}
