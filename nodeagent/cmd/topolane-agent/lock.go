package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockName is the lock file in --state-dir: one agent per state directory.
const lockName = "agent.lock"

// lockStateDir takes an exclusive flock on <dir>/agent.lock and writes this process's pid into
// it. The lock is held until release is called or the process ends (the kernel drops it with
// the file). Another holder is named by its pid.
func lockStateDir(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("--state-dir: %w", err)
	}
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := holderOf(f)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another topolane-agent (%s) holds %s: one agent per --state-dir; stop that one (is a second DaemonSet, or a manual `topolane-agent run`, on this node?) or give this one another --state-dir", holder, path)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if err := writePid(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing the lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// holderOf reads the pid the holder wrote.
func holderOf(f *os.File) string {
	data := make([]byte, 32)
	n, _ := f.ReadAt(data, 0)
	if pid, err := strconv.Atoi(strings.TrimSpace(string(data[:n]))); err == nil {
		return "pid " + strconv.Itoa(pid)
	}
	return "pid unknown: it has not written it yet"
}

func writePid(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}
