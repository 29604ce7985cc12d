package scheduler

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/extender/internal/state"
	"github.com/topolane/topolane/topology/placement"
)

// Filter keeps the nodes that can give the pod the NIC it needs and says why of every other.
func (x *Extender) Filter(args *extenderv1.ExtenderArgs) (*extenderv1.ExtenderFilterResult, error) {
	if args.Pod == nil {
		return nil, fmt.Errorf("%w: filter arguments carry no pod", ErrBadRequest)
	}
	names := nodeNames(args)
	req, err := x.request(args.Pod)
	if err != nil {
		return x.rejectAll(args, names, placement.Verdict{Code: placement.CodeBadRequest, Unresolvable: true, Reason: err.Error()}), nil
	}
	if req.GPUs == 0 || req.Mode == placement.ModeNone {
		return passAll(args, names), nil
	}
	res, tally, err := x.filterNodes(args, names, req)
	if err == nil && x.shouldFallBack(req, tally) {
		req.Mode = placement.ModeVF
		res, tally, err = x.filterNodes(args, names, req)
	}
	if err != nil {
		return nil, err
	}
	x.count(tally)
	return res, nil
}

// tally counts the verdicts of one filter pass: nodes that fit, and rejections by code.
type tally struct {
	fits     int
	rejected map[string]int
}

// filterNodes decides every node in one pass, writing the answer as it goes.
func (x *Extender) filterNodes(args *extenderv1.ExtenderArgs, names []string, req placement.Request) (*extenderv1.ExtenderFilterResult, tally, error) {
	res := &extenderv1.ExtenderFilterResult{FailedNodes: extenderv1.FailedNodesMap{}, FailedAndUnresolvableNodes: extenderv1.FailedNodesMap{}}
	t := tally{rejected: map[string]int{}}
	pass := make([]int, 0, len(names))
	reasons := map[string]string{} // reason -> "topolane: " + reason, made once per request
	err := x.store.Nodes(names, func(i int, view state.View) error {
		v, err := verdictOf(view, names[i], req)
		switch {
		case err != nil:
			return err
		case v.Fits:
			pass = append(pass, i)
			t.fits++
			return nil
		case v.Unresolvable:
			res.FailedAndUnresolvableNodes[names[i]] = prefixed(reasons, v.Reason)
		default:
			res.FailedNodes[names[i]] = prefixed(reasons, v.Reason)
		}
		t.rejected[v.Code]++
		return nil
	})
	keep(args, res, pass)
	return res, t, err
}

// prefixed marks a reason as topolane's in the pod's events, making each string once.
func prefixed(seen map[string]string, reason string) string {
	p, ok := seen[reason]
	if !ok {
		p = "topolane: " + reason
		seen[reason] = p
	}
	return p
}

// shouldFallBack: under fallback-vf, an auto pod that found no node with a free PF is served a VF.
func (x *Extender) shouldFallBack(req placement.Request, t tally) bool {
	return x.cfg.NoPF == NoPFFallbackVF && req.Mode == placement.ModeAuto && t.fits == 0 && t.rejected[placement.CodeNoFreePF] > 0
}

func (x *Extender) count(t tally) {
	for code, n := range t.rejected {
		x.metrics.rejected.WithLabelValues(code).Add(float64(n))
	}
}

func (x *Extender) rejectAll(args *extenderv1.ExtenderArgs, names []string, v placement.Verdict) *extenderv1.ExtenderFilterResult {
	res := &extenderv1.ExtenderFilterResult{FailedNodes: extenderv1.FailedNodesMap{}, FailedAndUnresolvableNodes: extenderv1.FailedNodesMap{}}
	for _, name := range names {
		res.FailedAndUnresolvableNodes[name] = "topolane: " + v.Reason
	}
	keep(args, res, nil)
	x.count(tally{rejected: map[string]int{v.Code: len(names)}})
	return res
}

func passAll(args *extenderv1.ExtenderArgs, names []string) *extenderv1.ExtenderFilterResult {
	res := &extenderv1.ExtenderFilterResult{}
	all := make([]int, len(names))
	for i := range all {
		all[i] = i
	}
	keep(args, res, all)
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
		names := make([]string, len(idx))
		for j, i := range idx {
			names[j] = (*args.NodeNames)[i]
		}
		res.NodeNames = &names
		return
	}
	nodes := &corev1.NodeList{Items: make([]corev1.Node, len(idx))}
	for j, i := range idx {
		nodes.Items[j] = args.Nodes.Items[i]
	}
	res.Nodes = nodes
}
