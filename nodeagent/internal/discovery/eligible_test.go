package discovery_test

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/topolane/topolane/nodeagent/internal/discovery"
	"github.com/topolane/topolane/nodeagent/internal/netbind"
	"github.com/topolane/topolane/nodeagent/internal/sysfs"
	"github.com/topolane/topolane/topology/topologytest"
)

// hostLinks is a host namespace as netbind reports it.
type hostLinks []netbind.HostLink

func (h hostLinks) HostLinks() ([]netbind.HostLink, error) { return h, nil }

type brokenHost struct{}

func (brokenHost) HostLinks() ([]netbind.HostLink, error) {
	return nil, errors.New("listing links in the host namespace: permission denied")
}

func ips(s ...string) []net.IP {
	var out []net.IP
	for _, a := range s {
		out = append(out, net.ParseIP(a))
	}
	return out
}

func selectors(t *testing.T, list string) discovery.Selectors {
	t.Helper()
	s, err := discovery.ParseSelectors("test", list)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestExcluded discovers the DGX H100 fixture (PFs enp26s0np0 0000:1a:00.0, enp66s0np0
// 0000:42:00.0, enp81s0np0 0000:51:00.0, ..., enp156s0np0 0000:9c:00.0, ...; the management
// NIC eno3 0000:0c:00.0, Intel 8086:1563; ConnectX-7 15b3:1021) with the host using some of its
// NICs and with operator selectors, and checks each NIC's Excluded.
func TestExcluded(t *testing.T) {
	root := writeMachine(t, topologytest.DGXH100())
	inPod := writeMachine(t, topologytest.DGXH100())
	if err := os.RemoveAll(sysfs.Paths{Root: inPod}.PCIDevice("0000:1a:00.0", "net")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name         string
		root         string
		opts         discovery.Options
		want         map[string]string // PCI address → Excluded, for the excluded NICs
		wantWarnings []string
	}{
		{name: "the host uses nothing", opts: discovery.Options{Host: hostLinks{{Name: "enp26s0np0"}, {Name: "eno3"}}}},
		{name: "not asked (a fixture)", opts: discovery.Options{NodeIPs: ips("10.0.0.5")}},
		{name: "default route", opts: discovery.Options{Host: hostLinks{{Name: "enp26s0np0", Addrs: ips("192.168.7.5"), DefaultRoutes: []string{"IPv4"}}}},
			want: map[string]string{"0000:1a:00.0": "carries the default route; has the host address 192.168.7.5"}},
		{name: "both default routes", opts: discovery.Options{Host: hostLinks{{Name: "eno3", DefaultRoutes: []string{"IPv4", "IPv6"}}}},
			want: map[string]string{"0000:0c:00.0": "carries the IPv4 and IPv6 default routes"}},
		{name: "IPv6 default route only", opts: discovery.Options{Host: hostLinks{{Name: "eno3", DefaultRoutes: []string{"IPv6"}}}},
			want: map[string]string{"0000:0c:00.0": "carries the IPv6 default route"}},
		{name: "the Node's InternalIP", opts: discovery.Options{NodeIPs: ips("10.0.0.5", "fd00::5"),
			Host: hostLinks{{Name: "enp66s0np0", Addrs: ips("10.0.0.5", "192.168.7.5", "fd00::5")}}},
			want: map[string]string{"0000:42:00.0": "holds 10.0.0.5, the Node's InternalIP; holds fd00::5, the Node's InternalIP; has the host address 192.168.7.5"}},
		{name: "bond and OVS members", opts: discovery.Options{Host: hostLinks{{Name: "enp81s0np0", Master: "bond0"}, {Name: "enp96s0np0", Master: "ovs-system"}, {Name: "bond0", Addrs: ips("10.0.0.5")}}},
			want: map[string]string{"0000:51:00.0": "member of bond0", "0000:60:00.0": "member of ovs-system"}},
		{name: "a VLAN on the NIC carries the host", opts: discovery.Options{Host: hostLinks{{Name: "enp156s0np0"},
			{Name: "enp156s0np0.100", Parent: "enp156s0np0", Addrs: ips("10.1.0.5"), DefaultRoutes: []string{"IPv4"}},
			{Name: "br-vlan", Parent: "enp156s0np0.100"}, {Name: "mv0", Parent: "enp156s0np0.100", Master: "br0"}}},
			want: map[string]string{"0000:9c:00.0": "carries the default route (on enp156s0np0.100); member of br0 (on mv0); has the host address 10.1.0.5 (on enp156s0np0.100)"}},
		{name: "host links that are not NICs of this node", opts: discovery.Options{NodeIPs: ips("10.0.0.5"),
			Host: hostLinks{{Name: "eth0", Addrs: ips("10.0.0.5"), DefaultRoutes: []string{"IPv4"}}, {Name: "enp26s0np0v0", Master: "br0"}}}},
		{name: "--nics by address and glob", opts: discovery.Options{NICs: selectors(t, "0000:1a:00.0,enp66*")},
			want: notIn("0000:51:00.0", "0000:60:00.0", "0000:9c:00.0", "0000:c2:00.0", "0000:d0:00.0", "0000:de:00.0", "0000:0c:00.0")},
		{name: "--nics by vendor:device", opts: discovery.Options{NICs: selectors(t, "15b3:1021")},
			want: notIn("0000:0c:00.0")},
		{name: "--exclude-nics", opts: discovery.Options{ExcludeNICs: selectors(t, "enp15*,8086:1563")},
			want: map[string]string{"0000:9c:00.0": "in --exclude-nics (enp15*)", "0000:0c:00.0": "in --exclude-nics (8086:1563)"}},
		{name: "--nics does not bring back what the host uses", opts: discovery.Options{NICs: selectors(t, "15b3:1021,eno3"),
			Host: hostLinks{{Name: "eno3", DefaultRoutes: []string{"IPv4"}}}},
			want: map[string]string{"0000:0c:00.0": "carries the default route"}},
		{name: "selectors that match nothing", opts: discovery.Options{NICs: selectors(t, "15b3:1021,0000:1a:00.2,eth9"), ExcludeNICs: selectors(t, "0000:77:00.0")},
			want: notIn("0000:0c:00.0"), wantWarnings: []string{
				"--nics entry 0000:1a:00.2 matches no NIC of this node: it is a VF, select its PF 0000:1a:00.0",
				"--nics entry eth9 matches no NIC of this node",
				"--exclude-nics entry 0000:77:00.0 matches no NIC of this node"}},
		{name: "a NIC in a pod matches a glob by its last host name", root: inPod,
			opts: discovery.Options{NICs: selectors(t, "enp*"), LastNames: map[string]string{"0000:1a:00.0": "enp26s0np0"}},
			want: notIn("0000:0c:00.0")},
		{name: "a NIC in a pod, its name not remembered", root: inPod, opts: discovery.Options{NICs: selectors(t, "enp*")},
			want: notIn("0000:0c:00.0", "0000:1a:00.0")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Sysfs = sysfs.Paths{Root: root}
			if tt.root != "" {
				tt.opts.Sysfs.Root = tt.root
			}
			res, err := discovery.Discover(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, nic := range res.Node.NICs {
				if nic.Excluded != "" {
					got[nic.PCIAddress] = nic.Excluded
				}
			}
			if diff := cmp.Diff(tt.want, got, cmpEmptyMap); diff != "" {
				t.Errorf("excluded NICs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantWarnings, res.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

var cmpEmptyMap = cmp.FilterValues(func(a, b map[string]string) bool { return len(a) == 0 && len(b) == 0 }, cmp.Ignore())

func notIn(addrs ...string) map[string]string {
	m := map[string]string{}
	for _, a := range addrs {
		m[a] = "not in --nics"
	}
	return m
}

// TestExcludedWhenHostUseUnknown: discovery fails rather than hand out a NIC that may be the
// node's own.
func TestExcludedWhenHostUseUnknown(t *testing.T) {
	_, err := discovery.Discover(discovery.Options{Sysfs: sysfs.Paths{Root: writeMachine(t, topologytest.NoGPU())}, Host: brokenHost{}})
	if err == nil || !strings.Contains(err.Error(), "reading how the host uses its links, so as never to hand out its own NICs: listing links") {
		t.Errorf("Discover: %v, want the host links error", err)
	}
}
