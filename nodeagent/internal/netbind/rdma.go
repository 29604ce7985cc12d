package netbind

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/topolane/topolane/topology"
)

// ErrNoRDMA is returned when the kernel answers no RDMA netlink: the RDMA core (ib_core) is
// not loaded, or the kernel has none.
var ErrNoRDMA = errors.New("the kernel has no RDMA netlink")

// ErrNoRDMADevice is matched by MoveRDMA's error when the RDMA device is not in the namespace it
// is to move from: undoing a move that never happened, or happened already, finds it so.
var ErrNoRDMADevice = errors.New("no such RDMA device there")

// rdmaHandle opens an RDMA netlink handle in ns. RDMA is not among the families a handle opens
// by default, and without its own socket an RDMA request would go out in the thread's namespace.
func (k Netlink) rdmaHandle(ns string) (*netlink.Handle, error) {
	h, err := k.handle(ns, unix.NETLINK_RDMA)
	if errors.Is(err, unix.EPROTONOSUPPORT) {
		return nil, fmt.Errorf("%w (%v): load the NIC's RDMA driver (mlx5_ib, which loads ib_core); `rdma dev` should then list the devices", ErrNoRDMA, err)
	}
	return h, err
}

func (k Netlink) RDMANetnsMode() (string, error) {
	h, err := k.rdmaHandle(Host)
	if err != nil {
		return "", fmt.Errorf("reading the RDMA netns mode: %w", err)
	}
	defer h.Close()
	mode, err := h.RdmaSystemGetNetnsMode()
	if err != nil {
		return "", fmt.Errorf("reading the RDMA netns mode (rdma system show netns): %w", err)
	}
	if mode != topology.RDMANetnsShared && mode != topology.RDMANetnsExclusive {
		return "", fmt.Errorf("the kernel reports RDMA netns mode %q, neither shared nor exclusive", mode)
	}
	return mode, nil
}

func (k Netlink) MoveRDMA(fromNS, dev, toNS string) error {
	to, err := k.open(toNS)
	if err != nil {
		return fmt.Errorf("moving RDMA device %s: %w", dev, err)
	}
	defer to.Close()
	h, err := k.rdmaHandle(fromNS)
	if err != nil {
		return fmt.Errorf("moving RDMA device %s%s: %w", dev, where(fromNS), err)
	}
	defer h.Close()
	links, err := rdmaLinkList(h)
	if err != nil {
		return fmt.Errorf("moving RDMA device %s: listing RDMA devices%s: %w", dev, where(fromNS), err)
	}
	l, err := findRDMA(links, dev, fromNS)
	if err != nil {
		return err
	}
	if err := h.RdmaLinkSetNsFd(l, uint32(to)); err != nil {
		return fmt.Errorf("moving RDMA device %s%s to %s: %w (RDMA devices move only in exclusive netns mode: `rdma system` shows it)",
			dev, where(fromNS), nsName(toNS), err)
	}
	return nil
}

// findRDMA picks dev out of the RDMA devices of namespace ns.
func findRDMA(links []*netlink.RdmaLink, dev, ns string) (*netlink.RdmaLink, error) {
	var names []string
	for _, l := range links {
		if l.Attrs.Name == dev {
			return l, nil
		}
		names = append(names, l.Attrs.Name)
	}
	have := "none"
	if len(names) > 0 {
		have = strings.Join(names, ", ")
	}
	return nil, fmt.Errorf("%w: RDMA device %s is not%s (RDMA devices there: %s): check `rdma dev` there; in exclusive netns mode a device that moved into a pod is listed only in the pod's namespace",
		ErrNoRDMADevice, dev, where(ns), have)
}

func nsName(ns string) string {
	if ns == Host {
		return "the host namespace"
	}
	return ns
}
