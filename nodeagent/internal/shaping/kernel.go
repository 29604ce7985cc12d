package shaping

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/topolane/topolane/nodeagent/internal/netbind"
)

// Plan is the shaping of one device in a pod's network namespace: what Apply installs, and all
// that Remove and Check need, so journal it before Apply.
type Plan struct {
	Netns  string `json:"netns"`         // the pod's network namespace (a path)
	Device string `json:"device"`        // the device's name there (the CNI interface name)
	IFB    string `json:"ifb,omitempty"` // the ifb that shapes its ingress, in Netns
	Shape
}

// What marks topolane's objects, so that Remove and Check leave others alone.
const (
	qdiscMajor     = 0x746c // "tl": the root tbf's handle is 746c:
	filterPriority = 0x746c // the redirect filter's priority on the ingress qdisc
	ifbAliasPrefix = "topolane-shaping:"
	ifbPrefix      = "ifb-"
)

var (
	tbfHandle     = netlink.MakeHandle(qdiscMajor, 0)
	ingressHandle = netlink.MakeHandle(0xffff, 0)
)

// IFBName is the ifb that shapes device's ingress: derived from the name alone, so that DEL and
// a restarted agent find it.
func IFBName(device string) string {
	if len(ifbPrefix)+len(device) <= unix.IFNAMSIZ-1 {
		return ifbPrefix + device
	}
	sum := sha256.Sum256([]byte(device))
	return ifbPrefix + hex.EncodeToString(sum[:])[:unix.IFNAMSIZ-1-len(ifbPrefix)]
}

// Prepare computes the plan for a device now in the pod's namespace: reads its MTU, checks the
// bounds that depend on it (errors matching ErrInvalid), names the ifb. It changes nothing.
func Prepare(nsPath, device string, l Limits) (Plan, error) {
	h, err := handleAt(nsPath)
	if err != nil {
		return Plan{}, err
	}
	defer h.Close()
	dev, err := h.LinkByName(device)
	if err != nil {
		return Plan{}, fmt.Errorf("shaping: device %s in %s: %w", device, nsPath, err)
	}
	s, err := l.Shape(dev.Attrs().MTU)
	if err != nil {
		return Plan{}, err
	}
	p := Plan{Netns: nsPath, Device: device, Shape: s}
	if s.Ingress != nil {
		p.IFB = IFBName(device)
	}
	return p, nil
}

// handleAt opens a netlink handle in the namespace at nsPath; a namespace that is gone gives
// netbind.ErrNoNamespace.
func handleAt(nsPath string) (*netlink.Handle, error) {
	if nsPath == "" {
		return nil, errors.New("shaping: no network namespace given")
	}
	nsh, err := netns.GetFromPath(nsPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", nsPath, netbind.ErrNoNamespace)
		}
		return nil, fmt.Errorf("opening network namespace %s: %w", nsPath, err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if errors.Is(err, syscall.EINVAL) { // the file is there, the namespace unmounted from it
		return nil, fmt.Errorf("%s: %w", nsPath, netbind.ErrNoNamespace)
	}
	return h, err
}

// Apply installs the plan. It is idempotent: a retried ADD, or one resumed after a crash at any
// point, converges on the plan.
func Apply(ctx context.Context, p Plan) error {
	log := klog.FromContext(ctx).WithValues("netns", p.Netns, "device", p.Device)
	h, err := handleAt(p.Netns)
	if err != nil {
		return err
	}
	defer h.Close()
	dev, err := h.LinkByName(p.Device)
	if err != nil {
		return fmt.Errorf("shaping: device %s in %s: %w", p.Device, p.Netns, err)
	}
	clk := KernelClock()
	if p.Egress != nil {
		if err := replaceTBF(h, dev, *p.Egress, clk); err != nil {
			return fmt.Errorf("shaping egress of %s: %w", p.Device, err)
		}
		log.V(4).Info("Egress shaped", "tbf", *p.Egress)
	}
	if p.Ingress != nil {
		if err := applyIngress(h, dev, p.IFB, *p.Ingress, clk); err != nil {
			return fmt.Errorf("shaping ingress of %s through %s: %w", p.Device, p.IFB, err)
		}
		log.V(4).Info("Ingress shaped", "ifb", p.IFB, "tbf", *p.Ingress)
	}
	return nil
}

func (t TBF) qdisc(link netlink.Link, clk Clock) (*netlink.Tbf, error) {
	ticks, ok := clk.Ticks(t.Rate, uint64(t.Burst))
	if !ok {
		return nil, fmt.Errorf("a burst of %d bytes at %d bytes/s does not fit tbf's buffer (%.1f s at most)", t.Burst, t.Rate, clk.MaxBufferSeconds())
	}
	q := &netlink.Tbf{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Handle: tbfHandle, Parent: netlink.HANDLE_ROOT},
		Rate:       t.Rate, Limit: t.Limit, Buffer: ticks,
	}
	if t.Peak != 0 {
		q.Peakrate, q.Minburst = t.Peak, t.Minburst
	}
	return q, nil
}

