package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/topolane/topolane/nodeagent/internal/attach/attachtest"
	"github.com/topolane/topolane/nodeagent/internal/cniserver"
	"github.com/topolane/topolane/nodeagent/internal/validate"
)

// bin holds topolane-cni and the real host-local plugin, built by TestMain; the plugin calls
// sockets in socketDir only (linked in, as /run/topolane/agent is in the real binary).
var bin, socketDir string

func TestMain(m *testing.M) { os.Exit(attachtest.Main(m, &bin, buildPlugin)) }

func buildPlugin(dir string) error {
	socketDir = filepath.Join(dir, "agent")
	out, err := exec.Command("go", "build", "-ldflags", "-X main.socketDir="+socketDir, "-o", filepath.Join(dir, "topolane-cni"), ".").CombinedOutput()
	if err != nil {
		return fmt.Errorf("building topolane-cni: %v\n%s", err, out)
	}
	return os.Chmod(dir, 0o755) // TestNotRoot runs the plugin as nobody
}

// agent runs the agent's CNI server on a socket in socketDir over the kernel fixture.
func agent(t *testing.T) (*attachtest.Env, string) { return agentWith(t, func() error { return nil }) }

var sockets atomic.Int32

func agentWith(t *testing.T, ready func() error) (*attachtest.Env, string) {
	e := attachtest.New(t, bin)
	socket := filepath.Join(socketDir, fmt.Sprintf("agent-%d.sock", sockets.Add(1)))
	l, err := cniserver.Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := (&cniserver.Server{Agent: e.Att, Ready: ready,
		Paths: validate.Paths{NetnsDirs: validate.DefaultNetnsDirs, CNIBinDirs: []string{bin}}}).HTTPServer()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return e, socket
}

type cni struct {
	t                                       *testing.T
	command, containerID, netns, args, path string
	conf                                    map[string]any
}

// run executes topolane-cni as a runtime would: CNI_* in the environment, the config on stdin.
func (c cni) run() (string, error) {
	out, _, err := c.runAs(nil)
	return out, err
}

// runAs runs it under the given credentials (nil: the test's, root), and returns stderr too.
func (c cni) runAs(cred *syscall.Credential) (stdout, stderr string, err error) {
	c.t.Helper()
	conf, _ := json.Marshal(c.conf)
	cmd := exec.Command(filepath.Join(bin, "topolane-cni"))
	path := c.path
	if path == "" {
		path = bin
	}
	cmd.Env = []string{"CNI_COMMAND=" + c.command, "CNI_CONTAINERID=" + c.containerID, "CNI_NETNS=" + c.netns,
		"CNI_IFNAME=net1", "CNI_ARGS=" + c.args, "CNI_PATH=" + path}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Stdin = bytes.NewReader(conf)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

func netconf(e *attachtest.Env, socket string) map[string]any {
	var conf map[string]any
	_ = json.Unmarshal(e.NetConf(), &conf)
	conf["cniVersion"] = "1.1.0"
	conf["socket"] = socket
	return conf
}

func TestAddCheckDelOverCNI(t *testing.T) {
	e, socket := agent(t)
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
	podNS := e.NewPodNS()
	before := e.Links(e.Fx.HostNS)
	c := cni{t: t, command: "ADD", containerID: "c1", netns: podNS.Path(), args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=train;K8S_POD_NAME=p;K8S_POD_UID=x", conf: netconf(e, socket)}
	out, err := c.run()
	if err != nil {
		t.Fatalf("ADD: %v\n%s", err, out)
	}
	var res current.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Interfaces) != 1 || res.Interfaces[0].Name != "net1" || len(res.IPs) != 1 {
		t.Fatalf("ADD result %v: %s", err, out)
	}
	c.command = "CHECK"
	c.conf["prevResult"] = json.RawMessage(out)
	if out, err := c.run(); err != nil {
		t.Errorf("CHECK: %v %s", err, out)
	}
	c.command = "STATUS"
	if out, err := c.run(); err != nil {
		t.Errorf("STATUS: %v %s", err, out)
	}
	c.command = "DEL"
	delete(c.conf, "prevResult")
	for range 2 {
		if out, err := c.run(); err != nil {
			t.Errorf("DEL: %v %s", err, out)
		}
	}
	if after := e.Links(e.Fx.HostNS); strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Errorf("host links changed:\n%v\n%v", before, after)
	}
	c.command = "VERSION"
	if out, err := c.run(); err != nil || !strings.Contains(out, `"1.1.0"`) {
		t.Errorf("VERSION: %v %s", err, out)
	}
}

