package sim_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolane/topolane/bench/internal/scenario"
	"github.com/topolane/topolane/bench/internal/sim"
	"github.com/topolane/topolane/topology/apis/v1alpha1"
	"github.com/topolane/topolane/topology/placement"
	"github.com/topolane/topolane/topology/topologytest"
)

func cluster(m topologytest.Machine) (*sim.Cluster, *sim.Node) {
	c := sim.NewCluster([]scenario.Node{{Name: "n", Machine: m}})
	return c, c.Node("n")
}

func job(name string, gpus int) scenario.Job { return scenario.Job{Name: name, GPUs: gpus} }

func vf(n *sim.Node, nic string, i int) placement.Allocation {
	return placement.Allocation{Kind: placement.KindVF, NIC: nic, Device: n.Topo.NIC(nic).SRIOV.VFs[i].PCIAddress}
}

func share(kind placement.Kind, nic string) placement.Allocation {
	return placement.Allocation{Kind: kind, NIC: nic, Device: nic}
}

// describe is a plan as a person reads it: "kind device [GPUs] level" per device.
func describe(n *sim.Node, cs []placement.Choice) []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s %s %v %s", c.Kind, c.Device, c.GPUs, n.Level(c.NIC, c.GPUs)))
	}
	return out
}

// TestAttach is the agent's step: the devices for the GPUs kubelet gave, one per distinct rail
// (the rail's own, else the nearest free), or one for the pod with topolane.io/nics: one.
func TestAttach(t *testing.T) {
	dgx, pcie := topologytest.DGXH100(), topologytest.PCIeServerOneNIC()
	pf, vfKind := placement.KindPF, placement.KindVF
	tests := []struct {
		name    string
		machine topologytest.Machine
		before  [][]placement.Allocation // held by earlier pods, one GPU each from GPU 7 down
		kind    placement.Kind           // reserved by the extender
		nics    placement.NICs
		gpus    []int
		want    []string
	}{
		{name: "DGX, every GPU: the PF of each of 8 rails", machine: dgx, kind: pf, gpus: []int{0, 1, 2, 3, 4, 5, 6, 7}, want: []string{
			"pf 0000:1a:00.0 [0000:1b:00.0] PIX", "pf 0000:42:00.0 [0000:43:00.0] PIX", "pf 0000:51:00.0 [0000:52:00.0] PIX", "pf 0000:60:00.0 [0000:61:00.0] PIX",
			"pf 0000:9c:00.0 [0000:9d:00.0] PIX", "pf 0000:c2:00.0 [0000:c3:00.0] PIX", "pf 0000:d0:00.0 [0000:d1:00.0] PIX", "pf 0000:de:00.0 [0000:df:00.0] PIX"}},
		{name: "DGX, every GPU, one NIC: a single PF", machine: dgx, kind: pf, nics: placement.NICsOne, gpus: []int{0, 1, 2, 3, 4, 5, 6, 7},
			want: []string{"pf 0000:1a:00.0 [0000:1b:00.0 0000:43:00.0 0000:52:00.0 0000:61:00.0 0000:9d:00.0 0000:c3:00.0 0000:d1:00.0 0000:df:00.0] SYS"}},
		{name: "DGX, 2 GPUs: a share on each rail", machine: dgx, kind: vfKind, gpus: []int{0, 3},
			want: []string{"vf 0000:1a:00.2 [0000:1b:00.0] PIX", "macvlan 0000:60:00.0 [0000:61:00.0] PIX"}},
		{name: "DGX, rail 0 out of VFs: the nearest share instead", machine: dgx, kind: vfKind, gpus: []int{0},
			before: [][]placement.Allocation{{vf0(dgx, 0)}, {vf0(dgx, 1)}, {vf0(dgx, 2)}, {vf0(dgx, 3)}},
			want:   []string{"macvlan 0000:42:00.0 [0000:1b:00.0] NODE"}},
		{name: "one NIC per socket, every GPU: 2 PFs of 2 GPUs each", machine: pcie, kind: pf, gpus: []int{0, 1, 2, 3},
			want: []string{"pf 0000:18:00.0 [0000:17:00.0 0000:31:00.0] NODE", "pf 0000:b2:00.0 [0000:b1:00.0 0000:cb:00.0] NODE"}},
		{name: "one NIC per socket, 2 GPUs of one rail: one VF for both", machine: pcie, kind: vfKind, gpus: []int{0, 1},
			want: []string{"vf 0000:18:00.2 [0000:17:00.0 0000:31:00.0] NODE"}},
		{name: "one NIC per socket, 2 GPUs of two rails: a VF and a macvlan", machine: pcie, kind: vfKind, gpus: []int{0, 2},
			want: []string{"vf 0000:18:00.2 [0000:17:00.0] PHB", "macvlan 0000:b2:00.0 [0000:b1:00.0] PHB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, n := cluster(tt.machine)
			for i, devs := range tt.before {
				p := sim.Placement{Node: "n", GPUs: []int{7 - i}, Devices: devs}
				if _, err := c.Record(job(fmt.Sprint("before-", i), 1), p, 0); err != nil {
					t.Fatal(err)
				}
			}
			reserved := v1alpha1.Allocation{Node: "n", PodUID: "u", Devices: []v1alpha1.Device{{Kind: tt.kind}}}
			cs, err := sim.Attach(n, placement.Request{GPUs: len(tt.gpus), NICs: tt.nics}, reserved, tt.gpus)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, describe(n, cs)); diff != "" {
				t.Errorf("devices (-want +got):\n%s", diff)
			}
		})
	}
}

