package attach

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/topolane/topolane/nodeagent/internal/netbind"
	"github.com/topolane/topolane/nodeagent/internal/shaping"
	"github.com/topolane/topolane/topology/placement"
)

// homeTimeout bounds the wait for a physical device the kernel returns from a dying namespace.
var homeTimeout = 10 * time.Second

// Del detaches: the devices go back to the host with their names and MACs, the addresses are
// released, the files removed. Without a journal record there is nothing to do: DEL is
// idempotent, and succeeds when the pod's namespace is gone.
func (a *Attacher) Del(ctx context.Context, q Request) error {
	if q.ContainerID == "" || q.IfName == "" {
		return coded(CodeEnv, fmt.Errorf("DEL needs CNI_CONTAINERID and CNI_IFNAME"))
	}
	r, done, err := a.del(ctx, q)
	if done && a.Reporter != nil {
		a.Reporter.Detached(ctx, r)
	}
	return err
}

func (a *Attacher) del(ctx context.Context, q Request) (*Record, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok, err := a.Journal.Load(q.ContainerID, q.IfName)
	if err != nil || !ok {
		return nil, false, err
	}
	wasDone := r.Step == StepDone
	err = a.undo(ctx, r)
	return r, err == nil && wasDone, err
}

// undo reverses every step the record may have taken, devices in reverse order, each harmless
// if it was not taken. A step that fails is noted and the others still run (the addresses are
// released whatever happened to a device); the record goes only when all is undone, otherwise
// the next DEL or reconcile tries again. After a reboot the devices are already home: only the
// addresses and files are released.
func (a *Attacher) undo(ctx context.Context, r *Record) error {
	if !r.Deleting {
		r.Deleting = true
		if err := a.Journal.Save(r); err != nil {
			return err
		}
	}
	u := undoing{a: a, ctx: ctx, r: r}
	if r.Step >= StepAccel && !a.podHasOtherRecord(r) {
		u.do("removing the acceleration config", -1, StepAccel, func() error { return removeAccel(a.AccelDir, r.PodUID) })
	}
	if a.sameBoot(r) {
		for i := len(r.Devices) - 1; i >= 0; i-- {
			u.device(i)
		}
	}
	if r.Step >= StepIPAM {
		for i := range r.Devices {
			if !r.Devices[i].NoAddresses {
				u.do("releasing the addresses of "+r.Devices[i].IfName, i, StepIPAM, func() error { return ipamDel(ctx, r, &r.Devices[i]) })
			}
		}
	}
	return u.finish()
}

// undoing is one undo's progress: what failed so far.
type undoing struct {
	a      *Attacher
	ctx    context.Context
	r      *Record
	failed []error
}

// do runs one undo step; a failure is noted and the undo carries on.
func (u *undoing) do(what string, device int, s Step, fn func() error) {
	if err := fn(); err != nil {
		u.failed = append(u.failed, fmt.Errorf("%s: %w", what, err))
		return
	}
	u.a.after("del", s, device)
}

func (u *undoing) device(i int) {
	r, d := u.r, &u.r.Devices[i]
	if r.Step >= StepShaped && d.Shaping != nil {
		u.do("removing the shaping of "+d.IfName, i, StepShaped, func() error { return shaping.Remove(u.ctx, *d.Shaping) })
	}
	if r.Step >= StepHostName {
		u.do("returning "+d.Device+" to the host", i, StepHostName, func() error { return u.a.bringHome(r, d) })
	}
	if r.Step >= StepVFConfig && d.Kind == placement.KindVF {
		u.do(fmt.Sprintf("restoring VF %d of %s", d.VFIndex, d.PF), i, StepVFConfig, func() error { return u.a.restoreVF(r, d) })
	}
}

// finish removes the record when all is undone, else keeps it with what failed.
func (u *undoing) finish() error {
	if len(u.failed) > 0 {
		u.r.Failed = nil
		for _, err := range u.failed {
			u.r.Failed = append(u.r.Failed, err.Error())
		}
		if err := u.a.Journal.Save(u.r); err != nil {
			u.failed = append(u.failed, err)
		}
		return fmt.Errorf("undoing the attachment of pod %s (the journal keeps it; the agent tries again): %w", u.r.Pod, errors.Join(u.failed...))
	}
	return u.a.Journal.Remove(u.r)
}

