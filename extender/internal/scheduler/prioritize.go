package scheduler

import (
	"fmt"
	"slices"

	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/extender/internal/state"
)

// Prioritize scores every node 0..10: exact GPU fit, near devices, whole PFs kept whole,
// GPUDirect RDMA. Pods topolane does not act on, and nodes it knows nothing of, score 0,
// leaving the choice to the scheduler. The pod is scored as Filter decided it. Hand the list to
// ReleasePriorities once it is written out.
func (x *Extender) Prioritize(args *extenderv1.ExtenderArgs) (*extenderv1.HostPriorityList, error) {
	if args.Pod == nil {
		return nil, fmt.Errorf("%w: prioritize arguments carry no pod", ErrBadRequest)
	}
	names := nodeNames(args)
	list := priorities.Get().(*extenderv1.HostPriorityList)
	*list = slices.Grow((*list)[:0], len(names))[:len(names)]
	for i, name := range names {
		(*list)[i] = extenderv1.HostPriority{Host: name}
	}
	req, err := x.request(args.Pod)
	if err != nil || !acts(req) {
		return list, nil
	}
	own := x.ownViewOf(args.Pod)
	shape := x.shapeFor(req, names, own)
	x.store.Pass(names, shape, own.node, func(i, score int) {
		(*list)[i].Score = int64(score)
	}, func(i int, view state.View, _ *state.Memo) {
		// A node with a summary but no Node object yet scores as it fits (filter rejects it
		// first, so the scheduler rarely asks); the pod's own node is seen without its
		// reservation.
		if view = own.of(names[i], view); view.Summary != nil {
			if fits, score := view.Summary.Lookup(shape); fits {
				(*list)[i].Score = int64(score)
			}
		}
	})
	return list, nil
}
