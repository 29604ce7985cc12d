package sim_test

import (
	"reflect"
	"testing"

	"github.com/topolane/topolane/bench/internal/report"
	"github.com/topolane/topolane/bench/internal/scenario"
	"github.com/topolane/topolane/bench/internal/sim"
	"github.com/topolane/topolane/extender/embedded"
	"github.com/topolane/topolane/topology/placement"
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
	return []sim.Policy{
		sim.NewTopolane(nodes, embedded.Config{Weights: placement.DefaultWeights, NoPF: embedded.NoPFReject}, sc.Seed),
		sim.NewDefaultLike(sc.Seed),
		sim.NewNUMAOnly(sc.Seed),
	}
}

// TestPoliciesOnTheSmallScenario replays the small trace under every policy: none may hand out
// a GPU or device twice (Run fails if one does), and topolane must give full-node pods whole PFs
// and near NICs at least as often as the baselines.
func TestPoliciesOnTheSmallScenario(t *testing.T) {
	sc := load(t)
	var ms []report.Metrics
	for _, p := range policies(sc) {
		r, err := sim.Run(p, sc.Cluster(), sc.Trace(), nil)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, report.Measure(r, 8))
		for _, o := range r.Outcomes {
			if p.Name() == "topolane" && o.Placed && o.FullNode && o.Job.NIC == "" && o.Device.Kind != placement.KindPF {
				t.Errorf("topolane gave full-node pod %s a %s", o.Job.Name, o.Device.Kind)
			}
		}
	}
	topo := ms[0]
	for _, base := range ms[1:] {
		if report.Share(topo.FullNodePF, topo.FullNode) < report.Share(base.FullNodePF, base.FullNode) {
			t.Errorf("full-node pods with a PF: topolane %+v below %s %+v", topo, base.Policy, base)
		}
		if report.Share(topo.Near, topo.NearPossible) < report.Share(base.Near, base.NearPossible) {
			t.Errorf("near NICs: topolane %+v below %s %+v", topo, base.Policy, base)
		}
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
