package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/topolane/topolane/nodeagent/internal/sysfs"
	"github.com/topolane/topolane/nodeagent/internal/sysfs/sysfstest"
	"github.com/topolane/topolane/topology/topologytest"
)

// TestDiscoverNICSelectors: discover shows each excluded NIC with its reason, and warns about
// a selector that matches no NIC.
func TestDiscoverNICSelectors(t *testing.T) {
	code, out, errOut := runCLI("discover", "--sysfs-root", fixtures+"dgx-h100", "--nics", "15b3:1021,0000:1a:00.3",
		"--exclude-nics", "enp26s0np0")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		"NIC0:   mlx5_0      enp26s0np0    0000:1a:00.0  PF, 4 of 16 VFs; excluded: in --exclude-nics (enp26s0np0)\n",
		"NIC1:   mlx5_0_vf0  enp26s0np0v0  0000:1a:00.2  VF 0 of 0000:1a:00.0; excluded with its PF\n",
		"NIC5:   mlx5_1      enp66s0np0    0000:42:00.0  PF, 0 of 16 VFs\n",
		"eno3  0000:0c:00.0  ixgbe  NUMA 0  10 Gb/s  excluded: not in --nics\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if want := "warning: --nics entry 0000:1a:00.3 matches no NIC of this node: it is a VF, select its PF 0000:1a:00.0\n"; errOut != want {
		t.Errorf("stderr %q, want %q", errOut, want)
	}
}

func TestNICFlagErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"discover", "--nics", "0000:1a:00"}, `--nics "0000:1a:00": "0000:1a:00" is not a PCI address: want the form 0000:1a:00.0`},
		{[]string{"discover", "--exclude-nics", "enp1s0,"}, `--exclude-nics "enp1s0,": an empty entry`},
		{[]string{"discover", "--nics", "15b3:10211"}, `"15b3:10211" is not a vendor:device id: want four hex digits each`},
		{[]string{"discover", "--node-ip", "10.0.0.300"}, `--node-ip "10.0.0.300": "10.0.0.300" is not an IP address`},
		{[]string{"run", "--nics", "enp[1"}, `--nics "enp[1": "enp[1" is not a valid netdev glob`},
		{[]string{"run", "--exclude-nics", "mlx:1"}, `"mlx:1" is not a vendor:device id`},
	} {
		code, _, errOut := runCLI(tt.args...)
		if code != 2 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", tt.args, code, errOut, tt.want)
		}
	}
}

// TestOnlyThisMachineAsksTheHost: a fixture tree is another machine; NVML, the host's links
// and the RDMA mode are asked only about this machine's sysfs.
func TestOnlyThisMachineAsksTheHost(t *testing.T) {
	fixture := discoverOptions{root: fixtures + "dgx-h100"}.discovery(nil)
	if fixture.NVML != nil || fixture.Host != nil || fixture.RDMA != nil {
		t.Errorf("a fixture tree asks this machine: NVML %v, host links %v, RDMA %v", fixture.NVML, fixture.Host, fixture.RDMA)
	}
	node := discoverOptions{root: sysfs.DefaultRoot, thisMachine: true}.discovery(nil)
	if node.NVML == nil || node.Host == nil || node.RDMA == nil {
		t.Errorf("this machine's sysfs does not ask it: NVML %v, host links %v, RDMA %v", node.NVML, node.Host, node.RDMA)
	}
	_, out, _ := runCLI("discover", "--sysfs-root", fixtures+"single-socket", "--node-ip", "10.0.0.5")
	if want := "--node-ip is not matched: " + fixtures + "single-socket is not this machine's sysfs"; !strings.Contains(out, want) {
		t.Errorf("no note %q in\n%s", want, out)
	}
}

func TestNodeInternalIPs(t *testing.T) {
	client := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "dgx-1"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
		{Type: corev1.NodeHostName, Address: "dgx-1"},
		{Type: corev1.NodeInternalIP, Address: "10.0.0.5"},
		{Type: corev1.NodeExternalIP, Address: "203.0.113.5"},
		{Type: corev1.NodeInternalIP, Address: "fd00::5"},
	}}})
	ips, err := nodeInternalIPs(context.Background(), client, "dgx-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"10.0.0.5", "fd00::5"}, ipStrings(ips)); diff != "" {
		t.Errorf("InternalIPs (-want +got):\n%s", diff)
	}
	_, err = nodeInternalIPs(context.Background(), client, "dgx-2")
	if want := "reading Node dgx-2 for its InternalIP, so as never to hand out the NIC that holds it"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a missing Node: %v, want %q", err, want)
	}
}

func ipStrings(ips []net.IP) []string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return s
}

// TestRunRemembersNetdevNames: the daemon's discovery matches a --nics glob against the name a
// NIC had before its netdev went into a pod.
func TestRunRemembersNetdevNames(t *testing.T) {
	root := filepath.Join(t.TempDir(), "sys")
	if err := sysfstest.Write(root, topologytest.NoGPU()); err != nil {
		t.Fatal(err)
	}
	o, err := parseRunFlags([]string{"--nics", "enp1s0*", "--sysfs-root", root, "--node-name", "cpu-1"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	d := &nodeDiscoverer{o: o, client: fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cpu-1"}})}
	excluded := func() string {
		t.Helper()
		node, err := d.discover(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return node.NIC("0000:01:00.0").Excluded
	}
	if got := excluded(); got != "" {
		t.Fatalf("enp1s0np0 excluded before it moved: %q", got)
	}
	if err := os.RemoveAll(sysfs.Paths{Root: root}.PCIDevice("0000:01:00.0", "net")); err != nil { // into a pod
		t.Fatal(err)
	}
	if got := excluded(); got != "" {
		t.Errorf("enp1s0np0 excluded while in a pod: %q", got)
	}
}
