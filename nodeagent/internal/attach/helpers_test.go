package attach_test

import (
	"context"
	"encoding/json"
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
	"github.com/topolane/topolane/nodeagent/internal/netbind"
	"github.com/topolane/topolane/topology"
	"github.com/topolane/topolane/topology/topologytest"
)

// cniPath holds the real host-local IPAM plugin, built once by TestMain.
var cniPath string

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(child())
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "the attach tests move devices between network namespaces: run them as root (CI does)")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "topolane-cni-bin")
	if err == nil {
		cniPath = dir
		out, berr := exec.Command("go", "build", "-o", filepath.Join(dir, "host-local"), "github.com/containernetworking/plugins/plugins/ipam/host-local").CombinedOutput()
		if berr != nil {
			err = fmt.Errorf("building host-local: %v\n%s", berr, out)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fixture is the DGX H100 fixture: every RDMA NIC and VF is a veth end of that name in a
// throwaway host namespace.
type fixture struct {
	HostNS string                `json:"hostNS"`
	Dir    string                `json:"dir"`
	Pods   map[string]attach.Pod `json:"pods"`
	GPUs   map[string][]string   `json:"gpus"`
}

type env struct {
	t    testing.TB
	fx   *fixture
	host ns.NetNS
	att  *attach.Attacher
	node *topology.Node
}

func newEnv(t testing.TB) *env {
	t.Helper()
	host, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close(); _ = testutils.UnmountNS(host) })
	e := &env{t: t, host: host, node: topologytest.DGXH100().Node(),
		fx: &fixture{HostNS: host.Path(), Dir: t.TempDir(), Pods: map[string]attach.Pod{}, GPUs: map[string][]string{}}}
	h := e.handle(host.Path())
	defer h.Close()
	for i, name := range deviceNames(e.node) {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: net.HardwareAddr{0x0e, 0, 0, 0, 1, byte(i)}}, PeerName: fmt.Sprintf("peer%d", i)}
		if err := h.LinkAdd(veth); err != nil {
			t.Fatalf("creating veth %s: %v", name, err)
		}
		if i%3 != 2 { // most up, some down: DEL must restore either
			l, _ := h.LinkByName(name)
			_ = h.LinkSetUp(l)
		}
	}
	e.att = e.fx.attacher(e.node)
	return e
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

