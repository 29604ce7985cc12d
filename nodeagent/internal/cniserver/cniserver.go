// Package cniserver carries CNI calls from the topolane-cni binary to the agent over a unix
// socket: the binary is a thin client, the agent holds the state. The socket lives in a
// directory of its own that only root may enter; the server admits root peers only and
// validates every field of a call before the agent acts on it.
package cniserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/topolane/topolane/nodeagent/internal/attach"
	"github.com/topolane/topolane/nodeagent/internal/validate"
)

// SocketDir is the agent's own directory (mode 0700); the plugin calls no socket elsewhere.
const SocketDir = "/run/topolane/agent"

// DefaultSocket is where the agent listens.
const DefaultSocket = SocketDir + "/agent.sock"

// CodeNotRoot answers a peer that is not root: the runtime and the plugin run as root.
const CodeNotRoot = 103

// Call is one CNI command.
type Call struct {
	Command string         `json:"command"` // ADD, DEL, CHECK, GC or STATUS
	Request attach.Request `json:"request"`
	// Valid lists the attachments the runtime still knows (GC): container ID, interface name.
	Valid [][2]string `json:"valid,omitempty"`
}

// Reply is the agent's answer: a result, or a CNI error.
type Reply struct {
	Result *current.Result `json:"result,omitempty"`
	Code   uint            `json:"code,omitempty"`
	Msg    string          `json:"msg,omitempty"`
}

// Agent is what the server serves: the attacher.
type Agent interface {
	Add(ctx context.Context, q attach.Request) (*current.Result, error)
	Del(ctx context.Context, q attach.Request) error
	Check(ctx context.Context, q attach.Request) error
	// GC undoes the attachments of the network that are not in valid.
	GC(ctx context.Context, network string, valid map[[2]string]bool) error
}

// Server serves the plugin's calls.
type Server struct {
	Agent   Agent
	Ready   func() error                                        // whether the agent can take ADDs (STATUS)
	Observe func(command string, took time.Duration, err error) // may be nil
	Paths   validate.Paths                                      // where CNI_NETNS and CNI_PATH may point
}

// HTTPServer is the server to run on the listener from Listen: it reads each connection's
// peer credentials, which the handler checks.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{Handler: s.Handler(), ConnContext: withPeer, ReadHeaderTimeout: 5 * time.Second}
}

// Handler serves calls from root peers (their credentials put in the context by
// HTTPServer's ConnContext); anything else is refused.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := rootPeer(r.Context()); err != nil {
			writeReply(w, Reply{Code: CodeNotRoot, Msg: err.Error()})
			return
		}
		var call Call
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&call); err != nil {
			writeReply(w, Reply{Code: 6, Msg: "the agent could not decode the call: " + err.Error()})
			return
		}
		start := time.Now()
		reply, err := s.serve(r.Context(), call)
		if s.Observe != nil {
			s.Observe(call.Command, time.Since(start), err)
		}
		if err != nil {
			reply = Reply{Code: attach.CodeOf(err), Msg: err.Error()}
		}
		writeReply(w, reply)
	})
}

func (s *Server) serve(ctx context.Context, call Call) (Reply, error) {
	if err := s.check(call); err != nil {
		return Reply{}, err
	}
	switch call.Command {
	case "ADD":
		res, err := s.Agent.Add(ctx, call.Request)
		return Reply{Result: res}, err
	case "DEL":
		return Reply{}, s.Agent.Del(ctx, call.Request)
	case "CHECK":
		return Reply{}, s.Agent.Check(ctx, call.Request)
	case "GC":
		valid := map[[2]string]bool{}
		for _, v := range call.Valid {
			valid[v] = true
		}
		return Reply{}, s.Agent.GC(ctx, networkName(call.Request.NetConf), valid)
	case "STATUS":
		if err := s.Ready(); err != nil {
			return Reply{}, &attach.Error{Code: 50, Err: err} // 50: the plugin is not available
		}
		return Reply{}, nil
	}
	return Reply{}, &attach.Error{Code: attach.CodeEnv, Err: fmt.Errorf("CNI_COMMAND %q is not one topolane serves", call.Command)}
}

func writeReply(w http.ResponseWriter, r Reply) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(r)
}

// Send makes a call to the agent at socket. A CNI error comes back as a Reply with a Code;
// err is for the transport.
func Send(ctx context.Context, socket string, call Call) (Reply, error) {
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	body, err := json.Marshal(call)
	if err != nil {
		return Reply{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://topolane-agent/v1/cni", bytes.NewReader(body))
	if err != nil {
		return Reply{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return Reply{}, fmt.Errorf("topolane-agent is not answering on %s (is the DaemonSet running on this node?): %w", socket, err)
	}
	defer resp.Body.Close()
	var reply Reply
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		return Reply{}, fmt.Errorf("topolane-agent answered %s with something unreadable: %w", resp.Status, err)
	}
	return reply, nil
}

// networkName is the network config's name (validated before the call is served).
func networkName(netconf []byte) string {
	var conf struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(netconf, &conf)
	return conf.Name
}
