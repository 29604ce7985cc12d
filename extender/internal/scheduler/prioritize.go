package scheduler

import (
	"fmt"
	"slices"

	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/extender/internal/state"
	"github.com/topolane/topolane/topology/placement"
)

// Prioritize scores every node 0..10: exact GPU fit, a near NIC, whole PFs kept whole. Pods
// topolane does not act on score 0 everywhere, leaving the choice to the scheduler. Hand the
// list to ReleasePriorities once it is written out.
func (x *Extender) Prioritize(args *extenderv1.ExtenderArgs) (*extenderv1.HostPriorityList, error) {
	if args.Pod == nil {
		return nil, fmt.Errorf("%w: prioritize arguments carry no pod", ErrBadRequest)
	}
	names := nodeNames(args)
	list := priorities.Get().(*extenderv1.HostPriorityList)
	*list = slices.Grow((*list)[:0], len(names))[:len(names)]
	req, err := x.request(args.Pod)
	acts := err == nil && req.GPUs > 0 && req.Mode != placement.ModeNone
	err = x.store.Nodes(names, func(i int, view state.View) error {
		if !view.Known {
			return fmt.Errorf("%w: node %q is unknown to topolane (not in its Node cache)", ErrBadRequest, names[i])
		}
		(*list)[i] = extenderv1.HostPriority{Host: names[i]}
		if acts && view.Summary != nil {
			(*list)[i].Score = int64(view.Summary.Score(req, x.cfg.Weights))
		}
		return nil
	})
	if err != nil {
		ReleasePriorities(list)
		return nil, err
	}
	return list, nil
}
