package sim_test

import (
	"reflect"
	"testing"

	"github.com/topolane/topolane/bench/internal/report"
	"github.com/topolane/topolane/bench/internal/scenario"
	"github.com/topolane/topolane/bench/internal/sim"
	"github.com/topolane/topolane/extender/embedded"
)

func load(t *testing.T) *scenario.Scenario {
	t.Helper()
	sc, err := scenario.Load("../../scenarios/small.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func policies(sc *scenario.Scenario) []sim.Policy {
	nodes := sc.Cluster()
	cfg := embedded.Config{NoPF: embedded.NoPFReject}
	return []sim.Policy{
		sim.NewTopolane(nodes, cfg, sc.Seed),
		sim.NewOneNIC(nodes, cfg, sc.Seed),
		sim.NewDefaultLike(sc.Seed),
		sim.NewNUMAOnly(sc.Seed),
	}
}

// TestPoliciesOnTheSmallScenario replays the small trace under every policy: none may hand out
// a GPU or device twice (Run fails if one does); topolane must give a full-node pod the whole PF
// of every rail, full-node pods whole PFs and near NICs at least as often as the baselines, and
// more NIC bandwidth per GPU than one NIC per pod.
func TestPoliciesOnTheSmallScenario(t *testing.T) {
	sc := load(t)
	rails := map[string]int{}
	for _, n := range sc.Cluster() {
		rails[n.Name] = len(n.Machine.Node().Rails)
	}
	var ms []report.Metrics
	for _, p := range policies(sc) {
		r, err := sim.Run(p, sc.Cluster(), sc.Trace(), nil)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, report.Measure(r, 8))
		for _, o := range r.Outcomes {
			if p.Name() == sim.PolicyTopolane && o.Placed && o.FullNode && o.Job.NIC == "" && (!o.AllPF() || len(o.Devices) != rails[o.Node]) {
				t.Errorf("topolane gave full-node pod %s on %s (%d rails) %+v", o.Job.Name, o.Node, rails[o.Node], o.Devices)
			}
		}
	}
	topo, one := ms[0], ms[1]
	for _, base := range ms[1:] {
		if report.Share(topo.FullNodePF, topo.FullNode) < report.Share(base.FullNodePF, base.FullNode) {
			t.Errorf("full-node pods with a PF: topolane %+v below %s %+v", topo, base.Policy, base)
		}
		if report.Share(topo.Near, topo.NearPossible) < report.Share(base.Near, base.NearPossible) {
			t.Errorf("near NICs: topolane %+v below %s %+v", topo, base.Policy, base)
		}
	}
	if topo.Network.Mean <= one.Network.Mean || topo.Network.GDR <= one.Network.GDR {
		t.Errorf("bandwidth per GPU and GDR share: topolane %+v, one NIC per pod %+v: want topolane ahead", topo.Network, one.Network)
	}
}

func TestRunsAreReproducible(t *testing.T) {
	sc := load(t)
	for i, p := range policies(sc) {
		a, errA := sim.Run(p, sc.Cluster(), sc.Trace(), nil)
		b, errB := sim.Run(policies(sc)[i], sc.Cluster(), sc.Trace(), nil)
		if errA != nil || errB != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("%s: two runs of one seed differ (%v, %v)", p.Name(), errA, errB)
		}
	}
}
