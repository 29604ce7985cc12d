package scheduler

import (
	"cmp"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/extender/internal/state"
	"github.com/topolane/topolane/topology/placement"
)

// maxSearch bounds the exhaustive search for the fewest extra victims on a node (2^maxSearch
// sets); beyond it extra victims are added greedily, lowest priority first.
const maxSearch = 12

// Preempt checks the scheduler's preemption candidates against the devices the pod needs: for
// each node it keeps the scheduler's victims if evicting them frees the whole PF of each rail or
// the shares the pod needs, adds the fewest lower-priority holders of the blocking devices
// otherwise, and drops the node when no set of lower-priority pods would do. A node is never
// returned without victims.
func (x *Extender) Preempt(args *extenderv1.ExtenderPreemptionArgs) (*extenderv1.ExtenderPreemptionResult, error) {
	if args.Pod == nil {
		return nil, fmt.Errorf("%w: preemption arguments carry no pod", ErrBadRequest)
	}
	victims := metaVictims(args)
	res := &extenderv1.ExtenderPreemptionResult{NodeNameToMetaVictims: map[string]*extenderv1.MetaVictims{}}
	req, err := x.request(args.Pod)
	if err != nil {
		return nil, fmt.Errorf("%w: pod %s/%s: %v", ErrBadRequest, args.Pod.Namespace, args.Pod.Name, err)
	}
	if !acts(req) {
		for node, v := range victims {
			if len(v.Pods) > 0 {
				res.NodeNameToMetaVictims[node] = v
			}
		}
		return res, nil
	}
	for node, v := range victims {
		if kept := x.victimsOn(args.Pod, req, node, v); kept != nil {
			res.NodeNameToMetaVictims[node] = kept
		}
	}
	return res, nil
}

// victimsOn is the victims that free what the pod needs on node, or nil.
func (x *Extender) victimsOn(pod *corev1.Pod, req placement.Request, node string, given *extenderv1.MetaVictims) *extenderv1.MetaVictims {
	uids := []types.UID{pod.UID} // the pod's own reservation never counts against it
	for _, p := range given.Pods {
		uids = append(uids, types.UID(p.UID))
	}
	if x.fitsWithout(req, node, uids) {
		if len(given.Pods) == 0 {
			return nil
		}
		return given
	}
	extra, ok := x.fewestExtra(req, node, uids, x.candidates(pod, node, uids))
	if !ok {
		return nil
	}
	out := &extenderv1.MetaVictims{Pods: slices.Clone(given.Pods), NumPDBViolations: given.NumPDBViolations}
	for _, h := range extra {
		out.Pods = append(out.Pods, &extenderv1.MetaPod{UID: string(h.UID)})
	}
	return out
}

// fitsWithout reports whether the pod fits the node once the pods are gone.
func (x *Extender) fitsWithout(req placement.Request, node string, uids []types.UID) bool {
	view := x.store.NodeWithout(node, uids...)
	if view.Summary == nil {
		return false
	}
	shape := x.shapeFor(req, []string{node}, ownView{node: node, view: view})
	fits, _ := view.Summary.Lookup(shape)
	return fits
}

// candidates are the node's holders of lower priority than the pod, not victims already,
// lowest priority first, then fewest GPUs.
func (x *Extender) candidates(pod *corev1.Pod, node string, victims []types.UID) []state.Holder {
	prio := int32(0)
	if pod.Spec.Priority != nil {
		prio = *pod.Spec.Priority
	}
	var out []state.Holder
	for _, h := range x.store.Holders(node) {
		if h.Priority < prio && !slices.Contains(victims, h.UID) {
			out = append(out, h)
		}
	}
	slices.SortFunc(out, func(a, b state.Holder) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.GPUs, b.GPUs), cmp.Compare(a.Pod, b.Pod))
	})
	return out
}

// fewestExtra finds the smallest set of candidates whose eviction, with the victims', lets the
// pod fit: every set of one, then of two, and so on; greedily past maxSearch candidates.
func (x *Extender) fewestExtra(req placement.Request, node string, victims []types.UID, cands []state.Holder) ([]state.Holder, bool) {
	if len(cands) > maxSearch {
		return x.greedyExtra(req, node, victims, cands)
	}
	for size := 1; size <= len(cands); size++ {
		var found []state.Holder
		combinations(len(cands), size, func(idx []int) bool {
			set := make([]state.Holder, len(idx))
			uids := slices.Clone(victims)
			for i, j := range idx {
				set[i] = cands[j]
				uids = append(uids, cands[j].UID)
			}
			if x.fitsWithout(req, node, uids) {
				found = set
				return false
			}
			return true
		})
		if found != nil {
			return found, true
		}
	}
	return nil, false
}

func (x *Extender) greedyExtra(req placement.Request, node string, victims []types.UID, cands []state.Holder) ([]state.Holder, bool) {
	uids := slices.Clone(victims)
	for i, h := range cands {
		uids = append(uids, h.UID)
		if x.fitsWithout(req, node, uids) {
			return cands[:i+1], true
		}
	}
	return nil, false
}

// combinations calls fn with every k-subset of 0..n-1 in lexical order until fn returns false.
func combinations(n, k int, fn func([]int) bool) {
	idx := make([]int, k)
	var walk func(pos, start int) bool
	walk = func(pos, start int) bool {
		if pos == k {
			return fn(idx)
		}
		for i := start; i <= n-(k-pos); i++ {
			idx[pos] = i
			if !walk(pos+1, i+1) {
				return false
			}
		}
		return true
	}
	walk(0, 0)
}

// metaVictims reads the candidates in either form the scheduler sends.
func metaVictims(args *extenderv1.ExtenderPreemptionArgs) map[string]*extenderv1.MetaVictims {
	if args.NodeNameToMetaVictims != nil {
		return args.NodeNameToMetaVictims
	}
	out := map[string]*extenderv1.MetaVictims{}
	for node, v := range args.NodeNameToVictims {
		m := &extenderv1.MetaVictims{NumPDBViolations: v.NumPDBViolations}
		for _, p := range v.Pods {
			m.Pods = append(m.Pods, &extenderv1.MetaPod{UID: string(p.UID)})
		}
		out[node] = m
	}
	return out
}
