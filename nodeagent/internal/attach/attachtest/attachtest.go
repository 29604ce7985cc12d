// Package attachtest is the kernel fixture of the attach tests: a throwaway host namespace in
// which every RDMA NIC and VF of the DGX H100 fixture is a veth end of its name, pods and their
// GPUs, the real host-local IPAM plugin, and the SR-IOV calls (a VF's MAC and rates) faked in
// files.
package attachtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/topolane/topolane/nodeagent/internal/attach"
	"github.com/topolane/topolane/nodeagent/internal/discovery"
	"github.com/topolane/topolane/nodeagent/internal/netbind"
	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/topologytest"
)

// fixture is the DGX H100 fixture: every RDMA NIC and VF is a veth end of that name in a
// throwaway host namespace.
type Fixture struct {
	HostNS string                `json:"hostNS"`
	Dir    string                `json:"dir"`
	Pods   map[string]attach.Pod `json:"pods"`
	GPUs   map[string][]string   `json:"gpus"`
}

type Env struct {
	T       testing.TB
	Fx      *Fixture
	Host    ns.NetNS
	Att     *attach.Attacher
	Node    *topology.Node
	cniPath string
}

func New(t testing.TB, cniPath string) *Env {
	t.Helper()
	host, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close(); _ = testutils.UnmountNS(host) })
	e := &Env{T: t, Host: host, Node: topologytest.DGXH100().Node(), cniPath: cniPath,
		Fx: &Fixture{HostNS: host.Path(), Dir: t.TempDir(), Pods: map[string]attach.Pod{}, GPUs: map[string][]string{}}}
	h := e.Handle(host.Path())
	defer h.Close()
	for i, name := range deviceNames(e.Node) {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: net.HardwareAddr{0x0e, 0, 0, 0, 1, byte(i)}}, PeerName: fmt.Sprintf("peer%d", i)}
		if err := h.LinkAdd(veth); err != nil {
			t.Fatalf("creating veth %s: %v", name, err)
		}
		if i%3 != 2 { // most up, some down: DEL must restore either
			l, _ := h.LinkByName(name)
			_ = h.LinkSetUp(l)
		}
	}
	e.Att = e.Fx.Attacher(e.Node)
	return e
}

// deviceAddrs are the PCI addresses of the fixture's RDMA NICs and their VFs, as deviceNames.
func deviceAddrs(node *topology.Node) []string {
	var addrs []string
	for _, nic := range node.NICs {
		if !nic.RDMA() {
			continue
		}
		addrs = append(addrs, nic.PCIAddress)
		if nic.SRIOV != nil {
			for _, vf := range nic.SRIOV.VFs {
				addrs = append(addrs, vf.PCIAddress)
			}
		}
	}
	return addrs
}

// deviceNames are the netdevs of the fixture's RDMA NICs and their VFs.
func deviceNames(node *topology.Node) []string {
	var names []string
	for _, nic := range node.NICs {
		if !nic.RDMA() {
			continue
		}
		names = append(names, nic.Name)
		if nic.SRIOV != nil {
			for _, vf := range nic.SRIOV.VFs {
				names = append(names, vf.Name)
			}
		}
	}
	return names
}

func (e *Env) Handle(path string) *netlink.Handle {
	e.T.Helper()
	nsh, err := netns.GetFromPath(path)
	if err != nil {
		e.T.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		e.T.Fatal(err)
	}
	return h
}

// Attacher builds the agent's attacher over the fixture, as a restarted agent would.
func (fx *Fixture) Attacher(node *topology.Node) *attach.Attacher {
	host := netbind.Netlink{HostNS: fx.HostNS}
	return &attach.Attacher{
		Kernel:   Kernel{Netlink: host, vfFile: filepath.Join(fx.Dir, "vf-macs.json")},
		Netdevs:  Netdevs{HostNS: fx.HostNS, peers: peersOf(node)},
		HostUse:  discovery.HostGuard{Links: host},
		Journal:  attach.Journal{Dir: filepath.Join(fx.Dir, "journal")},
		AccelDir: filepath.Join(fx.Dir, "pods"),
		Topology: func() *topology.Node { return node },
		Pods:     FakePods(fx.Pods),
		GPUs:     FakeGPUs(fx.GPUs),
		BootID:   func() (string, error) { return fx.BootID(), nil },
	}
}

