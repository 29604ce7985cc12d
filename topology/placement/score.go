package placement

import "github.com/topolane/topolane/topology"

// MaxScore is the best score, as the scheduler extender protocol counts.
const MaxScore = 10

// Weights weigh the parts of a score.
type Weights struct {
	Fit   int // the pod takes exactly the node's free GPUs: keeps other nodes whole for full-node jobs
	NIC   int // the NIC it would get is near the GPUs (PIX > PXB > PHB > NODE > SYS)
	Whole int // a share comes from a NIC already shared, not from a whole PF
}

// DefaultWeights count each part the same.
var DefaultWeights = Weights{Fit: 1, NIC: 1, Whole: 1}

// Score rates a node for a pod, 0..MaxScore; a node that does not fit scores 0. Scores are
// remembered with the verdict.
func (s *Summary) Score(req Request, w Weights) int {
	word, _ := s.memo.slot(req)
	if word == nil {
		return s.score(req, s.check(req), w)
	}
	if score, ok := s.memo.recallScore(word, w); ok {
		return score
	}
	score := s.score(req, s.Check(req), w)
	s.memo.rememberScore(word, w, score)
	return score
}

func (s *Summary) score(req Request, v Verdict, w Weights) int {
	total := w.Fit + w.NIC + w.Whole
	if !v.Fits || total <= 0 {
		return 0
	}
	if v.Need == NeedNothing {
		return MaxScore
	}
	c, err := s.Choose(v.Need, nil)
	if err != nil {
		return 0
	}
	sum := w.Fit*s.fitScore(req) + w.NIC*levelScore(c.Level) + w.Whole*s.wholeScore(v.Need, c)
	return (sum + total/2) / total
}

// fitScore is MaxScore when the pod takes every free GPU, less the more it leaves free.
func (s *Summary) fitScore(req Request) int {
	return MaxScore * req.GPUs / max(s.GPUsFree, 1)
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

// wholeScore: a share from a NIC already shared costs nothing; one that breaks a whole PF costs
// more when it is the node's last.
func (s *Summary) wholeScore(need Need, c Choice) int {
	switch {
	case need == NeedPF || c.Shared:
		return MaxScore
	case s.FreePFs() > 1:
		return MaxScore / 2
	}
	return 0
}
