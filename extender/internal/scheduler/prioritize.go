package scheduler

import (
	"fmt"

	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/topology/placement"
)

// Prioritize scores every node 0..10: exact GPU fit, a near NIC, whole PFs kept whole. Pods
// topolane does not act on score 0 everywhere, leaving the choice to the scheduler.
func (x *Extender) Prioritize(args *extenderv1.ExtenderArgs) (*extenderv1.HostPriorityList, error) {
	if args.Pod == nil {
		return nil, fmt.Errorf("%w: prioritize arguments carry no pod", ErrBadRequest)
	}
	names := nodeNames(args)
	list := make(extenderv1.HostPriorityList, len(names))
	req, err := x.request(args.Pod)
	acts := err == nil && req.GPUs > 0 && req.Mode != placement.ModeNone
	for i, name := range names {
		view := x.store.Node(name)
		if !view.Known {
			return nil, fmt.Errorf("%w: node %q is unknown to topolane (not in its Node cache)", ErrBadRequest, name)
		}
		list[i] = extenderv1.HostPriority{Host: name}
		if acts && view.Summary != nil {
			list[i].Score = int64(view.Summary.Score(req, x.cfg.Weights))
		}
	}
	return &list, nil
}