// BootID is the fixture's boot id: "boot-1" until Reboot.
func (fx *Fixture) BootID() string {
	data, err := os.ReadFile(filepath.Join(fx.Dir, "boot_id"))
	if err != nil {
		return "boot-1"
	}
	return string(data)
}

// Reboot changes the fixture's boot id, and resets what the faked hardware holds (VF MACs,
// rates, GUIDs), as a reboot of the node would.
func (fx *Fixture) Reboot(id string) error {
	for _, f := range []string{"vf-macs.json", "vf-rates.json", "hardware.json"} {
		if err := os.Remove(filepath.Join(fx.Dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return os.WriteFile(filepath.Join(fx.Dir, "boot_id"), []byte(id), 0o600)
}

// peersOf maps every stand-in's PCI address to the name of its veth peer, in the order New
// creates them.
func peersOf(node *topology.Node) map[string]string {
	peers := map[string]string{}
	for i, addr := range deviceAddrs(node) {
		peers[addr] = fmt.Sprintf("peer%d", i)
	}
	return peers
}

// Netdevs finds a stand-in by its PCI address as sysfs finds a real device: each stand-in's
// veth peer never leaves the host namespace, like the PCI function under a netdev; the stand-in
// is found only while it is in the host namespace, whatever its name.
type Netdevs struct {
	HostNS string
	peers  map[string]string
}

func (n Netdevs) NetDev(pci string) (string, error) {
	peer, ok := n.peers[pci]
	if !ok {
		return "", fmt.Errorf("no PCI function %s in the fixture", pci)
	}
	nsh, err := netns.GetFromPath(n.HostNS)
	if err != nil {
		return "", err
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		return "", err
	}
	defer h.Close()
	p, err := h.LinkByName(peer)
	if err != nil {
		return "", fmt.Errorf("the stand-in of %s is gone (%v)", pci, err)
	}
	l, err := h.LinkByIndex(p.Attrs().ParentIndex)
	if err != nil || l.Attrs().ParentIndex != p.Attrs().Index || p.Attrs().NetNsID >= 0 {
		return "", fmt.Errorf("the netdev of %s is in another network namespace (a pod's?)", pci)
	}
	return l.Attrs().Name, nil
}

// testKernel is the real kernel except the calls that need SR-IOV hardware (a VF's MAC and rate
// limits), kept in files so that a killed and restarted agent sees what was set.
type Kernel struct {
	netbind.Netlink
	vfFile string
}

var vfMu sync.Mutex

func (k Kernel) vfMACs() map[string]string {
	m := map[string]string{}
	data, _ := os.ReadFile(k.vfFile)
	_ = json.Unmarshal(data, &m)
	return m
}

func (k Kernel) SetVFMAC(pf string, vf int, mac net.HardwareAddr) error {
	if err := k.hardware("SetVFMAC", fmt.Sprintf("%s, %d, %s", pf, vf, mac), func(*hardware) error { return nil }); err != nil {
		return err
	}
	vfMu.Lock()
	defer vfMu.Unlock()
	m := k.vfMACs()
	m[fmt.Sprintf("%s/%d", pf, vf)] = mac.String()
	data, _ := json.Marshal(m)
	return os.WriteFile(k.vfFile, data, 0o600)
}

func (k Kernel) VFMAC(pf string, vf int) (net.HardwareAddr, error) {
	vfMu.Lock()
	defer vfMu.Unlock()
	if mac, ok := k.vfMACs()[fmt.Sprintf("%s/%d", pf, vf)]; ok {
		return net.ParseMAC(mac)
	}
	return net.HardwareAddr{0x0e, 0xf0, 0, 0, byte(len(pf)), byte(vf)}, nil // what the PF reports before anyone set it
}

// vfRates is the fake's VF rate limiting, kept in a file next to the MACs: the rates set
// ("pf/vf" → [min, max] Mbit/s; 0/0, no limit, before anyone set them), every call made, and
// the errno each method answers instead (FailVFRate).
type vfRates struct {
	Rates map[string][2]int        `json:"rates"`
	Calls []string                 `json:"calls"`
	Fail  map[string]syscall.Errno `json:"fail"`
}

func (k Kernel) ratesFile() string { return filepath.Join(filepath.Dir(k.vfFile), "vf-rates.json") }

// updateRates reads the fake's rates, lets fn change them and writes them back.
func (k Kernel) updateRates(fn func(*vfRates) error) error {
	vfMu.Lock()
	defer vfMu.Unlock()
	r := vfRates{Rates: map[string][2]int{}, Fail: map[string]syscall.Errno{}}
	if data, err := os.ReadFile(k.ratesFile()); err == nil {
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
	}
	ferr := fn(&r)
	data, _ := json.Marshal(r)
	if err := os.WriteFile(k.ratesFile(), data, 0o600); err != nil {
		return err
	}
	return ferr
}

func (k Kernel) SetVFRate(pf string, vf int, minMbps, maxMbps int) error {
	return k.updateRates(func(r *vfRates) error {
		r.Calls = append(r.Calls, fmt.Sprintf("SetVFRate %s %d %d %d", pf, vf, minMbps, maxMbps))
		if errno := r.Fail["SetVFRate"]; errno != 0 {
			return errno
		}
		r.Rates[fmt.Sprintf("%s/%d", pf, vf)] = [2]int{minMbps, maxMbps}
		return nil
	})
}

func (k Kernel) VFRate(pf string, vf int) (minMbps, maxMbps int, err error) {
	err = k.updateRates(func(r *vfRates) error {
		r.Calls = append(r.Calls, fmt.Sprintf("VFRate %s %d", pf, vf))
		if errno := r.Fail["VFRate"]; errno != 0 {
			return errno
		}
		rate := r.Rates[fmt.Sprintf("%s/%d", pf, vf)]
		minMbps, maxMbps = rate[0], rate[1]
		return nil
	})
	return minMbps, maxMbps, err
}

// FailVFRate makes method ("SetVFRate" or "VFRate") answer errno from now on; 0 heals it.
func (k Kernel) FailVFRate(method string, errno syscall.Errno) error {
	return k.updateRates(func(r *vfRates) error {
		r.Fail[method] = errno
		return nil
	})
}

// VFRateCalls lists the VF rate calls made so far, and the rates set.
func (k Kernel) VFRateCalls() (calls []string, rates map[string][2]int, err error) {
	err = k.updateRates(func(r *vfRates) error {
		calls, rates = r.Calls, r.Rates
		return nil
	})
	return calls, rates, err
}

type FakePods map[string]attach.Pod

func (p FakePods) Get(_ context.Context, namespace, name string) (attach.Pod, error) {
	pod, ok := p[namespace+"/"+name]
	if !ok {
		return attach.Pod{}, fmt.Errorf("pods %q not found", name)
	}
	return pod, nil
}

type FakeGPUs map[string][]string

func (g FakeGPUs) Allocated(context.Context) (map[string][]string, error) { return g, nil }

// addPod registers a pod with the given GPUs (indexes into the fixture's GPUs).
func (e *Env) AddPod(name string, gpus []int, annotations map[string]string) {
	if annotations == nil {
		annotations = map[string]string{}
	}
	e.Fx.Pods["train/"+name] = attach.Pod{UID: "uid-" + name, Annotations: annotations}
	var ids []string
	for _, g := range gpus {
		ids = append(ids, e.Node.GPUs[g].PCIAddress)
	}
	e.Fx.GPUs["train/"+name] = ids
}

func (e *Env) NetConf() []byte {
	return []byte(fmt.Sprintf(`{"cniVersion":"1.0.0","name":"rdma","type":"topolane","ipam":{"type":"host-local","subnet":"10.77.0.0/24","dataDir":%q}}`,
		filepath.Join(e.Fx.Dir, "ipam")))
}

// request is an ADD/DEL request for a pod into a fresh namespace (or podNS).
func (e *Env) Request(pod string, podNS ns.NetNS) attach.Request {
	return attach.Request{ContainerID: "c-" + pod, Netns: podNS.Path(), IfName: "net1", PodNamespace: "train", PodName: pod,
		NetConf: e.NetConf(), CNIPath: []string{e.cniPath}}
}

func (e *Env) NewPodNS() ns.NetNS {
	e.T.Helper()
	p, err := testutils.NewNS()
	if err != nil {
		e.T.Fatal(err)
	}
	e.T.Cleanup(func() { p.Close(); _ = testutils.UnmountNS(p) })
	return p
}

// links describes every link of a namespace: name, alias, MAC, up.
func (e *Env) Links(path string) []string {
	h := e.Handle(path)
	defer h.Close()
	ls, err := h.LinkList()
	if err != nil {
		e.T.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		a := l.Attrs()
		out = append(out, fmt.Sprintf("%s alias=%q mac=%s up=%v", a.Name, a.Alias, a.HardwareAddr, a.Flags&net.FlagUp != 0))
	}
	sort.Strings(out)
	return out
}

// Leftovers lists what an attachment may leave: journal records, acceleration configs, IP
// reservations, VF MACs, rates and GUIDs that differ from the PF's defaults, RDMA devices
// not in the host.
func (e *Env) Leftovers() []string {
	var out []string
	for _, glob := range []string{"journal/*", "pods/*", "ipam/*/10.*"} {
		m, _ := filepath.Glob(filepath.Join(e.Fx.Dir, glob))
		out = append(out, m...)
	}
	k := e.Att.Kernel.(Kernel)
	for key, mac := range k.vfMACs() {
		pf, vf, _ := strings.Cut(key, "/")
		var idx int
		fmt.Sscan(vf, &idx)
		if want := (net.HardwareAddr{0x0e, 0xf0, 0, 0, byte(len(pf)), byte(idx)}).String(); mac != want {
			out = append(out, "VF MAC "+key+"="+mac)
		}
	}
	_, rates, _ := k.VFRateCalls()
	for key, r := range rates {
		if r != [2]int{} {
			out = append(out, fmt.Sprintf("VF rate %s=%v", key, r))
		}
	}
	hw := e.readHardware()
	for key, g := range hw.GUIDs {
		pf, vf, _ := strings.Cut(key, "/")
		var idx int
		fmt.Sscan(vf, &idx)
		if node, port := DefaultGUIDs(pf, idx); g != [2]string{node.String(), port.String()} {
			out = append(out, fmt.Sprintf("VF GUIDs %s=%v", key, g))
		}
	}
	for dev, where := range hw.RDMA {
		if where != "" {
			out = append(out, "RDMA device "+dev+" in "+where)
		}
	}
	return out
}

func Unmount(path string) error {
	if err := syscall.Unmount(path, syscall.MNT_DETACH); err != nil {
		return err
	}
	return os.Remove(path)
}

// BuildHostLocal builds the real host-local IPAM plugin into dir.
func BuildHostLocal(dir string) error {
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "host-local"), "github.com/containernetworking/plugins/plugins/ipam/host-local").CombinedOutput()
	if err != nil {
		return fmt.Errorf("building host-local: %v\n%s", err, out)
	}
	return nil
}

// Main runs a test binary whose tests move devices between namespaces: it refuses to run
// without root (CI is root; skipping would hide the tests), builds host-local and then each of
// build into a temporary directory, sets *dir to it, runs the tests and cleans up. It returns
// the exit code.
func Main(m *testing.M, dir *string, build ...func(dir string) error) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "these tests move devices between network namespaces: run them as root (CI does)")
		return 1
	}
	d, err := os.MkdirTemp("", "topolane-cni-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(d)
	*dir = d
	for _, b := range append([]func(string) error{BuildHostLocal}, build...) {
		if err := b(d); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}
