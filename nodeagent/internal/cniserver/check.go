package cniserver

import (
	"errors"

	"github.com/topolane/topolane/nodeagent/internal/attach"
	"github.com/topolane/topolane/nodeagent/internal/validate"
)

// check validates every field the command acts on, before the agent sees the call: a bad
// CNI_* value is code 4, a bad network config code 7.
func (s *Server) check(call Call) error {
	if err := s.checkEnv(call); err != nil {
		return &attach.Error{Code: attach.CodeEnv, Err: err}
	}
	if call.Command == "ADD" || call.Command == "CHECK" {
		if err := validate.NetConf(call.Request.NetConf); err != nil {
			return &attach.Error{Code: attach.CodeConfig, Err: err}
		}
	}
	return nil
}

// checkEnv validates what comes from CNI_* and CNI_ARGS (and GC's valid attachments).
func (s *Server) checkEnv(call Call) error {
	q := call.Request
	var errs []error
	switch call.Command {
	case "ADD", "CHECK":
		errs = append(errs, validate.ContainerID(q.ContainerID), validate.IfName(q.IfName), s.Paths.Netns(q.Netns),
			validate.PodNamespace(q.PodNamespace), validate.PodName(q.PodName), s.Paths.CNIPath(q.CNIPath))
	case "DEL": // what the runtime may leave out on DEL is checked when it is there
		errs = append(errs, validate.ContainerID(q.ContainerID), validate.IfName(q.IfName), s.Paths.CNIPath(q.CNIPath))
		errs = append(errs, optional(q.Netns, s.Paths.Netns), optional(q.PodNamespace, validate.PodNamespace), optional(q.PodName, validate.PodName))
	case "GC":
		errs = append(errs, s.Paths.CNIPath(q.CNIPath))
		for _, v := range call.Valid {
			errs = append(errs, validate.ContainerID(v[0]), validate.IfName(v[1]))
		}
	}
	return errors.Join(errs...)
}

func optional(v string, check func(string) error) error {
	if v == "" {
		return nil
	}
	return check(v)
}
