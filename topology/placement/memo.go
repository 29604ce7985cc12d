package placement

import "sync/atomic"

// memoGPUs is the largest GPU count a summary remembers answers for; larger requests are
// answered afresh (no node has that many GPUs anyway: the request is rejected at once).
const memoGPUs = 16

// memo remembers what a summary said, by mode and GPU count: a pending pod is checked and scored
// again and again, and the summary does not change. The arrays sit inside the Summary so that
// the scheduler's pass over thousands of nodes touches one cache line per node: a word packs
// whether the node fits, what it needs and its score; the rest of a rejection is behind a pointer.
type memo struct {
	words    [4][memoGPUs + 1]atomic.Uint32
	verdicts [4][memoGPUs + 1]atomic.Pointer[Verdict] // rejections only
	// scoreWeights are the weights the remembered scores are for: the first asked.
	scoreWeights atomic.Pointer[Weights]
}

// Bits of a memo word.
const (
	wordChecked  = 1 << 0
	wordFits     = 1 << 1
	wordScored   = 1 << 2
	wordNeedAt   = 3 // 2 bits
	wordScoreAt  = 5 // 4 bits, 0..MaxScore
	wordNeedMask = 3
)

// slot is where answers to req are remembered, or nil for a request that is not remembered
// (an unknown mode, a negative or too large GPU count).
func (m *memo) slot(req Request) (*atomic.Uint32, *atomic.Pointer[Verdict]) {
	i := modeIndex(req.Mode)
	if i < 0 || req.GPUs < 0 || req.GPUs > memoGPUs {
		return nil, nil
	}
	return &m.words[i][req.GPUs], &m.verdicts[i][req.GPUs]
}

// modeIndex is the mode's index in the memo, or -1.
func modeIndex(m Mode) int {
	switch m {
	case ModeAuto, "":
		return 0
	case ModePF:
		return 1
	case ModeVF:
		return 2
	case ModeNone:
		return 3
	}
	return -1
}

// recall returns a remembered verdict.
func recall(word *atomic.Uint32, rejection *atomic.Pointer[Verdict]) (Verdict, bool) {
	w := word.Load()
	switch {
	case w&wordChecked == 0:
		return Verdict{}, false
	case w&wordFits != 0:
		return fits(Need(w >> wordNeedAt & wordNeedMask)), true
	}
	if v := rejection.Load(); v != nil {
		return *v, true
	}
	return Verdict{}, false
}

// remember stores a verdict. A rejection is stored before the word that points readers to it.
func remember(word *atomic.Uint32, rejection *atomic.Pointer[Verdict], v Verdict) {
	w := uint32(wordChecked) | uint32(v.Need)<<wordNeedAt
	if v.Fits {
		w |= wordFits
	} else {
		rejection.Store(&v)
	}
	word.CompareAndSwap(0, w)
}

// recallScore returns a remembered score for weights w.
func (m *memo) recallScore(word *atomic.Uint32, w Weights) (int, bool) {
	bits := word.Load()
	if bits&wordScored == 0 {
		return 0, false
	}
	if sw := m.scoreWeights.Load(); sw == nil || *sw != w {
		return 0, false
	}
	return int(bits >> wordScoreAt & 0xf), true
}

// rememberScore stores a score for weights w, if they are the weights scores are kept for.
func (m *memo) rememberScore(word *atomic.Uint32, w Weights, score int) {
	m.scoreWeights.CompareAndSwap(nil, &w)
	if *m.scoreWeights.Load() != w {
		return
	}
	for {
		old := word.Load()
		if old&wordChecked == 0 || word.CompareAndSwap(old, old|wordScored|uint32(score)<<wordScoreAt) {
			return
		}
	}
}
