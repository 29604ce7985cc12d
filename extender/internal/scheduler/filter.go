package scheduler

import (
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/extender/internal/state"
	"github.com/topolane/topolane/topology/placement"
)

// Filter keeps the nodes that can give the pod the devices it needs and says why of every
// other. Hand the result to ReleaseFilter once it is written out.
func (x *Extender) Filter(args *extenderv1.ExtenderArgs) (*extenderv1.ExtenderFilterResult, error) {
	if args.Pod == nil {
		return nil, fmt.Errorf("%w: filter arguments carry no pod", ErrBadRequest)
	}
	names := nodeNames(args)
	req, err := x.request(args.Pod)
	if err != nil {
		return x.rejectAll(args, names, placement.Verdict{Code: placement.CodeBadRequest, Unresolvable: true, Reason: err.Error()}), nil
	}
	if !acts(req) {
		return passAll(args, names), nil
	}
	own := x.ownViewOf(args.Pod)
	p := passes.Get().(*filterPass)
	defer passes.Put(p)
	res := x.filterNodes(p, args, names, x.shapeFor(req, names, own), own)
	x.count(p.tally)
	return res, nil
}

// The answers of filter and prioritize are recycled: at 5,000 nodes they are hundreds of
// kilobytes a request, and the garbage collector they would wake is most of the tail latency.
var (
	results    = sync.Pool{New: func() any { return &extenderv1.ExtenderFilterResult{} }}
	priorities = sync.Pool{New: func() any { return new(extenderv1.HostPriorityList) }}
	passes     = sync.Pool{New: func() any { return &filterPass{reasons: map[string]string{}} }}
)

// newResult is an empty filter result from the pool.
func newResult() *extenderv1.ExtenderFilterResult {
	res := results.Get().(*extenderv1.ExtenderFilterResult)
	if res.FailedNodes == nil {
		res.FailedNodes, res.FailedAndUnresolvableNodes = extenderv1.FailedNodesMap{}, extenderv1.FailedNodesMap{}
	}
	if res.NodeNames == nil {
		res.NodeNames = &[]string{} // [] not null: no node passed
	}
	return res
}

// ReleaseFilter recycles a result of Filter; nothing may use it afterwards. nil is ignored.
func ReleaseFilter(res *extenderv1.ExtenderFilterResult) {
	if res == nil {
		return
	}
	clear(res.FailedNodes)
	clear(res.FailedAndUnresolvableNodes)
	if res.NodeNames != nil {
		*res.NodeNames = (*res.NodeNames)[:0]
	}
	*res = extenderv1.ExtenderFilterResult{FailedNodes: res.FailedNodes, FailedAndUnresolvableNodes: res.FailedAndUnresolvableNodes, NodeNames: res.NodeNames}
	results.Put(res)
}

// ReleasePriorities recycles a result of Prioritize; nothing may use it afterwards.
func ReleasePriorities(list *extenderv1.HostPriorityList) {
	if list != nil {
		*list = (*list)[:0]
		priorities.Put(list)
	}
}

// filterPass is the scratch of one filter pass.
type filterPass struct {
	tally   tally
	pass    []int             // indexes of the nodes that fit
	reasons map[string]string // reason -> "topolane: " + reason, made once
}

// tally counts the verdicts of one filter pass: nodes that fit, and rejections by code.
type tally struct {
	fits     int
	rejected []codeCount
}

type codeCount struct {
	code string
	n    int
}

func (t *tally) reject(code string, n int) {
	for i := range t.rejected {
		if t.rejected[i].code == code {
			t.rejected[i].n += n
			return
		}
	}
	t.rejected = append(t.rejected, codeCount{code, n})
}

