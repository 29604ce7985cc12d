package attach

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/topolane/topolane/nodeagent/internal/shaping"
)

// Check compares the pod's devices with the journal and reports every difference.
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
	for i := range r.Devices {
		d, err := a.checkDevice(r, &r.Devices[i])
		if err != nil {
			return err
		}
		diffs = append(diffs, d...)
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

// checkDevice lists what differs of one device from what ADD made of it.
func (a *Attacher) checkDevice(r *Record, d *Device) ([]string, error) {
	st, err := a.Kernel.Link(r.Netns, d.IfName)
	if err != nil {
		return []string{fmt.Sprintf("%s is not in the pod's namespace (%v)", d.IfName, err)}, nil
	}
	var diffs []string
	if st.Alias != d.Alias {
		diffs = append(diffs, fmt.Sprintf("%s is not the device topolane attached (alias %q, want %q)", d.IfName, st.Alias, d.Alias))
	}
	if !st.Up {
		diffs = append(diffs, d.IfName+" is down")
	}
	if d.MAC != "" && st.MAC.String() != d.MAC {
		diffs = append(diffs, fmt.Sprintf("%s has MAC %s, want %s", d.IfName, st.MAC, d.MAC))
	}
	res, err := ipamResult(d)
	if err != nil {
		return nil, err
	}
	for _, ip := range res.IPs {
		if !hasAddr(st.Addrs, ip.Address) {
			diffs = append(diffs, d.IfName+": address "+ip.Address.String()+" is missing")
		}
	}
	more, err := a.checkShaping(d)
	return append(diffs, more...), err
}

func (a *Attacher) checkShaping(d *Device) ([]string, error) {
	var diffs []string
	if d.Shaping != nil {
		got, err := shaping.Check(*d.Shaping)
		if err != nil {
			return nil, err
		}
		diffs = append(diffs, got...)
	}
	if d.VFCeiling != nil {
		got, err := shaping.CheckVFCeiling(a.Kernel, *d.VFCeiling)
		if err != nil {
			return nil, err
		}
		diffs = append(diffs, got...)
	}
	return diffs, nil
}

func hasAddr(addrs []*net.IPNet, want net.IPNet) bool {
	for _, a := range addrs {
		if a.IP.Equal(want.IP) && a.Mask.String() == want.Mask.String() {
			return true
		}
	}
	return false
}
