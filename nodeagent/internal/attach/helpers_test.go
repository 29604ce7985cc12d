package attach_test

import (
	"os"
	"testing"

	"github.com/topolane/topolane/nodeagent/internal/attach/attachtest"
)

// cniPath holds the real host-local IPAM plugin, built once by TestMain.
var cniPath string

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(child()) // this binary, run again as a killed agent (crash_test.go)
	}
	os.Exit(attachtest.Main(m, &cniPath, buildHostDevice))
}

func newEnv(t testing.TB) *attachtest.Env { return attachtest.New(t, cniPath) }