func replaceTBF(h *netlink.Handle, link netlink.Link, t TBF, clk Clock) error {
	q, err := t.qdisc(link, clk)
	if err != nil {
		return err
	}
	return h.QdiscReplace(q)
}

func applyIngress(h *netlink.Handle, dev netlink.Link, name string, t TBF, clk Clock) error {
	ifb, err := ensureIFB(h, name, dev)
	if err != nil {
		return err
	}
	if err := replaceTBF(h, ifb, t, clk); err != nil {
		return err
	}
	return redirect(h, dev, ifb)
}

// ensureIFB creates the ifb (or finds the one a former try created) and brings it up.
func ensureIFB(h *netlink.Handle, name string, dev netlink.Link) (netlink.Link, error) {
	alias := ifbAliasPrefix + dev.Attrs().Name
	l, err := h.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		if err := h.LinkAdd(&netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: dev.Attrs().MTU}}); err != nil {
			return nil, fmt.Errorf("creating ifb %s: %w", name, err)
		}
		if l, err = h.LinkByName(name); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case !ours(l, alias):
		return nil, fmt.Errorf("%s exists and is not topolane's ifb (type %s, alias %q): remove it", name, l.Type(), l.Attrs().Alias)
	}
	if err := h.LinkSetAlias(l, alias); err != nil {
		return nil, err
	}
	return l, h.LinkSetUp(l)
}

// ours says whether l is the ifb topolane made (the alias is set just after it is created).
func ours(l netlink.Link, alias string) bool {
	a := l.Attrs().Alias
	return l.Type() == "ifb" && (a == alias || a == "")
}

// redirect sends everything the device receives to the ifb: an ingress qdisc with one u32
// match-all filter whose mirred action redirects to the ifb's egress.
func redirect(h *netlink.Handle, dev, ifb netlink.Link) error {
	if err := ensureIngressQdisc(h, dev); err != nil {
		return err
	}
	if err := deleteFilter(h, dev); err != nil {
		return err
	}
	f := &netlink.U32{
		FilterAttrs: filterAttrs(dev),
		Actions:     []netlink.Action{netlink.NewMirredAction(ifb.Attrs().Index)},
	}
	if err := h.FilterAdd(f); err != nil {
		return fmt.Errorf("adding the redirect filter: %w", err)
	}
	return nil
}

func filterAttrs(dev netlink.Link) netlink.FilterAttrs {
	return netlink.FilterAttrs{LinkIndex: dev.Attrs().Index, Parent: ingressHandle, Priority: filterPriority, Protocol: unix.ETH_P_ALL}
}