// sameBoot reports whether the record was written since the kernel last booted: after a reboot
// the devices are home already, under the names udev gave them, and nothing of them is ours.
func (a *Attacher) sameBoot(r *Record) bool {
	boot, err := a.bootID()
	return err != nil || r.BootID == "" || r.BootID == boot
}

// bringHome returns the device to the host under its own name, MAC, alias and state; a macvlan
// is deleted. In the pod it is found by its alias; on the host by its PCI address, wherever a
// crash left it and whatever it is named.
func (a *Attacher) bringHome(r *Record, d *Device) error {
	if err := a.unhome(r, d); err != nil {
		return err
	}
	if d.Kind == placement.KindMacvlan {
		return a.deleteMacvlan(r, d)
	}
	if err := a.leavePod(r, d); err != nil {
		return err
	}
	name, err := a.homeName(d)
	if err != nil {
		return err
	}
	if d.MoveRDMA {
		if err := a.rdmaHome(r, d); err != nil {
			return err
		}
	}
	return a.restoreOnHost(d, name)
}

// leavePod moves the device out of the pod's namespace, if it is there, under its temporary
// name (its own may be taken on the host).
func (a *Attacher) leavePod(r *Record, d *Device) error {
	k := a.Kernel
	if !k.NamespaceExists(r.Netns) {
		return nil
	}
	name, err := k.Find(r.Netns, d.Alias)
	if err != nil && !errors.Is(err, netbind.ErrNoNamespace) {
		return err
	}
	if name == "" {
		return nil
	}
	if err := k.SetUp(r.Netns, name, false); err != nil {
		return err
	}
	return k.Move(r.Netns, name, netbind.Host, d.TempName)
}

// unhome removes the device's source rules from the pod's namespace, if it is still there (its
// routes go with the device).
func (a *Attacher) unhome(r *Record, d *Device) error {
	if d.Table == 0 || !a.Kernel.NamespaceExists(r.Netns) {
		return nil
	}
	res, err := ipamResult(d)
	if err != nil {
		return nil // no addresses were given: no rule was added
	}
	for _, ip := range res.IPs {
		if err := a.Kernel.Unhome(r.Netns, ip.Address.IP, d.Table); err != nil {
			return err
		}
	}
	return nil
}

