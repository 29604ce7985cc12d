// Package cniserver carries CNI calls from the topolane-cni binary to the agent over a unix
// socket: the binary is a thin client, the agent holds the state and serves one call at a time.
package cniserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/topolane/topolane/nodeagent/internal/attach"
)

// DefaultSocket is where the agent listens (a hostPath shared with the CNI binary).
const DefaultSocket = "/run/topolane/agent.sock"

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

// Agent is what the server serves: the attacher, and whether it is ready (STATUS).
type Agent interface {
	Add(ctx context.Context, q attach.Request) (*current.Result, error)
	Del(ctx context.Context, q attach.Request) error
	Check(ctx context.Context, q attach.Request) error
	GC(ctx context.Context, valid map[[2]string]bool) error
}

// Handler serves calls. ready says whether the agent can take ADDs (STATUS).
func Handler(agent Agent, ready func() error, observe func(command string, took time.Duration, err error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var call Call
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&call); err != nil {
			writeReply(w, Reply{Code: 6, Msg: "the agent could not decode the call: " + err.Error()})
			return
		}
		start := time.Now()
		reply, err := serve(r.Context(), agent, ready, call)
		if observe != nil {
			observe(call.Command, time.Since(start), err)
		}
		if err != nil {
			reply = Reply{Code: attach.CodeOf(err), Msg: err.Error()}
		}
		writeReply(w, reply)
	})
}

func serve(ctx context.Context, agent Agent, ready func() error, call Call) (Reply, error) {
	switch call.Command {
	case "ADD":
		res, err := agent.Add(ctx, call.Request)
		return Reply{Result: res}, err
	case "DEL":
		return Reply{}, agent.Del(ctx, call.Request)
	case "CHECK":
		return Reply{}, agent.Check(ctx, call.Request)
	case "GC":
		valid := map[[2]string]bool{}
		for _, v := range call.Valid {
			valid[v] = true
		}
		return Reply{}, agent.GC(ctx, valid)
	case "STATUS":
		if err := ready(); err != nil {
			return Reply{}, &attach.Error{Code: 50, Err: err} // 50: the plugin is not available
		}
		return Reply{}, nil
	}
	return Reply{}, &attach.Error{Code: 4, Err: fmt.Errorf("CNI_COMMAND %q is not one topolane serves", call.Command)}
}

func writeReply(w http.ResponseWriter, r Reply) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(r)
}

// Listen opens the socket, replacing a stale one, readable by root only.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	return l, os.Chmod(path, 0o600)
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
