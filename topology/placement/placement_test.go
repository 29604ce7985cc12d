package placement_test

import (
	"strings"
	"testing"

	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/placement"
	"github.com/topolane/topolane/topology/topologytest"
)

// DGX H100 fixture devices.
const (
	dgxNIC0 = "0000:1a:00.0" // 4 VFs configured, PIX to GPU0
	dgxVF0  = "0000:1a:00.2"
	dgxVF1  = "0000:1a:00.3"
	dgxNIC1 = "0000:42:00.0" // no VFs configured, PIX to GPU1
	dgxGPU0 = "0000:1b:00.0"
	dgxGPU1 = "0000:43:00.0"
	dgxGPU4 = "0000:9d:00.0"
	dgxNIC4 = "0000:9c:00.0"
)

func allPFs(node *topology.Node, pod string) []placement.Allocation {
	var as []placement.Allocation
	for _, nic := range node.NICs {
		if nic.RDMA() {
			as = append(as, placement.Allocation{Pod: pod, Kind: placement.KindPF, NIC: nic.PCIAddress, Device: nic.PCIAddress})
		}
	}
	return as
}

func summarize(t *testing.T, node *topology.Node, u placement.Usage) *placement.Summary {
	t.Helper()
	s, err := placement.Summarize(node, u)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name string
		req  placement.Request
		free int
		want placement.Need
	}{
		{"takes every free GPU", placement.Request{GPUs: 8, Mode: placement.ModeAuto}, 8, placement.NeedPF},
		{"takes the last free GPUs", placement.Request{GPUs: 2, Mode: placement.ModeAuto}, 2, placement.NeedPF},
		{"takes part", placement.Request{GPUs: 2, Mode: placement.ModeAuto}, 8, placement.NeedVF},
		{"forced PF", placement.Request{GPUs: 1, Mode: placement.ModePF}, 8, placement.NeedPF},
		{"forced VF on a full node", placement.Request{GPUs: 8, Mode: placement.ModeVF}, 8, placement.NeedVF},
		{"opted out", placement.Request{GPUs: 8, Mode: placement.ModeNone}, 8, placement.NeedNothing},
		{"no GPUs", placement.Request{GPUs: 0, Mode: placement.ModePF}, 8, placement.NeedNothing},
	}
	for _, tt := range tests {
		if got := placement.Decide(tt.req, tt.free); got != tt.want {
			t.Errorf("%s: Decide = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]placement.Mode{"": placement.ModeAuto, "auto": placement.ModeAuto,
		"pf": placement.ModePF, "vf": placement.ModeVF, "none": placement.ModeNone} {
		if got, err := placement.ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := placement.ParseMode("PF"); err == nil || !strings.Contains(err.Error(), "want one of auto, pf, vf, none") {
		t.Errorf("ParseMode(PF) error = %v", err)
	}
}

func TestCheck(t *testing.T) {
	dgx := topologytest.DGXH100().Node()
	noSRIOV := topologytest.NoSRIOV().Node()
	cpu := topologytest.NoGPU().Node()
	vfsOfNIC0 := func(n int) []placement.Allocation {
		var as []placement.Allocation
		for _, vf := range dgx.NIC(dgxNIC0).SRIOV.VFs[:n] {
			as = append(as, placement.Allocation{Pod: "ns/small", Kind: placement.KindVF, NIC: dgxNIC0, Device: vf.PCIAddress})
		}
		return as
	}
	pfsButNIC0 := allPFs(dgx, "ns/big")[1:]
	tests := []struct {
		name    string
		node    *topology.Node
		usage   placement.Usage
		req     placement.Request
		want    placement.Verdict
		wantWhy string // substring of Reason
	}{
		{name: "full node gets a PF", node: dgx, req: placement.Request{GPUs: 8, Mode: placement.ModeAuto},
			want: placement.Verdict{Need: placement.NeedPF, Fits: true}},
		{name: "required < available needs a VF", node: dgx, req: placement.Request{GPUs: 2, Mode: placement.ModeAuto},
			want: placement.Verdict{Need: placement.NeedVF, Fits: true}},
		{name: "required == available on a busy node needs a PF", node: dgx,
			usage: placement.Usage{GPUsInUse: 6}, req: placement.Request{GPUs: 2, Mode: placement.ModeAuto},
			want: placement.Verdict{Need: placement.NeedPF, Fits: true}},
		{name: "the only free PF has VFs in use", node: dgx,
			usage: placement.Usage{GPUsInUse: 0, Allocations: append(vfsOfNIC0(3), pfsButNIC0...)},
			req:   placement.Request{GPUs: 8, Mode: placement.ModeAuto},
			want:  placement.Verdict{Need: placement.NeedPF, Code: placement.CodeNoFreePF},
			wantWhy: "needs a free PF for 8/8 GPUs: 0 of 8 PFs free (0000:1a:00.0 has 3 VFs in use; " +
				"0000:42:00.0 is given to ns/big"},
		{name: "every PF given away", node: dgx, usage: placement.Usage{Allocations: allPFs(dgx, "ns/a")},
			req: placement.Request{GPUs: 1, Mode: placement.ModePF}, want: placement.Verdict{Need: placement.NeedPF, Code: placement.CodeNoFreePF},
			wantWhy: "needs a free PF (topolane.io/nic: pf): 0 of 8 PFs free (0000:1a:00.0 is given to ns/a"},
		{name: "unset mode reads as auto", node: dgx, usage: placement.Usage{Allocations: allPFs(dgx, "ns/a")},
			req: placement.Request{GPUs: 8}, want: placement.Verdict{Need: placement.NeedPF, Code: placement.CodeNoFreePF},
			wantWhy: "needs a free PF for 8/8 GPUs: 0 of 8 PFs free"},
		{name: "VF wanted, every VF taken and other PFs whole", node: dgx,
			usage: placement.Usage{GPUsInUse: 1, Allocations: append(vfsOfNIC0(4), pfsButNIC0...)},
			req:   placement.Request{GPUs: 1, Mode: placement.ModeAuto}, want: placement.Verdict{Need: placement.NeedVF, Code: placement.CodeNoFreeVF},
			wantWhy: "needs a free VF for 1/7 GPUs: 0 of 4 VFs free (0000:1a:00.0 has 4 of 4 VFs in use; 0000:42:00.0 is given whole to ns/big"},
		{name: "VF wanted, NIC0 given whole, others share by macvlan", node: dgx,
			usage: placement.Usage{Allocations: allPFs(dgx, "ns/a")[:1]},
			req:   placement.Request{GPUs: 1, Mode: placement.ModeVF}, want: placement.Verdict{Need: placement.NeedVF, Fits: true}},
		{name: "NIC without SR-IOV given whole", node: noSRIOV, req: placement.Request{GPUs: 2, Mode: placement.ModeAuto},
			want: placement.Verdict{Need: placement.NeedPF, Fits: true}},
		{name: "NIC without SR-IOV shared by macvlan", node: noSRIOV, req: placement.Request{GPUs: 1, Mode: placement.ModeAuto},
			want: placement.Verdict{Need: placement.NeedVF, Fits: true}},
		{name: "NIC without SR-IOV in macvlan use cannot go whole", node: noSRIOV,
			usage: placement.Usage{GPUsInUse: 1, Allocations: []placement.Allocation{{Pod: "ns/s", Kind: placement.KindMacvlan, NIC: "0000:45:00.0", Device: "0000:45:00.0"}}},
			req:   placement.Request{GPUs: 1, Mode: placement.ModeAuto}, want: placement.Verdict{Need: placement.NeedPF, Code: placement.CodeNoFreePF},
			wantWhy: "0000:45:00.0 has 1 macvlan shares in use"},
		{name: "node without GPUs", node: cpu, req: placement.Request{GPUs: 1, Mode: placement.ModeAuto},
			want: placement.Verdict{Code: placement.CodeNoGPUs, Unresolvable: true}, wantWhy: "needs 1 GPUs: node has no GPUs"},
		{name: "more GPUs than the node has", node: noSRIOV, req: placement.Request{GPUs: 4, Mode: placement.ModeAuto},
			want: placement.Verdict{Code: placement.CodeTooFewGPUs, Unresolvable: true}, wantWhy: "node has only 2"},
		{name: "GPUs held by others", node: dgx, usage: placement.Usage{GPUsInUse: 7},
			req: placement.Request{GPUs: 2, Mode: placement.ModeAuto}, want: placement.Verdict{Code: placement.CodeGPUsBusy}, wantWhy: "only 1 of 8 free"},
		{name: "no GPU request passes untouched", node: cpu, req: placement.Request{GPUs: 0, Mode: placement.ModePF},
			want: placement.Verdict{Need: placement.NeedNothing, Fits: true}},
		{name: "mode none passes untouched", node: dgx, usage: placement.Usage{Allocations: allPFs(dgx, "ns/a")},
			req: placement.Request{GPUs: 8, Mode: placement.ModeNone}, want: placement.Verdict{Need: placement.NeedNothing, Fits: true}},
		{name: "GPU node without an RDMA NIC", node: withoutRDMA(dgx), req: placement.Request{GPUs: 8, Mode: placement.ModeAuto},
			want: placement.Verdict{Need: placement.NeedPF, Code: placement.CodeNoRDMANIC, Unresolvable: true}, wantWhy: "node has no RDMA NIC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := summarize(t, tt.node, tt.usage).Check(tt.req)
			if !strings.Contains(got.Reason, tt.wantWhy) {
				t.Errorf("reason = %q, want it to contain %q", got.Reason, tt.wantWhy)
			}
			if tt.wantWhy == "" && got.Reason != "" {
				t.Errorf("unexpected reason %q", got.Reason)
			}
			got.Reason = ""
			if got != tt.want {
				t.Errorf("verdict = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func withoutRDMA(n *topology.Node) *topology.Node {
	c := *n
	c.NICs = nil
	for _, nic := range n.NICs {
		nic.RDMADevice = ""
		c.NICs = append(c.NICs, nic)
	}
	return &c
}

func TestChoose(t *testing.T) {
	dgx := topologytest.DGXH100().Node()
	server := topologytest.PCIeServer().Node()
	single := topologytest.SingleSocket().Node()
	tests := []struct {
		name  string
		node  *topology.Node
		usage placement.Usage
		need  placement.Need
		gpus  []string
		want  placement.Choice
	}{
		{name: "PF under the GPU's own switch", node: dgx, need: placement.NeedPF, gpus: []string{dgxGPU4},
			want: placement.Choice{Kind: placement.KindPF, NIC: dgxNIC4, Device: dgxNIC4, Level: topology.PIX}},
		{name: "nearest PF is taken: next nearest in the socket", node: dgx, need: placement.NeedPF, gpus: []string{dgxGPU0},
			usage: placement.Usage{Allocations: []placement.Allocation{{Pod: "ns/a", Kind: placement.KindVF, NIC: dgxNIC0, Device: dgxVF0}}},
			want:  placement.Choice{Kind: placement.KindPF, NIC: dgxNIC1, Device: dgxNIC1, Level: topology.NODE}},
		{name: "VF nearest to the GPU", node: dgx, need: placement.NeedVF, gpus: []string{dgxGPU0},
			want: placement.Choice{Kind: placement.KindVF, NIC: dgxNIC0, Device: dgxVF0, VFIndex: 0, Level: topology.PIX}},
		{name: "next free VF", node: dgx, need: placement.NeedVF, gpus: []string{dgxGPU0},
			usage: placement.Usage{Allocations: []placement.Allocation{{Pod: "ns/a", Kind: placement.KindVF, NIC: dgxNIC0, Device: dgxVF0}}},
			want:  placement.Choice{Kind: placement.KindVF, NIC: dgxNIC0, Device: dgxVF1, VFIndex: 1, Level: topology.PIX, Shared: true}},
		{name: "nearer macvlan beats a farther VF", node: dgx, need: placement.NeedVF, gpus: []string{dgxGPU1},
			want: placement.Choice{Kind: placement.KindMacvlan, NIC: dgxNIC1, Device: dgxNIC1, Level: topology.PIX}},
		{name: "scheduler view (every GPU): share the PF already shared", node: dgx, need: placement.NeedVF,
			usage: placement.Usage{Allocations: []placement.Allocation{{Pod: "ns/a", Kind: placement.KindMacvlan, NIC: dgxNIC4, Device: dgxNIC4}}},
			want:  placement.Choice{Kind: placement.KindMacvlan, NIC: dgxNIC4, Device: dgxNIC4, Level: topology.PIX, Shared: true}},
		{name: "scheduler view, nothing shared: VF before macvlan", node: dgx, need: placement.NeedVF,
			want: placement.Choice{Kind: placement.KindVF, NIC: dgxNIC0, Device: dgxVF0, Level: topology.PIX}},
		{name: "by UUID-less address on a PCIe server: same root complex", node: server, need: placement.NeedPF, gpus: []string{"0000:b1:00.0"},
			want: placement.Choice{Kind: placement.KindPF, NIC: "0000:b2:00.0", Device: "0000:b2:00.0", Level: topology.PHB}},
		{name: "two GPUs in two sockets: nearest to all breaks the tie", node: server, need: placement.NeedPF,
			gpus: []string{"0000:17:00.0", "0000:cb:00.0"},
			want: placement.Choice{Kind: placement.KindPF, NIC: "0000:18:00.0", Device: "0000:18:00.0", Level: topology.PHB}},
		{name: "cascaded switches", node: single, need: placement.NeedPF, gpus: []string{"0000:0a:00.0"},
			want: placement.Choice{Kind: placement.KindPF, NIC: "0000:07:00.0", Device: "0000:07:00.0", Level: topology.PXB}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := summarize(t, tt.node, tt.usage).Choose(tt.need, tt.gpus)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Choose = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestChooseErrors(t *testing.T) {
	dgx := topologytest.DGXH100().Node()
	s := summarize(t, dgx, placement.Usage{Allocations: allPFs(dgx, "ns/a")})
	if _, err := s.Choose(placement.NeedPF, nil); err == nil || !strings.Contains(err.Error(), "no free device") {
		t.Errorf("all PFs taken: err = %v", err)
	}
	if _, err := s.Choose(placement.NeedVF, []string{"GPU-nope"}); err == nil || !strings.Contains(err.Error(), "GPU GPU-nope is not among the 8 GPUs") {
		t.Errorf("unknown GPU: err = %v", err)
	}
}

func TestSummarizeRejectsStaleAllocations(t *testing.T) {
	dgx := topologytest.DGXH100().Node()
	for name, a := range map[string]placement.Allocation{
		"unknown NIC":       {Pod: "ns/a", Kind: placement.KindPF, NIC: "0000:ff:00.0", Device: "0000:ff:00.0"},
		"management NIC":    {Pod: "ns/a", Kind: placement.KindPF, NIC: "0000:0c:00.0", Device: "0000:0c:00.0"},
		"VF of another NIC": {Pod: "ns/a", Kind: placement.KindVF, NIC: dgxNIC1, Device: dgxVF0},
		"unknown kind":      {Pod: "ns/a", Kind: "sf", NIC: dgxNIC0, Device: dgxNIC0},
	} {
		if _, err := placement.Summarize(dgx, placement.Usage{Allocations: []placement.Allocation{a}}); err == nil || !strings.Contains(err.Error(), "ns/a") {
			t.Errorf("%s: err = %v, want one naming the pod", name, err)
		}
	}
}

func TestFreeCounts(t *testing.T) {
	dgx := topologytest.DGXH100().Node()
	s := summarize(t, dgx, placement.Usage{Allocations: []placement.Allocation{
		{Pod: "ns/a", Kind: placement.KindVF, NIC: dgxNIC0, Device: dgxVF0},
		{Pod: "ns/b", Kind: placement.KindPF, NIC: dgxNIC1, Device: dgxNIC1},
	}})
	if got := s.FreePFs(); got != 6 {
		t.Errorf("FreePFs = %d, want 6", got)
	}
	if got := s.FreeVFs(); got != 3 {
		t.Errorf("FreeVFs = %d, want 3", got)
	}
}

func TestScore(t *testing.T) {
	dgx := topologytest.DGXH100().Node()
	server := topologytest.PCIeServer().Node()
	full := placement.Request{GPUs: 8, Mode: placement.ModeAuto}
	two := placement.Request{GPUs: 2, Mode: placement.ModeAuto}
	tests := []struct {
		name  string
		node  *topology.Node
		usage placement.Usage
		req   placement.Request
		want  int
	}{
		{"full node, PIX NIC, PF", dgx, placement.Usage{}, full, 10},
		{"pod that does not fit", dgx, placement.Usage{GPUsInUse: 1}, full, 0},
		{"2 of 8 GPUs: loose fit, VF from a PF already shared", dgx,
			placement.Usage{Allocations: []placement.Allocation{{Pod: "ns/a", Kind: placement.KindVF, NIC: dgxNIC0, Device: dgxVF0}}}, two,
			(10*2/8 + 10 + 10 + 1) / 3},
		{"2 of 8 GPUs, nothing shared yet: breaks a whole PF but others remain", dgx, placement.Usage{}, two,
			(10*2/8 + 10 + 5 + 1) / 3},
		{"last 2 GPUs: exact fit takes the PF", dgx, placement.Usage{GPUsInUse: 6}, two, 10},
		{"PCIe server: PHB NIC", server, placement.Usage{}, placement.Request{GPUs: 4, Mode: placement.ModeAuto}, (10 + 6 + 10 + 1) / 3},
		{"no GPU request", dgx, placement.Usage{}, placement.Request{}, 10},
	}
	for _, tt := range tests {
		if got := summarize(t, tt.node, tt.usage).Score(tt.req, placement.DefaultWeights); got != tt.want {
			t.Errorf("%s: Score = %d, want %d", tt.name, got, tt.want)
		}
	}
	s := summarize(t, dgx, placement.Usage{})
	if got := s.Score(two, placement.Weights{Whole: 1}); got != 5 {
		t.Errorf("weights pick the part: whole only, breaking one of 8 whole PFs = %d, want 5", got)
	}
	if got := s.Score(two, placement.Weights{}); got != 0 {
		t.Errorf("zero weights = %d, want 0", got)
	}
}

// TestRememberedAnswers asks every question twice, and under other weights in between: what a
// summary remembers must be what it would answer afresh.
func TestRememberedAnswers(t *testing.T) {
	weights := []placement.Weights{placement.DefaultWeights, {Whole: 1}, {Fit: 3, NIC: 1}}
	usages := []placement.Usage{{}, {GPUsInUse: 6}, {GPUsInUse: 1, Allocations: []placement.Allocation{{Pod: "ns/a", Kind: placement.KindVF, NIC: dgxNIC0, Device: dgxVF0}}}}
	for _, m := range topologytest.All() {
		node := m.Node()
		for _, u := range usages {
			if _, err := placement.Summarize(node, u); err != nil {
				continue // the allocation is not on this machine
			}
			remembering := summarize(t, node, u)
			for _, mode := range []placement.Mode{placement.ModeAuto, placement.ModePF, placement.ModeVF, placement.ModeNone} {
				for gpus := -1; gpus <= 20; gpus++ {
					req := placement.Request{GPUs: gpus, Mode: mode}
					for round := range 2 {
						for _, w := range weights {
							fresh := summarize(t, node, u)
							if got, want := remembering.Check(req), fresh.Check(req); got != want {
								t.Fatalf("%s %+v round %d: Check = %+v, afresh %+v", node.Name, req, round, got, want)
							}
							if got, want := remembering.Fits(req), fresh.Check(req).Fits; got != want {
								t.Fatalf("%s %+v: Fits = %v, Check says %v", node.Name, req, got, want)
							}
							if got, want := remembering.Score(req, w), fresh.Score(req, w); got != want {
								t.Fatalf("%s %+v %+v round %d: Score = %d, afresh %d", node.Name, req, w, round, got, want)
							}
						}
					}
				}
			}
		}
	}
}
