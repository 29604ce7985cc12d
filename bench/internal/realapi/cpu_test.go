package realapi

import (
	"os"
	"testing"
	"time"
)

// TestCPUTime: spinning shows in the process's CPU time.
func TestCPUTime(t *testing.T) {
	before := CPUTime(os.Getpid())
	for start := time.Now(); CPUTime(os.Getpid()) == before && time.Since(start) < 5*time.Second; {
	}
	if CPUTime(os.Getpid()) <= before {
		t.Errorf("5 s of spinning left the CPU time at %v", before)
	}
	if CPUTime(-1) != 0 {
		t.Error("a process that does not exist used CPU")
	}
}
