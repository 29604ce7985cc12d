package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// holdEnv makes the test binary a second process that holds the lock of a state directory
// until its stdin closes.
const holdEnv = "TOPOLANE_TEST_HOLD_LOCK"

func TestMain(m *testing.M) {
	if dir := os.Getenv(holdEnv); dir != "" {
		os.Exit(holdLock(dir))
	}
	os.Exit(m.Run())
}

func holdLock(dir string) int {
	release, err := lockStateDir(dir)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer release()
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// TestOneAgentPerStateDir starts a second process on the same state directory: it holds the
// lock, so `run` refuses to start and names it; once it is gone, `run` gets past the lock.
func TestOneAgentPerStateDir(t *testing.T) {
	dir := t.TempDir()
	holder := exec.Command(os.Args[0])
	holder.Env = append(os.Environ(), holdEnv+"="+dir)
	stdin, _ := holder.StdinPipe()
	stdout, _ := holder.StdoutPipe()
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = holder.Wait() })
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "locked\n" {
		t.Fatalf("the first agent could not lock: %q", line)
	}
	args := []string{"run", "--state-dir", dir, "--kubeconfig", "/nonexistent/kubeconfig"}
	code, _, errOut := runCLI(args...)
	if want := "pid " + strconv.Itoa(holder.Process.Pid); code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, "one agent per --state-dir") {
		t.Errorf("second agent: exit %d, stderr %q; want exit 1 naming %s", code, errOut, want)
	}
	stdin.Close()
	if err := holder.Wait(); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the lock goes with its holder, and with each run that returns
		if code, _, errOut := runCLI(args...); code != 1 || !strings.Contains(errOut, "loading the Kubernetes client config") {
			t.Errorf("after the first agent stopped: exit %d, stderr %q; want it past the lock", code, errOut)
		}
	}
}