// TestChained adds topolane's interface to a previous plugin's result.
func TestChained(t *testing.T) {
	e, socket := agent(t)
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
	conf := netconf(e, socket)
	conf["prevResult"] = map[string]any{"cniVersion": "1.1.0",
		"interfaces": []any{map[string]any{"name": "eth0", "sandbox": "/x"}},
		"ips":        []any{map[string]any{"address": "192.168.9.5/24", "interface": 0}}}
	c := cni{t: t, command: "ADD", containerID: "c2", netns: e.NewPodNS().Path(), args: "K8S_POD_NAMESPACE=train;K8S_POD_NAME=p", conf: conf}
	out, err := c.run()
	if err != nil {
		t.Fatalf("ADD: %v %s", err, out)
	}
	var res current.Result
	_ = json.Unmarshal([]byte(out), &res)
	if len(res.Interfaces) != 2 || res.Interfaces[1].Name != "net1" || len(res.IPs) != 2 || *res.IPs[1].Interface != 1 {
		t.Errorf("chained result: %s", out)
	}
	c.command = "GC" // the runtime knows no attachment any more: GC takes it back
	delete(c.conf, "prevResult")
	c.conf["cni.dev/valid-attachments"] = []any{}
	if out, err := c.run(); err != nil {
		t.Errorf("GC: %v %s", err, out)
	}
	if left := e.Leftovers(); len(left) > 0 {
		t.Errorf("GC left: %v", left)
	}
}

// TestErrors: each failure is a CNI error on stdout with its code, and changes nothing.
func TestErrors(t *testing.T) {
	e, socket := agent(t)
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
	podNS := e.NewPodNS()
	tests := []struct {
		name string
		edit func(c *cni)
		code uint
	}{
		{"malformed config", func(c *cni) { c.conf = nil }, types.ErrDecodingFailure},
		{"no pod name", func(c *cni) { c.args = "K8S_POD_NAMESPACE=train" }, 4},
		{"unknown pod", func(c *cni) { c.args = "K8S_POD_NAMESPACE=train;K8S_POD_NAME=ghost" }, 100},
		{"agent down", func(c *cni) { c.conf["socket"] = filepath.Join(socketDir, "none.sock") }, types.ErrTryAgainLater},
		{"IPAM failure", func(c *cni) { c.conf["ipam"] = map[string]any{"type": "host-local", "subnet": "bad"} }, 102},
	}
	for _, tt := range tests {
		c := cni{t: t, command: "ADD", containerID: "c3", netns: podNS.Path(), args: "K8S_POD_NAMESPACE=train;K8S_POD_NAME=p", conf: netconf(e, socket)}
		tt.edit(&c)
		out, err := c.run()
		if tt.name == "malformed config" {
			out, err = runRaw(t, "{", podNS.Path())
		}
		var cniErr types.Error
		if err == nil || json.Unmarshal([]byte(out), &cniErr) != nil || cniErr.Code != tt.code || cniErr.Msg == "" {
			t.Errorf("%s: %v, stdout %s; want CNI error code %d", tt.name, err, out, tt.code)
		}
		if left := e.Leftovers(); len(left) > 0 {
			t.Errorf("%s left: %v", tt.name, left)
		}
	}
}

func runRaw(t *testing.T, stdin, netns string) (string, error) {
	cmd := exec.Command(filepath.Join(bin, "topolane-cni"))
	cmd.Env = []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=c9", "CNI_NETNS=" + netns, "CNI_IFNAME=net1", "CNI_PATH=" + bin}
	cmd.Stdin = strings.NewReader(stdin)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	err := cmd.Run()
	return stdout.String(), err
}
