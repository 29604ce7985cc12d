package server

import (
	"net/http"

	"github.com/gorilla/mux"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/topolane/topolane/extender/internal/scheduler"
)

func (s *Server) filter(w http.ResponseWriter, r *http.Request) {
	q, ok := readArgs(w, r)
	if !ok {
		return
	}
	defer q.release()
	res, err := s.ext.Filter(&q.args)
	if err != nil {
		writeJSON(w, status(err), extenderv1.ExtenderFilterResult{Error: err.Error()})
		return
	}
	defer scheduler.ReleaseFilter(res)
	if q.out, err = q.appendFilterResult(q.out[:0], res); err != nil {
		writeJSON(w, http.StatusInternalServerError, extenderv1.ExtenderFilterResult{Error: "encoding the answer: " + err.Error()})
		return
	}
	writeAnswer(w, q)
}

func (s *Server) prioritize(w http.ResponseWriter, r *http.Request) {
	q, ok := readArgs(w, r)
	if !ok {
		return
	}
	defer q.release()
	list, err := s.ext.Prioritize(&q.args)
	if err != nil {
		writeMessage(w, status(err), err.Error())
		return
	}
	q.out = appendPriorities(q.out[:0], list)
	scheduler.ReleasePriorities(list)
	writeAnswer(w, q)
}

// bind answers a conflict (the node can no longer take the pod) with 200 and the reason in the
// result's Error, which the scheduler puts in the pod's events; bad input gets a 4xx.
func (s *Server) bind(w http.ResponseWriter, r *http.Request) {
	var args extenderv1.ExtenderBindingArgs
	if !decode(w, r.Body, &args) {
		return
	}
	if args.PodName == "" || args.PodNamespace == "" || args.Node == "" {
		writeJSON(w, http.StatusBadRequest, extenderv1.ExtenderBindingResult{Error: "bind arguments need PodName, PodNamespace and Node"})
		return
	}
	err := s.ext.Bind(r.Context(), &args)
	code := http.StatusOK
	if err != nil && status(err) != http.StatusConflict {
		code = status(err)
	}
	res := extenderv1.ExtenderBindingResult{}
	if err != nil {
		res.Error = err.Error()
	}
	writeJSON(w, code, res)
}

// preempt answers the scheduler's preemption candidates with the victims that free the devices
// the pod needs.
func (s *Server) preempt(w http.ResponseWriter, r *http.Request) {
	var args extenderv1.ExtenderPreemptionArgs
	if !decode(w, r.Body, &args) {
		return
	}
	res, err := s.ext.Preempt(&args)
	if err != nil {
		writeMessage(w, status(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if !s.ready() {
		writeMessage(w, http.StatusServiceUnavailable, notReady)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) debugNode(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["node"]
	d, ok := s.store.DebugNode(name)
	if !ok {
		writeMessage(w, http.StatusNotFound, "topolane knows nothing of node "+name)
		return
	}
	writeJSON(w, http.StatusOK, d)
}
