package cniserver

import (
	"context"
	"errors"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

type peerKey struct{}

// peer is what the kernel says of the process at the other end of a connection.
type peer struct {
	cred *unix.Ucred
	err  error
}

// withPeer is http.Server's ConnContext: it reads the peer's credentials (SO_PEERCRED) once
// per connection.
func withPeer(ctx context.Context, c net.Conn) context.Context {
	cred, err := peerCred(c)
	return context.WithValue(ctx, peerKey{}, peer{cred: cred, err: err})
}

func peerCred(c net.Conn) (*unix.Ucred, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("a %T is not a unix socket connection", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, credErr
}

// rootPeer admits a peer whose effective uid is root in the agent's user namespace.
func rootPeer(ctx context.Context) error {
	p, ok := ctx.Value(peerKey{}).(peer)
	switch {
	case !ok:
		return errors.New("topolane-agent cannot tell who is calling (no peer credentials): it serves root only")
	case p.err != nil:
		return fmt.Errorf("topolane-agent cannot read the caller's credentials (SO_PEERCRED): %w; it serves root only", p.err)
	case p.cred.Uid != 0:
		return fmt.Errorf("topolane-agent serves root only (the container runtime runs topolane-cni as root); this caller is uid %d, pid %d", p.cred.Uid, p.cred.Pid)
	}
	return nil
}
