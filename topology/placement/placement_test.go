package placement_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/placement"
	"github.com/topolane/topolane/topology/topologytest"
)

// DGX H100 fixture devices: rail i is GPU i and the NIC under its switch.
var (
	dgxNICs = []string{"0000:1a:00.0", "0000:42:00.0", "0000:51:00.0", "0000:60:00.0", "0000:9c:00.0", "0000:c2:00.0", "0000:d0:00.0", "0000:de:00.0"}
	dgxGPUs = []string{"0000:1b:00.0", "0000:43:00.0", "0000:52:00.0", "0000:61:00.0", "0000:9d:00.0", "0000:c3:00.0", "0000:d1:00.0", "0000:df:00.0"}
)

const (
	dgxVF0 = "0000:1a:00.2" // NIC0 has 4 VFs; the other NICs none (shared by macvlan)
	dgxVF1 = "0000:1a:00.3"

	// The PCIe server with each NIC's second port kept by the host: one NIC per socket, two GPUs
	// per rail. NIC 18:00.0 has 2 VFs, b2:00.0 none.
	srvNIC0, srvNIC1 = "0000:18:00.0", "0000:b2:00.0"
	srvVF0           = "0000:18:00.2"
	srvGPU0, srvGPU1 = "0000:17:00.0", "0000:31:00.0" // PHB and NODE to NIC0
	srvGPU2, srvGPU3 = "0000:b1:00.0", "0000:cb:00.0"
)

func oneNICPerSocket() *topology.Node {
	n := topologytest.PCIeServer().Node()
	n.NIC("0000:18:00.1").Excluded = "carries the default route"
	n.NIC("0000:b2:00.1").Excluded = "member of bond0"
	if err := topology.AssignRails(n, nil); err != nil {
		panic(err)
	}
	return n
}

// withoutRDMA is the node with no RDMA NIC at all.
func withoutRDMA(n *topology.Node) *topology.Node {
	n = n.DeepCopy()
	for i := range n.NICs {
		n.NICs[i].RDMADevice = ""
	}
	if err := topology.AssignRails(n, nil); err != nil {
		panic(err)
	}
	return n
}

func pf(pod, nic string, gpus ...string) placement.Allocation {
	return placement.Allocation{Pod: pod, Kind: placement.KindPF, NIC: nic, Device: nic, GPUs: gpus}
}

func vf(pod, nic, dev string, gpus ...string) placement.Allocation {
	return placement.Allocation{Pod: pod, Kind: placement.KindVF, NIC: nic, Device: dev, GPUs: gpus}
}

func macvlan(pod, nic string, gpus ...string) placement.Allocation {
	return placement.Allocation{Pod: pod, Kind: placement.KindMacvlan, NIC: nic, Device: nic, GPUs: gpus}
}

func summarize(node *topology.Node, u placement.Usage) *placement.Summary {
	return placement.Summarize(node, u, placement.DefaultWeights)
}

func auto(gpus int) placement.Request { return placement.Request{GPUs: gpus} }

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