// filterNodes decides every node in one pass, writing the answer as it goes. Most nodes are
// decided by one byte of the store's column for the shape; only rejections are worded.
func (x *Extender) filterNodes(p *filterPass, args *extenderv1.ExtenderArgs, names []string, shape placement.Shape, own ownView) *extenderv1.ExtenderFilterResult {
	res := newResult()
	p.tally = tally{rejected: p.tally.rejected[:0]}
	p.pass = p.pass[:0]
	fit := func(i, _ int) {
		p.pass = append(p.pass, i)
		p.tally.fits++
	}
	x.store.Pass(names, shape, own.node, fit, func(i int, view state.View, memo *state.Memo) {
		if own.node != "" && names[i] == own.node {
			if view = own.view; view.Known && view.Summary != nil {
				if fits, _ := view.Summary.Lookup(shape); fits {
					fit(i, 0)
					return
				}
			}
		}
		r := p.rejection(view, names[i], shape, memo)
		if r.Unresolvable {
			res.FailedAndUnresolvableNodes[names[i]] = r.Reason
		} else {
			res.FailedNodes[names[i]] = r.Reason
		}
		p.tally.reject(r.Code, 1)
	})
	keep(args, res, p.pass)
	return res
}

// rejection is why the node refuses the shape, as the answer words it: kept in memo (when
// there is one) for the next pass.
func (p *filterPass) rejection(view state.View, name string, shape placement.Shape, memo *state.Memo) *state.Rejection {
	if memo != nil {
		if r := memo.Load(); r != nil {
			return r
		}
	}
	v := verdictOf(view, name, shape)
	r := &state.Rejection{Code: v.Code, Unresolvable: v.Unresolvable, Reason: p.prefixed(v.Reason)}
	if memo != nil {
		memo.Store(r)
	}
	return r
}

// prefixed marks a reason as topolane's in the pod's events, making each string once.
func (p *filterPass) prefixed(reason string) string {
	s, ok := p.reasons[reason]
	if !ok {
		if len(p.reasons) > 1024 { // reasons name pods: do not keep them forever
			clear(p.reasons)
		}
		s = "topolane: " + reason
		p.reasons[reason] = s
	}
	return s
}

func (x *Extender) count(t tally) {
	for _, c := range t.rejected {
		x.metrics.rejected.WithLabelValues(c.code).Add(float64(c.n))
	}
}

func (x *Extender) rejectAll(args *extenderv1.ExtenderArgs, names []string, v placement.Verdict) *extenderv1.ExtenderFilterResult {
	res := newResult()
	reason := "topolane: " + v.Reason
	for _, name := range names {
		res.FailedAndUnresolvableNodes[name] = reason
	}
	keep(args, res, nil)
	t := tally{}
	t.reject(v.Code, len(names))
	x.count(t)
	return res
}

func passAll(args *extenderv1.ExtenderArgs, names []string) *extenderv1.ExtenderFilterResult {
	res := newResult()
	if args.NodeNames != nil || args.Nodes == nil {
		*res.NodeNames = append(*res.NodeNames, names...)
		return res
	}
	res.NodeNames, res.Nodes = nil, args.Nodes // answered in the form asked
	return res
}

// nodeNames reads the candidates from either form the scheduler sends: names alone
// (nodeCacheCapable) or whole Node objects.
func nodeNames(args *extenderv1.ExtenderArgs) []string {
	if args.NodeNames != nil {
		return *args.NodeNames
	}
	if args.Nodes == nil {
		return nil
	}
	names := make([]string, len(args.Nodes.Items))
	for i := range args.Nodes.Items {
		names[i] = args.Nodes.Items[i].Name
	}
	return names
}

// keep answers in the form asked: the passing names, or the passing Node objects.
func keep(args *extenderv1.ExtenderArgs, res *extenderv1.ExtenderFilterResult, idx []int) {
	if args.NodeNames != nil || args.Nodes == nil {
		names := *res.NodeNames
		for _, i := range idx {
			names = append(names, (*args.NodeNames)[i])
		}
		*res.NodeNames = names
		return
	}
	nodes := &corev1.NodeList{Items: make([]corev1.Node, len(idx))}
	for j, i := range idx {
		nodes.Items[j] = args.Nodes.Items[i]
	}
	res.NodeNames, res.Nodes = nil, nodes
}
