package charttest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// installer is the rendered install-cni init container, run here with sh against temporary
// directories in place of the host's.
type installer struct {
	t      *testing.T
	script string
	env    map[string]string
}

func renderedInstaller(t *testing.T) installer {
	r := render(t, "--set", "agent.hostPaths.cniBin=/opt/cni/bin", "--set", "agent.hostPaths.socketDir=/run/topolane/agent")
	c := container(t, r.agent().Spec.Template.Spec, "install-cni")
	if strings.Join(c.Command, " ") != "/bin/sh -c" || len(c.Args) != 1 {
		t.Fatalf("install-cni runs %q %q, want /bin/sh -c SCRIPT", c.Command, c.Args)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["TOPOLANE_CNI_BIN_DIR"] != "/opt/cni/bin" || env["TOPOLANE_SOCKET_DIR"] != "/run/topolane/agent" || env["TOPOLANE_CNI_SOURCE"] != "/usr/local/bin/topolane-cni" {
		t.Fatalf("install-cni env = %v", env)
	}
	mounted := map[string]bool{}
	for _, m := range c.VolumeMounts {
		mounted[m.MountPath] = !m.ReadOnly
	}
	if !mounted["/opt/cni/bin"] || !mounted["/run/topolane/agent"] {
		t.Fatalf("install-cni cannot write the CNI bin dir or the socket dir: mounts %v", c.VolumeMounts)
	}
	return installer{t: t, script: c.Args[0], env: env}
}

// run runs the script with the host's paths moved under root.
func (in installer) run(root, source string) (string, error) {
	cmd := exec.Command("/bin/sh", "-c", in.script)
	cmd.Env = append(os.Environ(),
		"TOPOLANE_CNI_SOURCE="+source,
		"TOPOLANE_CNI_BIN_DIR="+filepath.Join(root, in.env["TOPOLANE_CNI_BIN_DIR"]),
		"TOPOLANE_SOCKET_DIR="+filepath.Join(root, in.env["TOPOLANE_SOCKET_DIR"]))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestInstallerReplacesARunningPlugin: the plugin on the host is being run (as it is while the
// runtime sets up a pod); the installer replaces it all at once, where cp fails with "text file
// busy".
func TestInstallerReplacesARunningPlugin(t *testing.T) {
	in := renderedInstaller(t)
	root := t.TempDir()
	bin := filepath.Join(root, "opt", "cni", "bin")
	plugin := filepath.Join(bin, "topolane-cni")
	running := startBusyPlugin(t, plugin)

	source := filepath.Join(root, "new-topolane-cni")
	newPlugin := []byte("#!/bin/sh\necho new topolane-cni\n")
	if err := os.WriteFile(source, newPlugin, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", source, plugin).CombinedOutput(); err == nil || !strings.Contains(string(out), "Text file busy") {
		t.Fatalf("cp onto a running plugin: %v %s; the test needs it to fail as it does on a node", err, out)
	}
	if out, err := in.run(root, source); err != nil {
		t.Fatalf("installer: %v\n%s", err, out)
	}
	got, err := os.ReadFile(plugin)
	if err != nil || !bytes.Equal(got, newPlugin) {
		t.Errorf("installed plugin = %q (%v), want the new one", got, err)
	}
	if fi, err := os.Stat(plugin); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("installed plugin mode = %v (%v), want 0755", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(root, "run", "topolane", "agent")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("socket dir: %v (%v), want 0700", fi.Mode(), err)
	}
	assertOnly(t, bin, "topolane-cni")
	if running.ProcessState != nil {
		t.Errorf("the running plugin was disturbed: %v", running.ProcessState)
	}
}

// TestInstallerFailureKeepsThePlugin: when the copy fails, the plugin in place stays, and no
// temporary file is left behind.
func TestInstallerFailureKeepsThePlugin(t *testing.T) {
	in := renderedInstaller(t)
	root := t.TempDir()
	bin := filepath.Join(root, "opt", "cni", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	old := []byte("#!/bin/sh\necho old\n")
	if err := os.WriteFile(filepath.Join(bin, "topolane-cni"), old, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := in.run(root, filepath.Join(root, "missing")); err == nil {
		t.Fatalf("the installer succeeded without a source:\n%s", out)
	}
	if got, _ := os.ReadFile(filepath.Join(bin, "topolane-cni")); !bytes.Equal(got, old) {
		t.Errorf("plugin = %q after a failed install, want the old one", got)
	}
	assertOnly(t, bin, "topolane-cni")
}

// startBusyPlugin puts an executable at path and runs it until the test ends.
func startBusyPlugin(t *testing.T, path string) *exec.Cmd {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(sleep)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(path), 0o755)
	}
	if err == nil {
		err = os.WriteFile(path, data, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Start returns once the exec has happened: from now on the file is busy.
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %v, want only %v", dir, got, names)
	}
}