func (e *env) handle(path string) *netlink.Handle {
	e.t.Helper()
	nsh, err := netns.GetFromPath(path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

// attacher builds the agent's attacher over the fixture, as a restarted agent would.
func (fx *fixture) attacher(node *topology.Node) *attach.Attacher {
	return &attach.Attacher{
		Kernel:   testKernel{Netlink: netbind.Netlink{HostNS: fx.HostNS}, vfFile: filepath.Join(fx.Dir, "vf-macs.json")},
		Journal:  attach.Journal{Dir: filepath.Join(fx.Dir, "journal")},
		AccelDir: filepath.Join(fx.Dir, "pods"),
		Topology: func() *topology.Node { return node },
		Pods:     fakePods(fx.Pods),
		GPUs:     fakeGPUs(fx.GPUs),
	}
}

// testKernel is the real kernel except the two calls that need SR-IOV hardware, kept in a file
// so that a killed and restarted agent sees what was set.
type testKernel struct {
	netbind.Netlink
	vfFile string
}

var vfMu sync.Mutex

func (k testKernel) vfMACs() map[string]string {
	m := map[string]string{}
	data, _ := os.ReadFile(k.vfFile)
	_ = json.Unmarshal(data, &m)
	return m
}

func (k testKernel) SetVFMAC(pf string, vf int, mac net.HardwareAddr) error {
	vfMu.Lock()
	defer vfMu.Unlock()
	m := k.vfMACs()
	m[fmt.Sprintf("%s/%d", pf, vf)] = mac.String()
	data, _ := json.Marshal(m)
	return os.WriteFile(k.vfFile, data, 0o600)
}

func (k testKernel) VFMAC(pf string, vf int) (net.HardwareAddr, error) {
	vfMu.Lock()
	defer vfMu.Unlock()
	if mac, ok := k.vfMACs()[fmt.Sprintf("%s/%d", pf, vf)]; ok {
		return net.ParseMAC(mac)
	}
	return net.HardwareAddr{0x0e, 0xf0, 0, 0, byte(len(pf)), byte(vf)}, nil // what the PF reports before anyone set it
}

type fakePods map[string]attach.Pod

func (p fakePods) Get(_ context.Context, namespace, name string) (attach.Pod, error) {
	pod, ok := p[namespace+"/"+name]
	if !ok {
		return attach.Pod{}, fmt.Errorf("pods %q not found", name)
	}
	return pod, nil
}

type fakeGPUs map[string][]string

func (g fakeGPUs) Allocated(context.Context) (map[string][]string, error) { return g, nil }

// addPod registers a pod with the given GPUs (indexes into the fixture's GPUs).
func (e *env) addPod(name string, gpus []int, annotations map[string]string) {
	if annotations == nil {
		annotations = map[string]string{}
	}
	e.fx.Pods["train/"+name] = attach.Pod{UID: "uid-" + name, Annotations: annotations}
	var ids []string
	for _, g := range gpus {
		ids = append(ids, e.node.GPUs[g].PCIAddress)
	}
	e.fx.GPUs["train/"+name] = ids
}

func (e *env) netconf() []byte {
	return []byte(fmt.Sprintf(`{"cniVersion":"1.0.0","name":"rdma","type":"topolane","ipam":{"type":"host-local","subnet":"10.77.0.0/24","dataDir":%q}}`,
		filepath.Join(e.fx.Dir, "ipam")))
}

// request is an ADD/DEL request for a pod into a fresh namespace (or podNS).
func (e *env) request(pod string, podNS ns.NetNS) attach.Request {
	return attach.Request{ContainerID: "c-" + pod, Netns: podNS.Path(), IfName: "net1", PodNamespace: "train", PodName: pod,
		NetConf: e.netconf(), CNIPath: []string{cniPath}}
}

func (e *env) newPodNS() ns.NetNS {
	e.t.Helper()
	p, err := testutils.NewNS()
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { p.Close(); _ = testutils.UnmountNS(p) })
	return p
}

// links describes every link of a namespace: name, alias, MAC, up.
func (e *env) links(path string) []string {
	h := e.handle(path)
	defer h.Close()
	ls, err := h.LinkList()
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		a := l.Attrs()
		out = append(out, fmt.Sprintf("%s alias=%q mac=%s up=%v", a.Name, a.Alias, a.HardwareAddr, a.Flags&net.FlagUp != 0))
	}
	sort.Strings(out)
	return out
}

// leftovers lists what an attachment may leave: journal records, acceleration configs, IP
// reservations, VF MACs that differ from the PF's defaults.
func (e *env) leftovers() []string {
	var out []string
	for _, glob := range []string{"journal/*", "pods/*", "ipam/*/10.*"} {
		m, _ := filepath.Glob(filepath.Join(e.fx.Dir, glob))
		out = append(out, m...)
	}
	k := e.att.Kernel.(testKernel)
	for key, mac := range k.vfMACs() {
		pf, vf, _ := strings.Cut(key, "/")
		var idx int
		fmt.Sscan(vf, &idx)
		if want := (net.HardwareAddr{0x0e, 0xf0, 0, 0, byte(len(pf)), byte(idx)}).String(); mac != want {
			out = append(out, "VF MAC "+key+"="+mac)
		}
	}
	return out
}

func unmount(path string) error {
	if err := syscall.Unmount(path, syscall.MNT_DETACH); err != nil {
		return err
	}
	return os.Remove(path)
}