func vf0(m topologytest.Machine, i int) placement.Allocation {
	_, n := cluster(m)
	return vf(n, "0000:1a:00.0", i)
}

// TestRecordRefusesWhatIsGiven: a device given twice is a bug of a policy, which the bench
// reports rather than counts; macvlan shares of one NIC are many.
func TestRecordRefusesWhatIsGiven(t *testing.T) {
	m := topologytest.PCIeServerOneNIC()
	_, n := cluster(m)
	first, plain := vf(n, "0000:18:00.0", 0), "0000:b2:00.0"
	tests := []struct {
		name   string
		before []placement.Allocation
		devs   []placement.Allocation
		err    string // "" when it is given
	}{
		{"a second macvlan", []placement.Allocation{share(placement.KindMacvlan, plain)}, []placement.Allocation{share(placement.KindMacvlan, plain)}, ""},
		{"a VF twice", []placement.Allocation{first}, []placement.Allocation{first}, "already given out"},
		{"a PF with a share in use", []placement.Allocation{share(placement.KindMacvlan, plain)}, []placement.Allocation{share(placement.KindPF, plain)}, "shares of it are given out"},
		{"a share of a PF given whole", []placement.Allocation{share(placement.KindPF, plain)}, []placement.Allocation{share(placement.KindMacvlan, plain)}, "already given whole"},
		{"one VF twice in one pod", nil, []placement.Allocation{first, first}, "already given out"},
		{"a NIC the node lacks", nil, []placement.Allocation{share(placement.KindPF, "0000:99:00.0")}, "has no NIC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := cluster(m)
			if _, err := c.Record(job("a", 1), sim.Placement{Node: "n", GPUs: []int{0}, Devices: tt.before}, 0); err != nil {
				t.Fatal(err)
			}
			_, err := c.Record(job("b", 1), sim.Placement{Node: "n", GPUs: []int{1}, Devices: tt.devs}, 0)
			if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("Record = %v, want an error with %q", err, tt.err)
			}
		})
	}
}

// TestBandwidthFollowsShares: a share's bandwidth is its NIC's speed divided by the shares in
// use, averaged over the time the pod runs; a PF's is its speed.
func TestBandwidthFollowsShares(t *testing.T) {
	c, n := cluster(topologytest.PCIeServerOneNIC())
	nic := "0000:18:00.0"
	a := sim.Placement{Node: "n", GPUs: []int{0}, Devices: []placement.Allocation{vf(n, nic, 0)}}
	b := sim.Placement{Node: "n", GPUs: []int{1}, Devices: []placement.Allocation{vf(n, nic, 1)}}
	p := sim.Placement{Node: "n", GPUs: []int{2, 3}, Devices: []placement.Allocation{share(placement.KindPF, "0000:b2:00.0")}}
	for _, r := range []struct {
		job scenario.Job
		pl  sim.Placement
		at  float64
	}{{job("a", 1), a, 0}, {job("p", 2), p, 0}, {job("b", 1), b, 10}} {
		if _, err := c.Record(r.job, r.pl, r.at); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]float64{"a": c.Finish("a", "n", a.GPUs, 20)} // 10 s alone, 10 s with b
	for job, bw := range c.Stop(30) {                              // b: 10 s with a, 10 s alone
		got[job] = bw
	}
	want := map[string]float64{"a": 75000, "b": 75000, "p": 100000}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(x, y float64) bool { return math.Abs(x-y) < 1e-6 })); diff != "" {
		t.Errorf("bandwidth in Mbit/s (-want +got):\n%s", diff)
	}
}