// homeName is the device's netdev in the host namespace, waiting a while for one the kernel is
// still returning from a namespace that is going away.
func (a *Attacher) homeName(d *Device) (string, error) {
	deadline := time.Now().Add(homeTimeout)
	for {
		name, err := a.Netdevs.NetDev(d.Device)
		if err == nil {
			return name, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s %s is not back in the host namespace after %v: %w", d.Kind, d.Device, homeTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rdmaHome moves the RDMA device back with its netdev. A namespace that is gone has returned it
// already; one that does not hold it never had it (the ADD stopped before the move) or has
// given it back (an undo that is run again).
func (a *Attacher) rdmaHome(r *Record, d *Device) error {
	if !a.Kernel.NamespaceExists(r.Netns) {
		return nil
	}
	err := a.Kernel.MoveRDMA(r.Netns, d.RDMA, netbind.Host)
	if errors.Is(err, netbind.ErrNoRDMADevice) {
		return nil
	}
	return err
}

func (a *Attacher) deleteMacvlan(r *Record, d *Device) error {
	k := a.Kernel
	if k.NamespaceExists(r.Netns) {
		if name, err := k.Find(r.Netns, d.Alias); err == nil && name != "" {
			if err := k.Delete(r.Netns, name); err != nil {
				return err
			}
		}
	}
	name, err := k.Find(netbind.Host, d.Alias)
	if err != nil {
		return err
	}
	if name == "" { // created, perhaps, but not yet marked
		if _, err := k.Link(netbind.Host, d.TempName); err != nil {
			return nil
		}
		name = d.TempName
	}
	return k.Delete(netbind.Host, name)
}

func (a *Attacher) restoreOnHost(d *Device, name string) error {
	k := a.Kernel
	if err := k.SetUp(netbind.Host, name, false); err != nil {
		return err
	}
	if name != d.HostName {
		if err := k.Rename(netbind.Host, name, d.HostName); err != nil {
			return fmt.Errorf("renaming %s back to %s: %w", name, d.HostName, err)
		}
	}
	if d.Kind == placement.KindVF && d.OrigMAC != "" && !d.InfiniBand {
		if err := k.SetMAC(netbind.Host, d.HostName, mustMAC(d.OrigMAC)); err != nil {
			return err
		}
	}
	if err := k.SetAlias(netbind.Host, d.HostName, d.OrigAlias); err != nil {
		return err
	}
	if d.WasUp {
		return k.SetUp(netbind.Host, d.HostName, true)
	}
	return nil
}

// restoreVF puts back the VF's MAC or GUIDs and its rate limits, unless another attachment holds
// the VF now (a record of this pod interrupted long ago must not undo a newer pod's).
func (a *Attacher) restoreVF(r *Record, d *Device) error {
	if a.heldByOther(r, d.Device) {
		return nil
	}
	if d.OrigVFMAC != "" || d.OrigNodeGUID != "" {
		if err := a.setVFIdentity(d, d.OrigVFMAC, d.OrigNodeGUID, d.OrigPortGUID); err != nil {
			return err
		}
	}
	if d.VFCeiling != nil {
		return shaping.RestoreVFCeiling(a.Kernel, *d.VFCeiling)
	}
	return nil
}

// heldByOther reports whether another journal record holds the device.
func (a *Attacher) heldByOther(r *Record, device string) bool {
	return slices.ContainsFunc(a.otherRecords(r), func(o *Record) bool {
		return slices.ContainsFunc(o.Devices, func(d Device) bool { return d.Device == device })
	})
}

// podHasOtherRecord reports whether another record (a newer sandbox of the pod, whose DEL of the
// old one the agent missed) wrote the pod's files: they are its files now.
func (a *Attacher) podHasOtherRecord(r *Record) bool {
	return r.PodUID != "" && slices.ContainsFunc(a.otherRecords(r), func(o *Record) bool { return o.PodUID == r.PodUID })
}

// otherRecords are the journal's records but r (those it can read).
func (a *Attacher) otherRecords(r *Record) []*Record {
	records, _ := a.Journal.All()
	return slices.DeleteFunc(records, func(o *Record) bool { return o.ContainerID == r.ContainerID && o.IfName == r.IfName })
}

// Reconcile undoes interrupted ADDs and DELs, attachments whose pod namespace is gone and those
// of an earlier boot. The agent runs it at start and on every period. It returns what it undid;
// a record it cannot undo is reported in the error and left for the next run, never blocking
// the others.
func (a *Attacher) Reconcile(ctx context.Context) ([]string, error) {
	undone, done, err := a.reconcile(ctx)
	if a.Reporter != nil {
		for _, r := range done {
			a.Reporter.Detached(ctx, r)
		}
	}
	return undone, err
}

func (a *Attacher) reconcile(ctx context.Context) (undone []string, detached []*Record, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	records, err := a.Journal.All()
	errs := []error{err}
	for _, r := range records {
		if r.Step == StepDone && !r.Deleting && a.Kernel.NamespaceExists(r.Netns) && a.sameBoot(r) {
			continue
		}
		wasDone := r.Step == StepDone
		if err := a.undo(ctx, r); err != nil {
			errs = append(errs, fmt.Errorf("%s/%s of pod %s: %w", r.ContainerID, r.IfName, r.Pod, err))
			continue
		}
		undone = append(undone, fmt.Sprintf("%s of pod %s (was at %s)", describe(r), r.Pod, r.Step))
		if wasDone {
			detached = append(detached, r)
		}
	}
	return undone, detached, errors.Join(errs...)
}

func describe(r *Record) string {
	if len(r.Devices) == 1 {
		return string(r.Devices[0].Kind) + " " + r.Devices[0].Device
	}
	return fmt.Sprintf("%d devices", len(r.Devices))
}

// GC undoes every attachment of the network that is not in valid (container ID and interface
// name pairs the runtime still knows), as CNI's GC asks. Other networks' attachments are not its
// business.
func (a *Attacher) GC(ctx context.Context, network string, valid map[[2]string]bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	records, err := a.Journal.All()
	errs := []error{err}
	for _, r := range records {
		if r.Network == network && !valid[[2]string{r.ContainerID, r.IfName}] {
			errs = append(errs, a.undo(ctx, r))
		}
	}
	return errors.Join(errs...)
}
