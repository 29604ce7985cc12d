package attach

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/topolane/topolane/nodeagent/internal/netbind"
	"github.com/topolane/topolane/topology/placement"
)

// Del detaches: the device goes back to the host with its name and MAC, the addresses are
// released, the files removed. Without a journal record there is nothing to do: DEL is
// idempotent, and succeeds when the pod's namespace is gone.
func (a *Attacher) Del(ctx context.Context, q Request) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if q.ContainerID == "" || q.IfName == "" {
		return coded(CodeEnv, fmt.Errorf("DEL needs CNI_CONTAINERID and CNI_IFNAME"))
	}
	r, ok, err := a.Journal.Load(q.ContainerID, q.IfName)
	if err != nil || !ok {
		return err
	}
	return a.undo(ctx, r)
}

// undo reverses every step the record may have taken, in reverse order, each harmless if it
// was not taken. The record goes only when all is undone; otherwise the next try resumes.
func (a *Attacher) undo(ctx context.Context, r *Record) error {
	if !r.Deleting {
		r.Deleting = true
		if err := a.Journal.Save(r); err != nil {
			return err
		}
	}
	if r.Step >= StepAccel {
		if err := removeAccel(a.AccelDir, r.PodUID); err != nil {
			return err
		}
		a.after("del", StepAccel)
	}
	if r.Step >= StepHostName {
		if err := a.bringHome(r); err != nil {
			return err
		}
		a.after("del", StepHostName)
	}
	if r.Step >= StepVFMAC && r.Kind == placement.KindVF && r.OrigVFMAC != "" {
		mac, _ := net.ParseMAC(r.OrigVFMAC)
		if err := a.Kernel.SetVFMAC(r.PF, r.VFIndex, mac); err != nil {
			return fmt.Errorf("restoring VF %d's MAC on %s: %w", r.VFIndex, r.PF, err)
		}
		a.after("del", StepVFMAC)
	}
	if r.Step >= StepIPAM {
		if err := ipamDel(ctx, r); err != nil {
			return err
		}
		a.after("del", StepIPAM)
	}
	if err := a.Journal.Remove(r); err != nil {
		return err
	}
	if a.Reporter != nil && r.Step == StepDone {
		a.Reporter.Detached(ctx, r)
	}
	return nil
}

// bringHome returns the device to the host under its own name, MAC, alias and state; a macvlan
// is deleted. It finds the device by its alias, wherever a crash left it.
func (a *Attacher) bringHome(r *Record) error {
	k := a.Kernel
	if k.NamespaceExists(r.Netns) {
		name, err := k.Find(r.Netns, r.Alias)
		if err != nil && !errors.Is(err, netbind.ErrNoNamespace) {
			return err
		}
		if name != "" {
			if err := a.leavePod(r, name); err != nil {
				return err
			}
		}
	}
	name, err := k.Find(netbind.Host, r.Alias)
	if err != nil {
		return err
	}
	if r.Kind == placement.KindMacvlan {
		return a.deleteMacvlan(r, name)
	}
	if name == "" {
		// Not marked: the alias was never set, and the device never left (or it is gone with
		// a deleted namespace: a virtual device is, a physical one comes back marked).
		return nil
	}
	return a.restoreOnHost(r, name)
}

// leavePod moves the device out of the pod's namespace, under its temporary name (the CNI name
// may be taken on the host).
func (a *Attacher) leavePod(r *Record, name string) error {
	k := a.Kernel
	if r.Kind == placement.KindMacvlan {
		return k.Delete(r.Netns, name)
	}
	if err := k.SetUp(r.Netns, name, false); err != nil {
		return err
	}
	if name != r.TempName {
		if err := k.Rename(r.Netns, name, r.TempName); err != nil {
			return err
		}
	}
	return k.Move(r.Netns, r.TempName, netbind.Host)
}

func (a *Attacher) deleteMacvlan(r *Record, name string) error {
	if name == "" { // created, perhaps, but not yet marked
		if _, err := a.Kernel.Link(netbind.Host, r.TempName); err != nil {
			return nil
		}
		name = r.TempName
	}
	return a.Kernel.Delete(netbind.Host, name)
}

func (a *Attacher) restoreOnHost(r *Record, name string) error {
	k := a.Kernel
	if err := k.SetUp(netbind.Host, name, false); err != nil {
		return err
	}
	if name != r.HostName {
		if err := k.Rename(netbind.Host, name, r.HostName); err != nil {
			return fmt.Errorf("renaming %s back to %s: %w", name, r.HostName, err)
		}
	}
	if r.Kind == placement.KindVF && r.OrigMAC != "" {
		mac, _ := net.ParseMAC(r.OrigMAC)
		if err := k.SetMAC(netbind.Host, r.HostName, mac); err != nil {
			return err
		}
	}
	if err := k.SetAlias(netbind.Host, r.HostName, r.OrigAlias); err != nil {
		return err
	}
	if r.WasUp {
		return k.SetUp(netbind.Host, r.HostName, true)
	}
	return nil
}

