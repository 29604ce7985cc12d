package netbind

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// maxDumpAttempts bounds how often a dump is read again when the kernel says it was
// interrupted (NLM_F_DUMP_INTR: links, addresses or routes changed while it was read).
const maxDumpAttempts = 5

// dump reads a netlink dump; every dump the agent reads goes through here. An interrupted dump may miss entries
// (an alias, an address, the default route), so it is read again; after maxDumpAttempts it is an
// error, never a partial answer. containernetworking's netlinksafe does the same for some calls
// but wraps no AddrList or RDMA dump on a handle, and returns the partial answer at the end.
func dump[T any](list func() (T, error)) (T, error) {
	var out T
	var err error
	for range maxDumpAttempts {
		out, err = list()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	var none T
	return none, fmt.Errorf("netlink dump interrupted %d times in a row by concurrent changes: %w", maxDumpAttempts, err)
}

func linkList(h *netlink.Handle) ([]netlink.Link, error) {
	return dump(h.LinkList)
}

func addrList(h *netlink.Handle, l netlink.Link, family int) ([]netlink.Addr, error) {
	return dump(func() ([]netlink.Addr, error) { return h.AddrList(l, family) })
}

func routeList(h *netlink.Handle, family int) ([]netlink.Route, error) {
	return dump(func() ([]netlink.Route, error) { return h.RouteList(nil, family) })
}

func rdmaLinkList(h *netlink.Handle) ([]*netlink.RdmaLink, error) {
	return dump(h.RdmaLinkList)
}
