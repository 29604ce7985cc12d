package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/topolane/topolane/nodeagent/internal/shaping"
	"github.com/topolane/topolane/nodeagent/internal/shaping/shapingtest"
)

// containerdBurst is the burst containerd passes the bandwidth plugin for every pod (bits):
// 512 MiB, which the plugin lets through at line rate (kubernetes/kubernetes#90838).
const containerdBurst = math.MaxUint32

// scenario is one flow through one shaper.
type scenario struct {
	setup     string
	direction string // egress: pod to peer; ingress: peer to pod
	kind      shapingtest.Kind
	average   float64 // bit/s
	peak      float64 // bit/s, 0: none
	burst     string
	shape     func(ctx context.Context, n *shapingtest.Net) error
}

// measured is a scenario's flow and what it shows.
type measured struct {
	scenario
	flow      shapingtest.Flow
	phaseEnd  time.Duration // when the burst phase ended
	burstRate float64       // bit/s over the burst phase
	sent      float64       // bytes on the wire in the burst phase
	sustained float64       // bit/s after it (0: the flow was too short to tell)
}

func scenarios(l shaping.Limits, plugin string) []scenario {
	var out []scenario
	stand := map[shapingtest.Kind]string{shapingtest.Veth: "topolane, veth end in the pod (PF/VF)", shapingtest.Macvlan: "topolane, macvlan in the pod"}
	for _, kind := range []shapingtest.Kind{shapingtest.Veth, shapingtest.Macvlan} {
		for _, dir := range []string{"egress", "ingress"} {
			out = append(out, scenario{setup: stand[kind], direction: dir, kind: kind,
				average: float64(l.Egress.Average), peak: float64(l.Egress.Peak),
				burst: fmt.Sprintf("%.3g MB", float64(l.Egress.Burst)/8e6), shape: topolane(l)})
		}
	}
	for _, dir := range []string{"egress", "ingress"} {
		out = append(out, scenario{setup: "CNI bandwidth plugin, host veth", direction: dir, kind: shapingtest.HostVeth,
			average: float64(l.Egress.Average), burst: "512 MiB (containerd)", shape: bandwidthPlugin(plugin, l.Egress.Average)})
	}
	return out
}

// topolane shapes the pod's device as the agent does.
func topolane(l shaping.Limits) func(context.Context, *shapingtest.Net) error {
	return func(ctx context.Context, n *shapingtest.Net) error {
		p, err := shaping.Prepare(n.Pod.Path(), shapingtest.Device, l)
		if err != nil {
			return err
		}
		return shaping.Apply(ctx, p)
	}
}

// bandwidthPlugin runs the CNI bandwidth plugin in the host namespace, chained after a plugin
// that made the veth pair, with what containerd passes for a pod annotated with the average.
func bandwidthPlugin(plugin string, average uint64) func(context.Context, *shapingtest.Net) error {
	return func(ctx context.Context, n *shapingtest.Net) error {
		conf, err := json.Marshal(map[string]any{
			"cniVersion": "1.0.0", "name": "bench", "type": "bandwidth",
			"runtimeConfig": map[string]any{"bandwidth": map[string]uint64{
				"ingressRate": average, "ingressBurst": containerdBurst, "egressRate": average, "egressBurst": containerdBurst}},
			"prevResult": map[string]any{"cniVersion": "1.0.0",
				"interfaces": []map[string]string{{"name": shapingtest.HostEnd}, {"name": shapingtest.Device, "sandbox": n.Pod.Path()}},
				"ips":        []map[string]any{{"address": shapingtest.PodAddr.String(), "interface": 1}}},
		})
		if err != nil {
			return err
		}
		return n.Host.Do(func(ns.NetNS) error { // the plugin shapes the host's end, where it runs
			cmd := exec.CommandContext(ctx, plugin)
			cmd.Env = []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=bandwidthbench", "CNI_NETNS=" + n.Pod.Path(),
				"CNI_IFNAME=" + shapingtest.Device, "CNI_PATH=" + filepath.Dir(plugin)}
			cmd.Stdin = bytes.NewReader(conf)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("the bandwidth plugin: %v: %s", err, out)
			}
			return nil
		})
	}
}

// buildPlugin builds the CNI bandwidth plugin of the version go.mod pins into dir.
func buildPlugin(dir string) (string, error) {
	path := filepath.Join(dir, "bandwidth")
	out, err := exec.Command("go", "build", "-o", path, "github.com/containernetworking/plugins/plugins/meta/bandwidth").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building the CNI bandwidth plugin: %v\n%s", err, out)
	}
	return path, nil
}

// medianOf measures the scenario o.runs times: the median of each figure, and the flow of the
// run whose burst phase is the median, to plot.
func (s scenario) medianOf(ctx context.Context, o options) (measured, error) {
	var ms []measured
	for range o.runs {
		m, err := s.measure(ctx, o)
		if err != nil {
			return measured{}, err
		}
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b measured) int { return cmp.Compare(a.burstRate, b.burstRate) })
	m := ms[len(ms)/2]
	m.phaseEnd = time.Duration(median(ms, func(m measured) float64 { return float64(m.phaseEnd) }))
	m.sustained = median(ms, func(m measured) float64 { return m.sustained })
	m.sent = median(ms, func(m measured) float64 { return m.sent })
	return m, nil
}

func median(ms []measured, f func(measured) float64) float64 {
	vs := make([]float64, len(ms))
	for i, m := range ms {
		vs[i] = f(m)
	}
	slices.Sort(vs)
	return vs[len(vs)/2]
}

// measure builds a fresh network (full buckets), shapes it, sends one flow and reads it.
func (s scenario) measure(ctx context.Context, o options) (measured, error) {
	n, err := shapingtest.New(s.kind)
	if err != nil {
		return measured{}, err
	}
	defer n.Close()
	if err := s.shape(ctx, n); err != nil {
		return measured{}, err
	}
	from, to, addr := n.Pod, n.Peer, shapingtest.PeerAddr.IP
	if s.direction == "ingress" {
		from, to, addr = n.Peer, n.Pod, shapingtest.PodAddr.IP
	}
	f, err := shapingtest.Send(from, to, addr, o.duration, o.bin, 1500)
	if err != nil {
		return measured{}, err
	}
	m := measured{scenario: s, flow: f, phaseEnd: f.PhaseEnd(1.5 * s.average)}
	m.burstRate = f.Rate(0, m.phaseEnd)
	m.sent = m.burstRate * m.phaseEnd.Seconds() / 8
	if settled := m.phaseEnd + 500*time.Millisecond; settled+time.Second <= f.Duration() {
		m.sustained = f.Rate(settled, f.Duration())
	}
	return m, nil
}