// Check compares the pod's device with the journal and reports every difference.
func (a *Attacher) Check(ctx context.Context, q Request) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := q.validate(true); err != nil {
		return coded(CodeEnv, err)
	}
	r, ok, err := a.Journal.Load(q.ContainerID, q.IfName)
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("no attachment of %s for container %s: was ADD called?", q.IfName, q.ContainerID)
	case r.Step != StepDone || r.Deleting:
		return fmt.Errorf("the attachment of %s for container %s is unfinished (at %s)", q.IfName, q.ContainerID, r.Step)
	}
	var diffs []string
	st, err := a.Kernel.Link(r.Netns, r.IfName)
	if err != nil {
		return fmt.Errorf("CHECK: %s is not in the pod's namespace: %w", r.IfName, err)
	}
	if st.Alias != r.Alias {
		diffs = append(diffs, fmt.Sprintf("%s is not the device topolane attached (alias %q, want %q)", r.IfName, st.Alias, r.Alias))
	}
	if !st.Up {
		diffs = append(diffs, r.IfName+" is down")
	}
	if r.MAC != "" && st.MAC.String() != r.MAC {
		diffs = append(diffs, fmt.Sprintf("MAC %s, want %s", st.MAC, r.MAC))
	}
	res, err := ipamResult(r)
	if err != nil {
		return err
	}
	for _, ip := range res.IPs {
		if !hasAddr(st.Addrs, ip.Address) {
			diffs = append(diffs, "address "+ip.Address.String()+" is missing")
		}
	}
	for _, f := range []string{"accel.env", "accel.json"} {
		if _, err := os.Stat(filepath.Join(accelDir(a.AccelDir, r.PodUID), f)); err != nil {
			diffs = append(diffs, f+" is missing")
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("CHECK of %s in %s: %s", r.IfName, r.Netns, strings.Join(diffs, "; "))
	}
	return nil
}

func hasAddr(addrs []*net.IPNet, want net.IPNet) bool {
	for _, a := range addrs {
		if a.IP.Equal(want.IP) && a.Mask.String() == want.Mask.String() {
			return true
		}
	}
	return false
}

// Reconcile runs at start: it undoes interrupted ADDs and DELs, and attachments whose pod
// namespace is gone. It returns what it undid.
func (a *Attacher) Reconcile(ctx context.Context) ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	records, err := a.Journal.All()
	if err != nil {
		return nil, err
	}
	var undone []string
	var errs []error
	for _, r := range records {
		if r.Step == StepDone && !r.Deleting && a.Kernel.NamespaceExists(r.Netns) {
			continue
		}
		if err := a.undo(ctx, r); err != nil {
			errs = append(errs, fmt.Errorf("%s/%s of pod %s: %w", r.ContainerID, r.IfName, r.Pod, err))
			continue
		}
		undone = append(undone, fmt.Sprintf("%s %s of pod %s (was at %s)", r.Kind, r.Device, r.Pod, r.Step))
	}
	return undone, errors.Join(errs...)
}

// GC undoes every attachment not in valid (container ID and interface name pairs the runtime
// still knows), as CNI's GC asks.
func (a *Attacher) GC(ctx context.Context, valid map[[2]string]bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	records, err := a.Journal.All()
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range records {
		if !valid[[2]string{r.ContainerID, r.IfName}] {
			errs = append(errs, a.undo(ctx, r))
		}
	}
	return errors.Join(errs...)
}

// result is the CNI result of a finished attachment.
func (a *Attacher) result(r *Record) (*current.Result, error) {
	res, err := ipamResult(r)
	if err != nil {
		return nil, err
	}
	mac := r.MAC
	if st, err := a.Kernel.Link(r.Netns, r.IfName); err == nil {
		mac = st.MAC.String()
	}
	out := &current.Result{CNIVersion: current.ImplementedSpecVersion, DNS: res.DNS, Routes: res.Routes,
		Interfaces: []*current.Interface{{Name: r.IfName, Mac: mac, Sandbox: r.Netns, PciID: r.Device}}}
	zero := 0
	for _, ip := range res.IPs {
		c := *ip
		c.Interface = &zero
		out.IPs = append(out.IPs, &c)
	}
	return out, nil
}
