package placement

// The scheduler asks the same few questions of every node again and again: does a pod of this
// shape fit, and how well. A summary answers them all once, when it is made, into a table by
// pod shape (mode × nics × gdr × GPU count); a request reads one entry per node. Reasons are
// worded only for nodes that reject a pod.

// answer is one entry of the table, four bytes.
type answer struct {
	flags uint8
	need  Need
	code  uint8 // index into codes
	score uint8
}

const (
	answerFits uint8 = 1 << iota
	answerUnresolvable
)

func (a answer) fits() bool         { return a.flags&answerFits != 0 }
func (a answer) unresolvable() bool { return a.flags&answerUnresolvable != 0 }

func fitting(need Need, score int) answer {
	return answer{flags: answerFits, need: need, score: uint8(score)}
}

func rejecting(need Need, code string, unresolvable bool) answer {
	a := answer{need: need, code: codeIndex(code)}
	if unresolvable {
		a.flags |= answerUnresolvable
	}
	return a
}

// The shape axes, in table order.
var (
	tableModes = [...]Mode{ModeAuto, ModePF, ModeVF}
	tableNICs  = [...]NICs{NICsRails, NICsOne}
	tableGDRs  = [...]GDR{GDRPreferred, GDRRequired, GDROff}
)

const tableShapes = len(tableModes) * len(tableNICs) * len(tableGDRs)

// shapeIndex is the table row of a request's mode, nics and gdr, or -1 for one the table does
// not hold (mode none, or a value no parser accepts).
func shapeIndex(req Request) int {
	m, n, g := indexOf(tableModes[:], req.Mode), indexOf(tableNICs[:], req.NICs), indexOf(tableGDRs[:], req.GDR)
	if m < 0 || n < 0 || g < 0 {
		return -1
	}
	return (m*len(tableNICs)+n)*len(tableGDRs) + g
}

func indexOf[T comparable](xs []T, x T) int {
	for i, y := range xs {
		if y == x {
			return i
		}
	}
	return -1
}

// fillTable answers every shape for 1..GPUsTotal GPUs.
func (s *Summary) fillTable() {
	plans := s.plans()
	for _, need := range []Need{NeedPF, NeedVF} {
		if c, ok := s.chooseOne(need, nil, nil); ok {
			plans.one[need] = &c
		}
	}
	s.table = make([]answer, tableShapes*s.GPUsTotal)
	for _, mode := range tableModes {
		for _, nics := range tableNICs {
			for _, gdr := range tableGDRs {
				req := Request{Mode: mode, NICs: nics, GDR: gdr}
				row := shapeIndex(req) * s.GPUsTotal
				for gpus := 1; gpus <= s.GPUsTotal; gpus++ {
					req.GPUs = gpus
					s.table[row+gpus-1] = s.answerFor(req, &plans)
				}
			}
		}
	}
}

// answer looks a request up, or works it out when the table does not hold its shape.
func (s *Summary) answer(req Request) answer {
	req = req.normal()
	if i := s.tableIndex(req); i >= 0 {
		return s.table[i]
	}
	return s.answerFor(req, nil)
}

// tableIndex is the request's entry in the table, or -1 when the table does not hold it.
func (s *Summary) tableIndex(req Request) int {
	if row := shapeIndex(req); row >= 0 && req.GPUs >= 1 && req.GPUs <= s.GPUsTotal {
		return row*s.GPUsTotal + req.GPUs - 1
	}
	return -1
}

// answerFor decides a request from the summary. plans may be nil when the request needs none
// (no GPUs, mode none, more GPUs than the node has, a mode no parser accepts).
func (s *Summary) answerFor(req Request, plans *railPlans) answer {
	switch {
	case req.GPUs <= 0 || req.Mode == ModeNone:
		return fitting(NeedNothing, MaxScore)
	case shapeIndex(req) < 0:
		return rejecting(NeedNothing, CodeBadRequest, true)
	case s.GPUsTotal == 0:
		return rejecting(NeedNothing, CodeNoGPUs, true)
	case req.GPUs > s.GPUsTotal:
		return rejecting(NeedNothing, CodeTooFewGPUs, true)
	case req.GPUs > s.GPUsFree:
		return rejecting(NeedNothing, CodeGPUsBusy, false)
	}
	need := Decide(req, s.GPUsFree)
	switch {
	case len(s.nics) == 0:
		return rejecting(need, CodeNoRDMANIC, true)
	case req.NICs == NICsOne:
		return s.answerOne(req, need, plans)
	}
	return s.answerRails(req, need, plans)
}

// Shape is a request made ready to ask many summaries: its table row is worked out once.
type Shape struct {
	Request Request
	row     int // -1 when the table does not hold the shape
}

// ShapeOf prepares a request.
func ShapeOf(req Request) Shape {
	req = req.normal()
	return Shape{Request: req, row: shapeIndex(req)}
}

// Lookup is Fits and Score at once, for the scheduler's pass over thousands of nodes: one table
// entry per node.
func (s *Summary) Lookup(sh Shape) (fits bool, score int) {
	var a answer
	if g := sh.Request.GPUs; sh.row >= 0 && g >= 1 && g <= s.GPUsTotal {
		a = s.table[sh.row*s.GPUsTotal+g-1]
	} else {
		a = s.answerFor(sh.Request, nil)
	}
	return a.fits(), int(a.score)
}

// Code is why the node rejects a pod of the shape, or "" when it fits.
func (s *Summary) Code(sh Shape) string {
	if g := sh.Request.GPUs; sh.row >= 0 && g >= 1 && g <= s.GPUsTotal {
		return codes[s.table[sh.row*s.GPUsTotal+g-1].code]
	}
	return codes[s.answerFor(sh.Request, nil).code]
}
