package cniserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"github.com/topolane/topolane/nodeagent/internal/validate"
)

// Listen opens the socket in its own directory: the directory is created with mode 0700, or
// must already be a directory of this process's user (not a symbolic link), and is set to
// 0700; a stale socket is replaced (anything else there is refused); the socket is 0600.
func Listen(path string) (net.Listener, error) {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return nil, fmt.Errorf("--socket %q is not a clean absolute path", path)
	}
	if err := ownDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// ownDir makes dir a directory that only this process's user may enter.
func ownDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("the socket's directory %s is a symbolic link: give the agent a directory of its own", dir)
	case !fi.IsDir():
		return fmt.Errorf("the socket's directory %s is not a directory", dir)
	case st != nil && int(st.Uid) != os.Geteuid():
		return fmt.Errorf("the socket's directory %s belongs to uid %d, not to the agent's user %d: remove it (the agent creates it) or chown it", dir, st.Uid, os.Geteuid())
	}
	return os.Chmod(dir, 0o700)
}

func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket: topolane-agent will not replace it; remove it or choose another --socket", path)
	}
	return os.Remove(path)
}

// Apart refuses a socket that pods would see: in the directory pods mount (--accel-dir) or
// below it. Symbolic links of both are resolved as far as they exist.
func Apart(socket, accelDir string) error {
	dir, pods := validate.Resolve(filepath.Dir(socket)), validate.Resolve(accelDir)
	if validate.Within(pods, dir) {
		return fmt.Errorf("--socket %s is inside --accel-dir %s, which pods mount: put the socket in a directory of its own (default %s)", socket, accelDir, DefaultSocket)
	}
	return nil
}
