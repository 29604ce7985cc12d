package placement

import "github.com/topolane/topolane/topology"

// MaxScore is the best score, as the scheduler extender protocol counts.
const MaxScore = 10

// Weights weigh the parts of a score.
type Weights struct {
	Fit   int // the pod takes exactly the node's free GPUs: keeps other nodes whole for full-node jobs
	NIC   int // its devices are near its GPUs (PIX > PXB > PHB > NODE > SYS)
	Whole int // its shares come from NICs already shared, not from whole PFs
	GDR   int // its GPUs reach their devices at PXB or nearer (topolane.io/gdr: preferred)
}

// DefaultWeights weigh keeping whole nodes whole (the fit, and shares that break nothing) twice
// as much as the devices' nearness and GPUDirect RDMA: measured on bench/scenarios/default.yaml,
// equal weights left 132 full-node pods waiting against 32, for 4% less bandwidth per GPU.
var DefaultWeights = Weights{Fit: 2, NIC: 1, Whole: 2, GDR: 1}

// Score rates a node for a pod, 0..MaxScore, with the weights the summary was made with; a node
// that does not fit scores 0.
func (s *Summary) Score(req Request) int {
	a := s.answer(req)
	if !a.fits() {
		return 0
	}
	return int(a.score)
}

// parts are a score's parts, each 0..MaxScore.
type parts struct{ fit, nic, whole, gdr int }

func (s *Summary) weigh(req Request, p parts) int {
	w := s.weights
	if req.GDR != GDRPreferred {
		w.GDR = 0
	}
	total := w.Fit + w.NIC + w.Whole + w.GDR
	if total <= 0 {
		return 0
	}
	sum := w.Fit*p.fit + w.NIC*p.nic + w.Whole*p.whole + w.GDR*p.gdr
	return (sum + total/2) / total
}

// fitScore is the share of the node's GPUs in use once the pod is placed (MostAllocated on
// GPUs): MaxScore when the pod takes every free GPU, less the more it leaves free.
func (s *Summary) fitScore(req Request) int {
	return MaxScore * (s.GPUsTotal - s.GPUsFree + req.GPUs) / max(s.GPUsTotal, 1)
}

// scoreRails scores the first req.GPUs GPUs of the plan: their rails' levels, how many of their
// shares cost no whole PF, how many reach their NIC at PXB or nearer. A share on a node nobody
// uses breaks a whole node, which a pod of every GPU needs: it costs the most.
func (s *Summary) scoreRails(req Request, need Need, p *plan) int {
	k := req.GPUs
	whole := MaxScore
	switch {
	case need == NeedPF:
	case s.untouched():
		whole = 0
	default:
		whole = MaxScore * p.costless[k] / max(p.rails[k], 1)
	}
	return s.weigh(req, parts{fit: s.fitScore(req), nic: p.levelScore[k] / k, whole: whole, gdr: MaxScore * p.gdr[k] / k})
}

// scoreOne scores the single device of topolane.io/nics: one.
func (s *Summary) scoreOne(req Request, need Need, c Choice) int {
	gdr := 0
	if !beyondPXB(c.Level) {
		gdr = MaxScore
	}
	return s.weigh(req, parts{fit: s.fitScore(req), nic: levelScore(c.Level), whole: s.wholeOne(need, c), gdr: gdr})
}

// untouched reports whether no pod holds anything on the node.
func (s *Summary) untouched() bool {
	if s.GPUsFree < s.GPUsTotal {
		return false
	}
	for _, st := range s.nics {
		if !st.wholeFree() {
			return false
		}
	}
	return true
}

var levelScores = map[topology.Level]int{
	topology.PIX: 10, topology.PXB: 8, topology.PHB: 6, topology.NODE: 4, topology.SYS: 2,
}

func levelScore(l topology.Level) int {
	if l.NVLinks() > 0 {
		return MaxScore
	}
	return levelScores[l]
}

// wholeOne: a share from a NIC already shared costs nothing; one that breaks a whole PF costs
// more when it is the node's last.
func (s *Summary) wholeOne(need Need, c Choice) int {
	switch {
	case need == NeedPF || c.Shared:
		return MaxScore
	case s.FreePFs() > 1:
		return MaxScore / 2
	}
	return 0
}
