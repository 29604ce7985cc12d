package cniserver

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/topolane/topolane/nodeagent/internal/attach"
	"github.com/topolane/topolane/nodeagent/internal/validate"
)

// recorder is an agent that records what reaches it.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) record(c string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

func (r *recorder) Add(_ context.Context, q attach.Request) (*current.Result, error) {
	r.record("ADD " + q.ContainerID)
	return &current.Result{}, nil
}
func (r *recorder) Del(_ context.Context, q attach.Request) error {
	r.record("DEL " + q.ContainerID)
	return nil
}
func (r *recorder) Check(_ context.Context, q attach.Request) error {
	r.record("CHECK " + q.ContainerID)
	return nil
}
func (r *recorder) GC(context.Context, string, map[[2]string]bool) error { r.record("GC"); return nil }

// serve runs a Server over a socket in its own directory and returns the socket.
func serve(t *testing.T, agent Agent, netnsDir, binDir string) string {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "agent", "agent.sock")
	l, err := Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := (&Server{Agent: agent, Ready: func() error { return nil },
		Paths: validate.Paths{NetnsDirs: []string{netnsDir}, CNIBinDirs: []string{binDir}}}).HTTPServer()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return socket
}

// TestHostileCalls: every field is checked before the agent sees the call.
func TestHostileCalls(t *testing.T) {
	netnsDir, binDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(netnsDir, "cni-1"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	socket := serve(t, rec, netnsDir, binDir)
	good := attach.Request{ContainerID: "abc123", IfName: "net1", Netns: filepath.Join(netnsDir, "cni-1"), PodNamespace: "train", PodName: "p",
		NetConf: []byte(`{"name":"rdma","type":"topolane-cni","ipam":{"type":"host-local"}}`), CNIPath: []string{binDir}}
	tests := []struct {
		name    string
		command string
		edit    func(q *attach.Request, valid *[][2]string)
		code    uint
	}{
		{"container id ../", "ADD", func(q *attach.Request, _ *[][2]string) { q.ContainerID = "../../../etc/cron.d/x" }, 4},
		{"container id absolute", "DEL", func(q *attach.Request, _ *[][2]string) { q.ContainerID = "/etc/passwd" }, 4},
		{"container id with NUL", "ADD", func(q *attach.Request, _ *[][2]string) { q.ContainerID = "abc\x00" }, 4},
		{"container id too long", "ADD", func(q *attach.Request, _ *[][2]string) { q.ContainerID = strings.Repeat("a", 300) }, 4},
		{"ifname ../", "DEL", func(q *attach.Request, _ *[][2]string) { q.IfName = "../x" }, 4},
		{"ifname too long", "ADD", func(q *attach.Request, _ *[][2]string) { q.IfName = strings.Repeat("n", 16) }, 4},
		{"ifname with NUL", "CHECK", func(q *attach.Request, _ *[][2]string) { q.IfName = "net\x001" }, 4},
		{"netns elsewhere", "ADD", func(q *attach.Request, _ *[][2]string) { q.Netns = "/etc/passwd" }, 4},
		{"netns escaping", "DEL", func(q *attach.Request, _ *[][2]string) { q.Netns = netnsDir + "/../../etc/passwd" }, 4},
		{"no netns on ADD", "ADD", func(q *attach.Request, _ *[][2]string) { q.Netns = "" }, 4},
		{"CNI_PATH elsewhere", "ADD", func(q *attach.Request, _ *[][2]string) { q.CNIPath = []string{"/usr/bin"} }, 4},
		{"CNI_PATH escaping", "GC", func(q *attach.Request, _ *[][2]string) { q.CNIPath = []string{binDir + "/../../bin"} }, 4},
		{"pod namespace ../", "ADD", func(q *attach.Request, _ *[][2]string) { q.PodNamespace = ".." }, 4},
		{"pod name with /", "DEL", func(q *attach.Request, _ *[][2]string) { q.PodName = "a/b" }, 4},
		{"IPAM a path", "ADD", func(q *attach.Request, _ *[][2]string) {
			q.NetConf = []byte(`{"name":"rdma","type":"topolane-cni","ipam":{"type":"/bin/sh"}}`)
		}, 7},
		{"GC with a hostile entry", "GC", func(_ *attach.Request, v *[][2]string) { *v = [][2]string{{"ok", "net1"}, {"../x", "net1"}} }, 4},
		{"unknown command", "EXPLODE", func(*attach.Request, *[][2]string) {}, 4},
	}
	for _, tt := range tests {
		q, valid := good, [][2]string(nil)
		tt.edit(&q, &valid)
		reply, err := Send(context.Background(), socket, Call{Command: tt.command, Request: q, Valid: valid})
		if err != nil || reply.Code != tt.code || reply.Msg == "" {
			t.Errorf("%s: %+v %v; want code %d with a message", tt.name, reply, err, tt.code)
		}
	}
	if len(rec.calls) > 0 {
		t.Errorf("the agent was called: %v", rec.calls)
	}
	for _, command := range []string{"ADD", "CHECK", "DEL", "GC", "STATUS"} {
		if reply, err := Send(context.Background(), socket, Call{Command: command, Request: good}); err != nil || reply.Code != 0 {
			t.Errorf("a good %s: %+v %v", command, reply, err)
		}
	}
	want := []string{"ADD abc123", "CHECK abc123", "DEL abc123", "GC"}
	if strings.Join(rec.calls, ",") != strings.Join(want, ",") {
		t.Errorf("the agent got %v, want %v", rec.calls, want)
	}
}

// TestNoPeerCredentials: a handler served without HTTPServer's ConnContext cannot tell who
// calls, and refuses.
func TestNoPeerCredentials(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer((&Server{Agent: rec, Ready: func() error { return nil }}).Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{"command":"GC"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var reply Reply
	_ = json.NewDecoder(resp.Body).Decode(&reply)
	if reply.Code != CodeNotRoot || len(rec.calls) > 0 {
		t.Errorf("reply %+v, agent calls %v; want code %d and no call", reply, rec.calls, CodeNotRoot)
	}
}

func TestListen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "agent")
	socket := filepath.Join(dir, "agent.sock")
	if err := os.Mkdir(dir, 0o777); err != nil { // too open: Listen closes it
		t.Fatal(err)
	}
	l, err := Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, socket: 0o600 | os.ModeSocket} {
		if fi, err := os.Stat(path); err != nil || fi.Mode() != want {
			t.Errorf("%s: %v, want mode %v", path, err, want)
		}
	}
	l.Close()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ socket, want string }{
		{filepath.Join(link, "agent.sock"), "symbolic link"},
		{file, "not a socket"},
		{filepath.Join(file, "agent.sock"), "not a directory"},
		{"agent.sock", "not a clean absolute path"},
		{dir + "/../agent/agent.sock", "not a clean absolute path"},
	} {
		if l, err := Listen(tt.socket); err == nil || !strings.Contains(err.Error(), tt.want) {
			if l != nil {
				l.Close()
			}
			t.Errorf("Listen(%s): %v, want an error saying %q", tt.socket, err, tt.want)
		}
	}
}

func TestApart(t *testing.T) {
	root := t.TempDir()
	pods := filepath.Join(root, "run", "topolane", "pods")
	if err := os.MkdirAll(pods, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "run"), filepath.Join(root, "varrun")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		socket, accel string
		apart         bool
	}{
		{filepath.Join(root, "run/topolane/agent/agent.sock"), pods, true},
		{filepath.Join(root, "run/topolane/agent.sock"), pods, true},
		{filepath.Join(root, "run/topolane/podsx/agent.sock"), pods, true},
		{filepath.Join(pods, "agent.sock"), pods, false},
		{filepath.Join(pods, "sub/agent.sock"), pods, false},
		{filepath.Join(root, "varrun/topolane/pods/agent.sock"), pods, false},
		{filepath.Join(root, "run/topolane/agent.sock"), filepath.Join(root, "run"), false},
	}
	for _, tt := range tests {
		if err := Apart(tt.socket, tt.accel); (err == nil) != tt.apart {
			t.Errorf("Apart(%s, %s) = %v, want apart %v", tt.socket, tt.accel, err, tt.apart)
		}
	}
}