func ensureIngressQdisc(h *netlink.Handle, dev netlink.Link) error {
	if q, err := ingressQdisc(h, dev); err != nil || q != nil {
		return err
	}
	q := &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: dev.Attrs().Index, Handle: ingressHandle, Parent: netlink.HANDLE_INGRESS}}
	if err := h.QdiscAdd(q); err != nil {
		return fmt.Errorf("adding the ingress qdisc: %w", err)
	}
	return nil
}

func ingressQdisc(h *netlink.Handle, dev netlink.Link) (netlink.Qdisc, error) {
	qs, err := h.QdiscList(dev)
	if err != nil {
		return nil, fmt.Errorf("listing qdiscs of %s: %w", dev.Attrs().Name, err)
	}
	for _, q := range qs {
		if q.Attrs().Parent == netlink.HANDLE_INGRESS {
			return q, nil
		}
	}
	return nil, nil
}

func rootTBF(h *netlink.Handle, link netlink.Link) (*netlink.Tbf, error) {
	qs, err := h.QdiscList(link)
	if err != nil {
		return nil, fmt.Errorf("listing qdiscs of %s: %w", link.Attrs().Name, err)
	}
	for _, q := range qs {
		if t, ok := q.(*netlink.Tbf); ok && q.Attrs().Parent == netlink.HANDLE_ROOT && q.Attrs().Handle == tbfHandle {
			return t, nil
		}
	}
	return nil, nil
}

// deleteFilter deletes topolane's redirect filter (every filter at its priority), if any, from
// the device's ingress qdisc, which must exist.
func deleteFilter(h *netlink.Handle, dev netlink.Link) error {
	err := h.FilterDel(&netlink.U32{FilterAttrs: filterAttrs(dev)})
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("deleting the redirect filter: %w", err)
}

// Remove undoes a plan from the plan alone: the root tbf, the redirect filter (and the ingress
// qdisc once it holds no filter: an empty one does nothing), the ifb. Each part that is not there is done already:
// Remove is idempotent, harmless after a half-applied plan, and a namespace that is gone
// (taking the ifb with it; a device that leaves a namespace loses its qdiscs) is not an error.
func Remove(ctx context.Context, p Plan) error {
	h, err := handleAt(p.Netns)
	if errors.Is(err, netbind.ErrNoNamespace) {
		return nil
	}
	if err != nil {
		return err
	}
	defer h.Close()
	var errs []error
	if dev, err := h.LinkByName(p.Device); err == nil {
		errs = append(errs, removeQdiscs(h, dev))
	} else if !isNotFound(err) {
		errs = append(errs, fmt.Errorf("device %s in %s: %w", p.Device, p.Netns, err))
	}
	errs = append(errs, removeIFBs(h, p))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing the shaping of %s in %s: %w", p.Device, p.Netns, err)
	}
	klog.FromContext(ctx).V(4).Info("Shaping removed", "netns", p.Netns, "device", p.Device)
	return nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

func removeQdiscs(h *netlink.Handle, dev netlink.Link) error {
	var errs []error
	if t, err := rootTBF(h, dev); err != nil {
		errs = append(errs, err)
	} else if t != nil {
		errs = append(errs, ignoreENOENT(h.QdiscDel(t)))
	}
	q, err := ingressQdisc(h, dev)
	if err != nil || q == nil {
		return errors.Join(append(errs, err)...)
	}
	errs = append(errs, deleteFilter(h, dev))
	filters, err := h.FilterList(dev, ingressHandle)
	if err == nil && len(filters) == 0 {
		err = ignoreENOENT(h.QdiscDel(q))
	}
	return errors.Join(append(errs, err)...)
}

func removeIFBs(h *netlink.Handle, p Plan) error {
	names := []string{IFBName(p.Device)}
	if p.IFB != "" && p.IFB != names[0] {
		names = append(names, p.IFB)
	}
	var errs []error
	for _, name := range names {
		l, err := h.LinkByName(name)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ours(l, ifbAliasPrefix+p.Device) {
			continue // not ours: left alone
		}
		if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("deleting %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func ignoreENOENT(err error) error {
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}
