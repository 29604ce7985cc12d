package main_test

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/topolane/topolane/nodeagent/internal/attach/attachtest"
)

// cniError runs c and returns the CNI error it printed; it fails the test if the plugin
// succeeded or printed something else.
func cniError(t *testing.T, c cni) types.Error {
	t.Helper()
	out, err := c.run()
	var cniErr types.Error
	if err == nil || json.Unmarshal([]byte(out), &cniErr) != nil || cniErr.Msg == "" {
		t.Fatalf("%s: %v, stdout %q; want a CNI error", c.command, err, out)
	}
	return cniErr
}

// TestSocketOutsideAgentDir: a network config cannot send the plugin to another socket.
func TestSocketOutsideAgentDir(t *testing.T) {
	e, socket := agent(t)
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
	elsewhere := filepath.Join(t.TempDir(), "agent.sock")
	if err := os.Symlink(socket, filepath.Join(filepath.Dir(elsewhere), "link.sock")); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{elsewhere, filepath.Join(filepath.Dir(elsewhere), "link.sock"), socketDir + "/../evil.sock",
		socketDir + "/sub/agent.sock", "agent.sock", "/var/run/docker.sock"} {
		for _, command := range []string{"ADD", "DEL", "STATUS"} {
			c := cni{t: t, command: command, containerID: "c1", netns: e.NewPodNS().Path(), args: "K8S_POD_NAMESPACE=train;K8S_POD_NAME=p", conf: netconf(e, s)}
			if got := cniError(t, c); got.Code != types.ErrInvalidNetworkConfig || !strings.Contains(got.Msg, "not in topolane-agent's directory") {
				t.Errorf("%s with socket %q: %+v; want code 7 naming the agent's directory", command, s, got)
			}
		}
	}
	if left := e.Leftovers(); len(left) > 0 {
		t.Errorf("left: %v", left)
	}
}

// TestStatus: 50 when the agent is not ready and when nothing answers (CNI 1.1 STATUS).
func TestStatus(t *testing.T) {
	e, socket := agentWith(t, func() error { return errors.New("topolane-agent has not published this node yet") })
	for _, s := range []string{socket, filepath.Join(socketDir, "none.sock")} {
		c := cni{t: t, command: "STATUS", conf: netconf(e, s)}
		if got := cniError(t, c); got.Code != types.ErrPluginNotAvailable {
			t.Errorf("STATUS on %s: %+v; want code 50", s, got)
		}
	}
}

// TestDelWithoutAgent: DEL succeeds when the socket is not there (the agent reconciles when it
// starts) and is retried (11) when a socket is there but nobody answers.
func TestDelWithoutAgent(t *testing.T) {
	e := attachtest.New(t, bin)
	c := cni{t: t, command: "DEL", containerID: "c1", netns: "/var/run/netns/gone", args: "K8S_POD_NAMESPACE=train;K8S_POD_NAME=p",
		conf: netconf(e, filepath.Join(socketDir, "absent.sock"))}
	out, stderr, err := c.runAs(nil)
	if err != nil || !strings.Contains(stderr, "does not exist") {
		t.Errorf("DEL without a socket: %v, stdout %q, stderr %q; want success and a note on stderr", err, out, stderr)
	}
	stale := filepath.Join(socketDir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	t.Cleanup(func() { os.Remove(stale) })
	c.conf = netconf(e, stale)
	if got := cniError(t, c); got.Code != types.ErrTryAgainLater {
		t.Errorf("DEL on a socket nobody answers: %+v; want code 11", got)
	}
}

// TestHostileFields: the agent refuses, before acting, what the runtime or the config could
// use to reach outside: a namespace elsewhere, plugins elsewhere, a pod name with "../", an
// IPAM type that is a path.
func TestHostileFields(t *testing.T) {
	e, socket := agent(t)
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
	podNS := e.NewPodNS()
	before := e.Links(e.Fx.HostNS)
	tests := []struct {
		name string
		edit func(c *cni)
		code uint
		want string
	}{
		{"netns elsewhere", func(c *cni) { c.netns = "/etc/passwd" }, 4, "CNI_NETNS"},
		{"netns with ..", func(c *cni) { c.netns = "/var/run/netns/../../etc/passwd" }, 4, "not a clean path"},
		{"the agent's own netns", func(c *cni) { c.netns = "/proc/" + strconv.Itoa(os.Getpid()) + "/ns/net" }, 4, "host's own network namespace"},
		{"CNI_PATH elsewhere", func(c *cni) { c.path = bin + ":/usr/bin" }, 4, "CNI_PATH"},
		{"pod name ../", func(c *cni) { c.args = "K8S_POD_NAMESPACE=train;K8S_POD_NAME=../../p" }, 4, "K8S_POD_NAME"},
		{"namespace absolute", func(c *cni) { c.args = "K8S_POD_NAMESPACE=/etc;K8S_POD_NAME=p" }, 4, "K8S_POD_NAMESPACE"},
		{"IPAM type a path", func(c *cni) { c.conf["ipam"] = map[string]any{"type": "../../../bin/true"} }, 7, "ipam type"},
	}
	for _, tt := range tests {
		for _, command := range []string{"ADD", "CHECK"} {
			c := cni{t: t, command: command, containerID: "c5", netns: podNS.Path(), args: "K8S_POD_NAMESPACE=train;K8S_POD_NAME=p", conf: netconf(e, socket)}
			tt.edit(&c)
			if got := cniError(t, c); got.Code != tt.code || !strings.Contains(got.Msg, tt.want) {
				t.Errorf("%s %s: %+v; want code %d saying %q", command, tt.name, got, tt.code, tt.want)
			}
		}
	}
	if left := e.Leftovers(); len(left) > 0 {
		t.Errorf("left: %v", left)
	}
	if after := e.Links(e.Fx.HostNS); strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Errorf("host links changed:\n%v\n%v", before, after)
	}
}

// TestNotRoot: a caller that is not root is refused, whatever it asks, by SO_PEERCRED.
func TestNotRoot(t *testing.T) {
	e, socket := agent(t)
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
	// Let nobody reach the socket at all, as a process with CAP_DAC_OVERRIDE could.
	for path, mode := range map[string]os.FileMode{socketDir: 0o755, socket: 0o666} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { os.Chmod(socketDir, 0o700) })
	c := cni{t: t, command: "ADD", containerID: "c6", netns: e.NewPodNS().Path(), args: "K8S_POD_NAMESPACE=train;K8S_POD_NAME=p", conf: netconf(e, socket)}
	out, stderr, err := c.runAs(&syscall.Credential{Uid: 65534, Gid: 65534})
	var cniErr types.Error
	if _, ok := err.(*exec.ExitError); !ok || json.Unmarshal([]byte(out), &cniErr) != nil || cniErr.Code != 103 || !strings.Contains(cniErr.Msg, "uid 65534") {
		t.Errorf("ADD as nobody: %v, stdout %q, stderr %q; want code 103 naming uid 65534", err, out, stderr)
	}
	if left := e.Leftovers(); len(left) > 0 {
		t.Errorf("left: %v", left)
	}
}
