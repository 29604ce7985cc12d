package attach_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/topolane/topolane/nodeagent/internal/attach/attachtest"
)

// cniPath holds the real host-local IPAM plugin, built once by TestMain.
var cniPath string

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(child())
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "the attach tests move devices between network namespaces: run them as root (CI does)")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "topolane-cni-bin")
	if err == nil {
		cniPath = dir
		err = attachtest.BuildHostLocal(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newEnv(t testing.TB) *attachtest.Env { return attachtest.New(t, cniPath) }
