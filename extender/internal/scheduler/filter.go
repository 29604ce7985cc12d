package scheduler

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

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
	verdicts, err := x.verdicts(names, req)
	if err != nil {
		return nil, err
	}
	if x.shouldFallBack(req, verdicts) {
		req.Mode = placement.ModeVF
		if verdicts, err = x.verdicts(names, req); err != nil {
			return nil, err
		}
	}
	return x.result(args, names, verdicts), nil
}

func (x *Extender) verdicts(names []string, req placement.Request) ([]placement.Verdict, error) {
	vs := make([]placement.Verdict, len(names))
	for i, name := range names {
		v, err := x.verdict(name, req)
		if err != nil {
			return nil, err
		}
		vs[i] = v
	}
	return vs, nil
}

// shouldFallBack: under fallback-vf, an auto pod that found no node with a free PF is served a VF.
func (x *Extender) shouldFallBack(req placement.Request, vs []placement.Verdict) bool {
	if x.cfg.NoPF != NoPFFallbackVF || req.Mode != placement.ModeAuto {
		return false
	}
	noPF := false
	for _, v := range vs {
		if v.Fits {
			return false
		}
		noPF = noPF || v.Code == placement.CodeNoFreePF
	}
	return noPF
}

func (x *Extender) result(args *extenderv1.ExtenderArgs, names []string, vs []placement.Verdict) *extenderv1.ExtenderFilterResult {
	res := &extenderv1.ExtenderFilterResult{FailedNodes: extenderv1.FailedNodesMap{}, FailedAndUnresolvableNodes: extenderv1.FailedNodesMap{}}
	var pass []int
	for i, v := range vs {
		switch {
		case v.Fits:
			pass = append(pass, i)
		case v.Unresolvable:
			res.FailedAndUnresolvableNodes[names[i]] = "topolane: " + v.Reason
		default:
			res.FailedNodes[names[i]] = "topolane: " + v.Reason
		}
		if !v.Fits {
			x.metrics.rejected.WithLabelValues(v.Code).Inc()
		}
	}
	keep(args, res, pass)
	return res
}

func (x *Extender) rejectAll(args *extenderv1.ExtenderArgs, names []string, v placement.Verdict) *extenderv1.ExtenderFilterResult {
	vs := make([]placement.Verdict, len(names))
	for i := range vs {
		vs[i] = v
	}
	return x.result(args, names, vs)
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
