package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/topolane/topolane/nodeagent/internal/agent"
	"github.com/topolane/topolane/nodeagent/internal/attach"
	"github.com/topolane/topolane/nodeagent/internal/cniserver"
)

// TestServeAllAndShutdown serves the CNI socket and health, answers, and stops when told.
func TestServeAllAndShutdown(t *testing.T) {
	dir := t.TempDir()
	o := runOptions{socket: filepath.Join(dir, "agent.sock"), listen: "127.0.0.1:0"}
	reg := prometheus.NewRegistry()
	a := &agent.Agent{Metrics: agent.NewMetrics(reg), Attacher: &attach.Attacher{Journal: attach.Journal{Dir: filepath.Join(dir, "journal")}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveAll(ctx, o, a, reg) }()
	var reply cniserver.Reply
	var err error
	for range 50 { // the socket appears once serving
		if reply, err = cniserver.Send(ctx, o.socket, cniserver.Call{Command: "STATUS"}); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || reply.Code != 50 {
		t.Errorf("STATUS before discovery: %+v %v; want code 50 (not available)", reply, err)
	}
	reply, _ = cniserver.Send(ctx, o.socket, cniserver.Call{Command: "ADD", Request: attach.Request{ContainerID: "c", IfName: "net1"}})
	if reply.Code != attach.CodeEnv {
		t.Errorf("ADD without a netns: %+v, want code %d", reply, attach.CodeEnv)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serveAll did not stop")
	}
}