func TestParseAnnotations(t *testing.T) {
	for in, want := range map[string]placement.Mode{"": placement.ModeAuto, "auto": placement.ModeAuto,
		"pf": placement.ModePF, "vf": placement.ModeVF, "none": placement.ModeNone} {
		if got, err := placement.ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v", in, got, err)
		}
	}
	for in, want := range map[string]placement.NICs{"": placement.NICsRails, "rails": placement.NICsRails, "one": placement.NICsOne} {
		if got, err := placement.ParseNICs(in); err != nil || got != want {
			t.Errorf("ParseNICs(%q) = %q, %v", in, got, err)
		}
	}
	for in, want := range map[string]placement.GDR{"": placement.GDRPreferred, "preferred": placement.GDRPreferred,
		"required": placement.GDRRequired, "off": placement.GDROff} {
		if got, err := placement.ParseGDR(in); err != nil || got != want {
			t.Errorf("ParseGDR(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []struct {
		parse func(string) error
		in    string
		want  string
	}{
		{func(s string) error { _, err := placement.ParseMode(s); return err }, "PF", "topolane.io/nic is \"PF\": want one of auto, pf, vf, none"},
		{func(s string) error { _, err := placement.ParseNICs(s); return err }, "all", "topolane.io/nics is \"all\": want rails or one"},
		{func(s string) error { _, err := placement.ParseGDR(s); return err }, "yes", "topolane.io/gdr is \"yes\": want required, preferred or off"},
	} {
		if err := bad.parse(bad.in); err == nil || err.Error() != bad.want {
			t.Errorf("parsing %q: error %v, want %q", bad.in, err, bad.want)
		}
	}
}

// TestCheckRails proves each branch of the rule per rail.
func TestCheckRails(t *testing.T) {
	dgx := topologytest.DGXH100().Node()
	server := oneNICPerSocket()
	ib := infiniBand(topologytest.NoSRIOV().Node())
	tests := []struct {
		name    string
		node    *topology.Node
		usage   placement.Usage
		req     placement.Request
		want    placement.Verdict
		wantWhy string // the whole Reason
	}{
		{name: "DGX: a pod of every GPU needs the PF of all 8 rails, and they are free", node: dgx, req: auto(8),
			want: placement.Verdict{Need: placement.NeedPF, Fits: true}},
		{name: "DGX: a pod of part of the GPUs needs shares", node: dgx, req: auto(2),
			want: placement.Verdict{Need: placement.NeedVF, Fits: true}},
		{name: "DGX: the last 7 GPUs need 7 PFs; rail 0's PF has a VF a pod on GPU5 took",
			node: dgx, usage: placement.Usage{GPUsInUse: 1, Allocations: []placement.Allocation{vf("ns/a", dgxNICs[0], dgxVF0, dgxGPUs[5])}},
			req:     auto(7),
			want:    placement.Verdict{Need: placement.NeedPF, Code: placement.CodeNoFreePF},
			wantWhy: "needs the whole PF of 7 rails for 7/7 GPUs: rail 0 (0000:1a:00.0 has 1 VF in use by ns/a)"},
		{name: "DGX: the last 2 GPUs need their own rails' PFs, free although 6 other rails are given away",
			node: dgx, usage: placement.Usage{GPUsInUse: 6, Allocations: []placement.Allocation{
				pf("ns/big", dgxNICs[0], dgxGPUs[0]), pf("ns/big", dgxNICs[1], dgxGPUs[1]), pf("ns/big", dgxNICs[2], dgxGPUs[2]),
				pf("ns/big", dgxNICs[3], dgxGPUs[3]), pf("ns/big", dgxNICs[4], dgxGPUs[4]), pf("ns/big", dgxNICs[5], dgxGPUs[5])}},
			req: auto(2), want: placement.Verdict{Need: placement.NeedPF, Fits: true}},
		{name: "PCIe server: two GPUs per rail; the last 3 GPUs need rail 0's PF, which a VF of GPU0's pod breaks",
			node: server, usage: placement.Usage{GPUsInUse: 1, Allocations: []placement.Allocation{vf("ns/a", srvNIC0, srvVF0, srvGPU0)}},
			req:     auto(3),
			want:    placement.Verdict{Need: placement.NeedPF, Code: placement.CodeNoFreePF},
			wantWhy: "needs the whole PF of 2 rails for 3/3 GPUs: rail 0 (0000:18:00.0 has 1 VF in use by ns/a)"},
		{name: "PCIe server: a 2-GPU pod takes shares on both rails", node: server, req: auto(2),
			want: placement.Verdict{Need: placement.NeedVF, Fits: true}},
		{name: "PCIe server: shares gone on rail 0, one GPU free on rail 1: a 2-GPU pod does not fit",
			node: server, usage: placement.Usage{GPUsInUse: 2, Allocations: []placement.Allocation{
				vf("ns/a", srvNIC0, srvVF0, srvGPU0), vf("ns/b", srvNIC0, "0000:18:00.3"), pf("ns/c", srvNIC1, srvGPU2)}},
			req:  placement.Request{GPUs: 2, Mode: placement.ModeVF},
			want: placement.Verdict{Need: placement.NeedVF, Code: placement.CodeNoFreeVF},
			wantWhy: "needs a share (VF or macvlan) on the rail of each of its 2 GPUs (topolane.io/nic: vf): 0 of 2 free GPUs have one " +
				"(rail 0 (0000:18:00.0 has 2 of 2 VFs in use); rail 1 (0000:b2:00.0 is given whole to ns/c))"},
		{name: "pf mode for part of the node: the rails of 2 free GPUs have whole PFs",
			node: dgx, usage: placement.Usage{GPUsInUse: 2, Allocations: []placement.Allocation{macvlan("ns/a", dgxNICs[1], dgxGPUs[1]), macvlan("ns/a", dgxNICs[2], dgxGPUs[2])}},
			req:  placement.Request{GPUs: 1, Mode: placement.ModePF},
			want: placement.Verdict{Need: placement.NeedPF, Fits: true}},
		{name: "vf mode on a whole node: shares on all 8 rails", node: dgx, req: placement.Request{GPUs: 8, Mode: placement.ModeVF},
			want: placement.Verdict{Need: placement.NeedVF, Fits: true}},
		{name: "none: nothing needed", node: withoutRDMA(dgx), req: placement.Request{GPUs: 8, Mode: placement.ModeNone},
			want: placement.Verdict{Need: placement.NeedNothing, Fits: true}},
		{name: "a node whose GPUs have no RDMA NIC", node: withoutRDMA(dgx), req: auto(8),
			want:    placement.Verdict{Need: placement.NeedPF, Code: placement.CodeNoRDMANIC, Unresolvable: true},
			wantWhy: "needs a PF for 8 GPUs: node has no RDMA NIC topolane may hand out"},
		{name: "every RDMA NIC excluded: says why", node: oneExcluded(withoutRDMA(dgx)), req: auto(1),
			want:    placement.Verdict{Need: placement.NeedVF, Code: placement.CodeNoRDMANIC, Unresolvable: true},
			wantWhy: "needs a VF for 1 GPUs: node has no RDMA NIC topolane may hand out (excluded: 0000:0c:00.0 carries the default route)"},
		{name: "GDR required on a PCIe server (PHB at best): never", node: server, req: placement.Request{GPUs: 1, GDR: placement.GDRRequired},
			want: placement.Verdict{Need: placement.NeedVF, Code: placement.CodeNoGDR, Unresolvable: true},
			wantWhy: "needs GPUDirect RDMA for 1 GPUs (topolane.io/gdr: required): only 0 of 4 GPUs have a NIC at PXB or nearer " +
				"(GPU 0000:17:00.0 is PHB from its rail's NIC 0000:18:00.0; GPU 0000:31:00.0 is NODE from its rail's NIC 0000:18:00.0; " +
				"GPU 0000:b1:00.0 is PHB from its rail's NIC 0000:b2:00.0; GPU 0000:cb:00.0 is NODE from its rail's NIC 0000:b2:00.0)"},
		{name: "GDR required on a DGX: every rail is PIX", node: dgx, req: placement.Request{GPUs: 8, GDR: placement.GDRRequired},
			want: placement.Verdict{Need: placement.NeedPF, Fits: true}},
		{name: "GDR required behind cascaded switches: PXB will do", node: topologytest.SingleSocket().Node(),
			req: placement.Request{GPUs: 2, GDR: placement.GDRRequired}, want: placement.Verdict{Need: placement.NeedVF, Fits: true}},
		{name: "GDR off on the PCIe server: fine", node: server, req: placement.Request{GPUs: 1, GDR: placement.GDROff},
			want: placement.Verdict{Need: placement.NeedVF, Fits: true}},
		{name: "too few GPUs", node: dgx, req: auto(9),
			want: placement.Verdict{Code: placement.CodeTooFewGPUs, Unresolvable: true}, wantWhy: "needs 9 GPUs: node has only 8"},
		{name: "GPUs busy", node: dgx, usage: placement.Usage{GPUsInUse: 7}, req: auto(2),
			want: placement.Verdict{Code: placement.CodeGPUsBusy}, wantWhy: "needs 2 GPUs: only 1 of 8 free"},
		{name: "InfiniBand NIC without VFs: no share (a macvlan needs an Ethernet parent)", node: ib, req: auto(1),
			want: placement.Verdict{Need: placement.NeedVF, Code: placement.CodeNoFreeVF},
			wantWhy: "needs a share (VF or macvlan) on the rail of each of its 1 GPUs: 0 of 2 free GPUs have one " +
				"(rail 0 (0000:45:00.0 is InfiniBand and has no VFs: a share of it must be a VF, a macvlan needs Ethernet; configure its sriov_numvfs))"},
		{name: "InfiniBand NIC without VFs: given whole", node: ib, req: auto(2),
			want: placement.Verdict{Need: placement.NeedPF, Fits: true}},
		{name: "CPU node", node: topologytest.NoGPU().Node(), req: auto(1),
			want: placement.Verdict{Code: placement.CodeNoGPUs, Unresolvable: true}, wantWhy: "needs 1 GPUs: node has no GPUs"},
	}
	for _, tt := range tests {
		got := summarize(tt.node, tt.usage).Check(tt.req)
		tt.want.Reason = tt.wantWhy
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

// infiniBand puts every NIC of the node in InfiniBand mode.
func infiniBand(n *topology.Node) *topology.Node {
	for i := range n.NICs {
		n.NICs[i].LinkLayer = topology.LinkLayerInfiniBand
	}
	return n
}

// oneExcluded marks the DGX's management port as an RDMA NIC the host keeps.
func oneExcluded(n *topology.Node) *topology.Node {
	n = n.DeepCopy()
	mgmt := n.NIC("0000:0c:00.0")
	mgmt.RDMADevice, mgmt.Excluded = "mlx5_9", "carries the default route"
	return n
}

// TestCheckOne is topolane.io/nics: one, the behaviour before rails.
func TestCheckOne(t *testing.T) {
	dgx := topologytest.DGXH100().Node()
	one := func(gpus int, mode placement.Mode) placement.Request {
		return placement.Request{GPUs: gpus, Mode: mode, NICs: placement.NICsOne}
	}
	allButNIC0 := []placement.Allocation{}
	for _, nic := range dgxNICs[1:] {
		allButNIC0 = append(allButNIC0, pf("ns/big", nic))
	}
	tests := []struct {
		name    string
		usage   placement.Usage
		req     placement.Request
		want    placement.Verdict
		wantWhy string
	}{
		{name: "a full node gets one PF", req: one(8, placement.ModeAuto), want: placement.Verdict{Need: placement.NeedPF, Fits: true}},
		{name: "the only free PF has VFs in use", usage: placement.Usage{Allocations: append(allButNIC0, vf("ns/small", dgxNICs[0], dgxVF0))},
			req: one(8, placement.ModeAuto), want: placement.Verdict{Need: placement.NeedPF, Code: placement.CodeNoFreePF},
			wantWhy: "needs a free PF for 8/8 GPUs: 0 of 8 PFs free (0000:1a:00.0 has 1 VF in use by ns/small; 0000:42:00.0 is given to ns/big; " +
				"0000:51:00.0 is given to ns/big; 0000:60:00.0 is given to ns/big; 0000:9c:00.0 is given to ns/big; 0000:c2:00.0 is given to ns/big; " +
				"0000:d0:00.0 is given to ns/big; 0000:de:00.0 is given to ns/big)"},
		{name: "VF wanted: every VF of NIC0 taken, the others given whole",
			usage: placement.Usage{GPUsInUse: 1, Allocations: append(allButNIC0, vf("ns/s", dgxNICs[0], dgxVF0), vf("ns/s", dgxNICs[0], dgxVF1),
				vf("ns/s", dgxNICs[0], "0000:1a:00.4"), vf("ns/s", dgxNICs[0], "0000:1a:00.5"))},
			req: one(1, placement.ModeAuto), want: placement.Verdict{Need: placement.NeedVF, Code: placement.CodeNoFreeVF},
			wantWhy: "needs a free VF for 1/7 GPUs: 0 of 4 VFs free (0000:1a:00.0 has 4 of 4 VFs in use; 0000:42:00.0 is given whole to ns/big; " +
				"0000:51:00.0 is given whole to ns/big; 0000:60:00.0 is given whole to ns/big; 0000:9c:00.0 is given whole to ns/big; " +
				"0000:c2:00.0 is given whole to ns/big; 0000:d0:00.0 is given whole to ns/big; 0000:de:00.0 is given whole to ns/big)"},
		{name: "GDR required for 2 GPUs through one NIC: no DGX NIC is PIX to two GPUs",
			req:     placement.Request{GPUs: 2, NICs: placement.NICsOne, GDR: placement.GDRRequired},
			want:    placement.Verdict{Need: placement.NeedVF, Code: placement.CodeNoGDR, Unresolvable: true},
			wantWhy: "needs GPUDirect RDMA for 2 GPUs through one NIC (topolane.io/nics: one, topolane.io/gdr: required): no NIC is at PXB or nearer to more than 1 GPUs"},
		{name: "GDR required for 1 GPU through one NIC: fits", req: placement.Request{GPUs: 1, NICs: placement.NICsOne, GDR: placement.GDRRequired},
			want: placement.Verdict{Need: placement.NeedVF, Fits: true}},
	}
	for _, tt := range tests {
		got := summarize(dgx, tt.usage).Check(tt.req)
		tt.want.Reason = tt.wantWhy
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

// device is a choice as tests compare it.
type device struct {
	Kind   placement.Kind
	Device string
	Rail   int
	GPUs   []string
	Level  topology.Level
}

func devices(cs []placement.Choice) []device {
	var out []device
	for _, c := range cs {
		out = append(out, device{c.Kind, c.Device, c.Rail, c.GPUs, c.Level})
	}
	return out
}

// TestPlanWithoutGPUs is what the extender reserves at bind, before kubelet picks the GPUs.
func TestPlanWithoutGPUs(t *testing.T) {
	dgx := topologytest.DGXH100().Node()
	server := oneNICPerSocket()
	var allPFs []device
	for i := range dgxNICs {
		allPFs = append(allPFs, device{placement.KindPF, dgxNICs[i], i, []string{dgxGPUs[i]}, topology.PIX})
	}
	tests := []struct {
		name  string
		node  *topology.Node
		usage placement.Usage
		req   placement.Request
		want  []device
	}{
		{"DGX full node: the PF of every rail", dgx, placement.Usage{}, auto(8), allPFs},
		{"DGX 2 GPUs: a VF on rail 0 (VFs before macvlans), a macvlan on rail 1", dgx, placement.Usage{}, auto(2), []device{
			{placement.KindVF, dgxVF0, 0, []string{dgxGPUs[0]}, topology.PIX},
			{placement.KindMacvlan, dgxNICs[1], 1, []string{dgxGPUs[1]}, topology.PIX}}},
		{"PCIe server: a 1-GPU pod shares the rail already shared", server,
			placement.Usage{GPUsInUse: 1, Allocations: []placement.Allocation{macvlan("ns/a", srvNIC1, srvGPU2)}}, auto(1), []device{
				{placement.KindMacvlan, srvNIC1, 1, []string{srvGPU3}, topology.NODE}}},
		{"nics one: one PF nearest every GPU", dgx, placement.Usage{}, placement.Request{GPUs: 8, NICs: placement.NICsOne}, []device{
			{placement.KindPF, dgxNICs[0], -1, nil, topology.PIX}}},
	}
	for _, tt := range tests {
		s := summarize(tt.node, tt.usage)
		cs, err := s.Plan(tt.req, s.Check(tt.req).Need, nil)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if diff := cmp.Diff(tt.want, devices(cs)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

// TestPlanWithGPUs is what the agent gives once kubelet has given the pod its GPUs.
func TestPlanWithGPUs(t *testing.T) {
	dgx := topologytest.DGXH100().Node()
	server := oneNICPerSocket()
	tests := []struct {
		name  string
		node  *topology.Node
		usage placement.Usage
		need  placement.Need
		gpus  []string
		want  []device
	}{
		{"shares on the rails of GPUs 5 and 2, in GPU order", dgx, placement.Usage{}, placement.NeedVF, []string{dgxGPUs[5], dgxGPUs[2]}, []device{
			{placement.KindMacvlan, dgxNICs[2], 2, []string{dgxGPUs[2]}, topology.PIX},
			{placement.KindMacvlan, dgxNICs[5], 5, []string{dgxGPUs[5]}, topology.PIX}}},
		{"two GPUs of one rail: one VF serves both", server, placement.Usage{}, placement.NeedVF, []string{srvGPU0, srvGPU1}, []device{
			{placement.KindVF, srvVF0, 0, []string{srvGPU0, srvGPU1}, topology.NODE}}},
		{"rail 0's PF is taken by a VF: the nearest free PF instead, its level said", dgx,
			placement.Usage{Allocations: []placement.Allocation{vf("ns/a", dgxNICs[0], dgxVF0)}}, placement.NeedPF, []string{dgxGPUs[0]}, []device{
				{placement.KindPF, dgxNICs[1], 0, []string{dgxGPUs[0]}, topology.NODE}}},
		{"a fallback share on another rail's NIC serves that rail's GPU too", server,
			placement.Usage{Allocations: []placement.Allocation{pf("ns/big", srvNIC0)}}, placement.NeedVF, []string{srvGPU1, srvGPU2}, []device{
				{placement.KindMacvlan, srvNIC1, 0, []string{srvGPU1, srvGPU2}, topology.SYS}}},
	}
	for _, tt := range tests {
		cs, err := summarize(tt.node, tt.usage).Plan(auto(len(tt.gpus)), tt.need, tt.gpus)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if diff := cmp.Diff(tt.want, devices(cs)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestPlanErrors(t *testing.T) {
	dgx := topologytest.DGXH100().Node()
	var everyPF []placement.Allocation
	for _, nic := range dgxNICs {
		everyPF = append(everyPF, pf("ns/big", nic))
	}
	s := summarize(dgx, placement.Usage{Allocations: everyPF})
	if _, err := s.Plan(auto(1), placement.NeedPF, []string{dgxGPUs[0]}); err == nil ||
		!strings.Contains(err.Error(), "no free device for a pod that needs a PF on rail 0 (0000:1a:00.0), nor on any other NIC") {
		t.Errorf("every PF taken: error %v", err)
	}
	if _, err := s.Plan(auto(1), placement.NeedVF, []string{"GPU-nope"}); err == nil || !strings.Contains(err.Error(), "GPU GPU-nope is not among the 8 GPUs") {
		t.Errorf("unknown GPU: error %v", err)
	}
	if cs, err := s.Plan(auto(1), placement.NeedNothing, nil); err != nil || cs != nil {
		t.Errorf("nothing needed: %v, %v", cs, err)
	}
	ib := summarize(infiniBand(topologytest.NoSRIOV().Node()), placement.Usage{})
	if cs, err := ib.Plan(auto(1), placement.NeedVF, []string{"0000:43:00.0"}); err == nil {
		t.Errorf("a share of an InfiniBand NIC without VFs: %+v, want none", cs)
	}
}

// TestProblems: what cannot be counted is reported and ignored; a device held twice stays taken.
func TestProblems(t *testing.T) {
	dgx := topologytest.DGXH100().Node()
	s := summarize(dgx, placement.Usage{Allocations: []placement.Allocation{
		pf("ns/a", "0000:ff:00.0"),
		pf("ns/b", "0000:0c:00.0"),
		vf("ns/c", dgxNICs[0], dgxNICs[1]),
		vf("ns/d", dgxNICs[0], dgxVF0), vf("ns/e", dgxNICs[0], dgxVF0),
		pf("ns/f", dgxNICs[3]), pf("ns/g", dgxNICs[3]),
	}})
	want := []string{
		"pod ns/a holds NIC 0000:ff:00.0, which node dgx-h100 does not offer (no such NIC): ignored",
		"pod ns/b holds NIC 0000:0c:00.0, which node dgx-h100 does not offer (it has no RDMA device): ignored",
		"pod ns/c holds VF 0000:42:00.0, which is not a VF of 0000:1a:00.0: ignored",
		"VF 0000:1a:00.2 is held by both ns/d and ns/e",
		"NIC 0000:60:00.0 is held whole by both ns/f and ns/g",
	}
	var got []string
	for _, p := range s.Problems {
		got = append(got, p.Message)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if got := s.FreeVFs(); got != 3 {
		t.Errorf("FreeVFs = %d, want 3: a VF held twice is taken once", got)
	}
	if got := s.FreePFs(); got != 6 {
		t.Errorf("FreePFs = %d, want 6", got)
	}
	if got := s.Problems[3].Pods; !slices.Equal(got, []string{"ns/d", "ns/e"}) {
		t.Errorf("a VF held twice names %v, want both holders", got)
	}
}

func TestCounts(t *testing.T) {
	dgx := topologytest.DGXH100().Node()
	s := summarize(dgx, placement.Usage{GPUsInUse: 3, Allocations: []placement.Allocation{
		vf("ns/a", dgxNICs[0], dgxVF0, dgxGPUs[0]), pf("ns/b", dgxNICs[1], dgxGPUs[1]), macvlan("ns/c", dgxNICs[2], dgxGPUs[2])}})
	if s.FreePFs() != 5 || s.FreeVFs() != 3 || s.RailsWhole() != 5 {
		t.Errorf("FreePFs %d, FreeVFs %d, RailsWhole %d: want 5, 3, 5", s.FreePFs(), s.FreeVFs(), s.RailsWhole())
	}
	rails := s.Rails()
	want := []placement.RailInfo{
		{Index: 0, NIC: dgxNICs[0], GPUs: []string{dgxGPUs[0]}, FreeGPUs: 0, PFFree: false, FreeShares: 3},
		{Index: 1, NIC: dgxNICs[1], GPUs: []string{dgxGPUs[1]}, FreeGPUs: 0, PFFree: false, FreeShares: 0},
		{Index: 2, NIC: dgxNICs[2], GPUs: []string{dgxGPUs[2]}, FreeGPUs: 0, PFFree: false, FreeShares: -1},
		{Index: 3, NIC: dgxNICs[3], GPUs: []string{dgxGPUs[3]}, FreeGPUs: 1, PFFree: true, FreeShares: -1},
	}
	if diff := cmp.Diff(want, rails[:4]); diff != "" {
		t.Errorf("rails (-want +got):\n%s", diff)
	}
}

func TestScore(t *testing.T) {
	dgx := topologytest.DGXH100().Node()
	server := oneNICPerSocket()
	tests := []struct {
		name  string
		node  *topology.Node
		usage placement.Usage
		req   placement.Request
		w     placement.Weights
		want  int
	}{
		{"full node, every rail PIX, PFs", dgx, placement.Usage{}, auto(8), placement.DefaultWeights, 10},
		{"pod that does not fit", dgx, placement.Usage{GPUsInUse: 1}, auto(8), placement.DefaultWeights, 0},
		// Default weights: fit 2, nic 1, whole 2, gdr 1. fit: GPUs in use afterwards; nic: PIX;
		// whole: a share on a node nobody uses breaks a whole node (0), a DGX rail's share costs
		// nothing once its one GPU is taken; gdr: every GPU PIX to its NIC.
		{"2 of 8 GPUs on an empty DGX", dgx, placement.Usage{}, auto(2), placement.DefaultWeights, (2*(10*2/8) + 10 + 2*0 + 10 + 3) / 6},
		{"2 of the 6 free GPUs of a DGX", dgx, placement.Usage{GPUsInUse: 2, Allocations: []placement.Allocation{
			macvlan("ns/a", dgxNICs[1], dgxGPUs[6]), macvlan("ns/b", dgxNICs[2], dgxGPUs[7])}}, auto(2), placement.DefaultWeights,
			(2*(10*4/8) + 10 + 2*10 + 10 + 3) / 6},
		{"PCIe server, full node: PHB and NODE rails, no GDR", server, placement.Usage{}, auto(4), placement.DefaultWeights,
			(2*10 + (6+4+6+4)/4 + 2*10 + 0 + 3) / 6},
		{"gdr off drops the GDR part", server, placement.Usage{}, placement.Request{GPUs: 4, GDR: placement.GDROff}, placement.DefaultWeights,
			(2*10 + (6+4+6+4)/4 + 2*10 + 2) / 5},
		{"PCIe server, one GPU: its share breaks a rail another free GPU needs whole", server,
			placement.Usage{GPUsInUse: 1, BusyGPUs: []string{srvGPU2}}, auto(1), placement.Weights{Whole: 1}, 0},
		{"PCIe server, one GPU where the rail is already shared", server, placement.Usage{GPUsInUse: 1, Allocations: []placement.Allocation{
			vf("ns/a", srvNIC0, srvVF0, srvGPU0)}}, auto(1), placement.Weights{Whole: 1}, 10},
		{"no GPU request", dgx, placement.Usage{}, placement.Request{}, placement.DefaultWeights, 10},
		{"zero weights", dgx, placement.Usage{}, auto(2), placement.Weights{}, 0},
	}
	for _, tt := range tests {
		if got := placement.Summarize(tt.node, tt.usage, tt.w).Score(tt.req); got != tt.want {
			t.Errorf("%s: Score = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestGPUsTheAgentReportsHeldAreNamed: a device's GPUs are busy before the pod informer
// counts its pod; a pod that needs them is told so, not that no rail is blocked.
func TestGPUsTheAgentReportsHeldAreNamed(t *testing.T) {
	held := placement.Allocation{Pod: "ns/other", Kind: placement.KindVF, NIC: dgxNICs[0], Device: dgxVF0, GPUs: []string{dgxGPUs[5]}}
	s := placement.Summarize(topologytest.DGXH100().Node(), placement.Usage{Allocations: []placement.Allocation{held}}, placement.DefaultWeights)
	if v := s.Check(placement.Request{GPUs: 8}); v.Fits || !strings.Contains(v.Reason, "7 of 8 free, 1 more held by devices") {
		t.Errorf("an 8-GPU pod: %+v; want refused, 7 of 8 GPUs free and 1 held by a device", v)
	}
}
