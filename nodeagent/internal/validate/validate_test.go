package validate

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestFields(t *testing.T) {
	long := strings.Repeat("a", MaxContainerID+1)
	tests := []struct {
		name  string
		check func(string) error
		value string
		want  string // part of the error; "" for none
	}{
		{"container id", ContainerID, "0123abcdef", ""},
		{"container id with _ . -", ContainerID, "a_b.c-d", ""},
		{"empty container id", ContainerID, "", "empty"},
		{"container id ../", ContainerID, "../../etc/passwd", "characters outside"},
		{"container id with /", ContainerID, "abc/def", "characters outside"},
		{"container id starting with .", ContainerID, ".hidden", "characters outside"},
		{"container id with NUL", ContainerID, "abc\x00def", "characters outside"},
		{"long container id", ContainerID, long, "bytes long"},
		{"ifname", IfName, "net1", ""},
		{"ifname of 15", IfName, "abcdefghijklmno", ""},
		{"ifname of 16", IfName, "abcdefghijklmnop", "at most 15"},
		{"empty ifname", IfName, "", "empty"},
		{"ifname .", IfName, ".", "not a name"},
		{"ifname ..", IfName, "..", "not a name"},
		{"ifname ../x", IfName, "../x", `"/"`},
		{"ifname with :", IfName, "eth0:1", `":"`},
		{"ifname with space", IfName, "net 1", "whitespace"},
		{"ifname with NUL", IfName, "net\x001", "byte 3"},
		{"ifname with a newline", IfName, "net\n", "byte 3"},
		{"namespace", PodNamespace, "train", ""},
		{"empty namespace", PodNamespace, "", "K8S_POD_NAMESPACE"},
		{"namespace ..", PodNamespace, "..", "not a Kubernetes namespace"},
		{"namespace with /", PodNamespace, "a/b", "not a Kubernetes namespace"},
		{"namespace of 64", PodNamespace, strings.Repeat("a", 64), "not a Kubernetes namespace"},
		{"pod name", PodName, "worker-0.a", ""},
		{"empty pod name", PodName, "", "K8S_POD_NAME"},
		{"pod name ../x", PodName, "../x", "not a Kubernetes pod name"},
		{"pod name upper case", PodName, "Worker", "not a Kubernetes pod name"},
		{"pod name with NUL", PodName, "a\x00b", "not a Kubernetes pod name"},
		{"pod UID", PodUID, "0c0f3b3e-6a8a-4c3e-9d4e-2f4a5b6c7d8e", ""},
		{"pod UID ../", PodUID, "../../etc", "not a UUID"},
		{"pod UID absolute", PodUID, "/etc/passwd", "not a UUID"},
		{"pod UID empty", PodUID, "", "not a UUID"},
		{"pod UID with a suffix", PodUID, "0c0f3b3e-6a8a-4c3e-9d4e-2f4a5b6c7d8e/..", "not a UUID"},
		{"RDMA device", RDMADevice, "mlx5_0", ""},
		{"RDMA device ..", RDMADevice, "..", "not an RDMA device"},
		{"RDMA device with /", RDMADevice, "mlx5_0/../../x", "not an RDMA device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expect(t, tt.check(tt.value), tt.want) })
	}
}

func TestNetConf(t *testing.T) {
	tests := []struct{ conf, want string }{
		{`{"name":"rdma","type":"topolane-cni","ipam":{"type":"host-local"}}`, ""},
		{`{"name":"rdma","type":"topolane-cni"}`, ""},
		{`{"name":"rdma","type":"topolane-cni","ipam":{"type":"../../bin/sh"}}`, "ipam type"},
		{`{"name":"rdma","type":"topolane-cni","ipam":{"type":"/bin/sh"}}`, "ipam type"},
		{`{"name":"rdma","type":"topolane-cni","ipam":{"type":".."}}`, "ipam type"},
		{`{"name":"rdma","type":"../topolane-cni"}`, `type "../topolane-cni"`},
		{`{"name":"../x","type":"topolane-cni"}`, "name"},
		{`{"name":"","type":"topolane-cni"}`, "name"},
		{`{`, "not JSON"},
	}
	for _, tt := range tests {
		expect(t, NetConf([]byte(tt.conf)), tt.want)
	}
}

// netnsFixture is a runtime's netns directory with a namespace file, a link to it, and a
// directory reached through a symbolic link.
func netnsFixture(t *testing.T) (dir, alias string) {
	root := t.TempDir()
	dir = filepath.Join(root, "netns")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"cni-1", "self"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	alias = filepath.Join(root, "varrun")
	for link, target := range map[string]string{alias: dir, filepath.Join(dir, "link"): "/proc/1/ns/net", filepath.Join(root, "elsewhere"): "/etc"} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	return dir, alias
}

func TestNetns(t *testing.T) {
	dir, alias := netnsFixture(t)
	p := Paths{NetnsDirs: []string{alias}, Self: filepath.Join(dir, "self")}
	tests := []struct{ path, want string }{
		{filepath.Join(dir, "cni-1"), ""},
		{filepath.Join(alias, "cni-1"), ""},
		{filepath.Join(dir, "gone"), ""}, // a DEL after the namespace went
		{"/proc/4242/ns/net", ""},
		{filepath.Join(dir, "link"), "symbolic link"},
		{filepath.Join(dir, "self"), "host's own network namespace"},
		{dir + "/../netns/cni-1", "not a clean path"},
		{dir + "/./cni-1", "not a clean path"},
		{dir + "/../../../etc/passwd", "not a clean path"},
		{dir + "//cni-1", "not a clean path"},
		{"netns/cni-1", "not an absolute path"},
		{"/etc/passwd", "neither in the runtime's netns directories"},
		{filepath.Join(filepath.Dir(dir), "elsewhere", "passwd"), "neither in"},
		{filepath.Join(dir, "sub", "cni-1"), "neither in"},
		{"/proc/self/ns/net", "neither in"},
		{"/proc/1/ns/mnt", "neither in"},
		{"/proc/1/../1/ns/net", "not a clean path"},
		{filepath.Join(dir, "cni\x00-1"), "NUL"},
		{"/" + strings.Repeat("a", 5000), "PATH_MAX"},
		{"", "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) { expect(t, p.Netns(tt.path), tt.want) })
	}
}

// TestNetnsOwn: the agent's own namespace, by its /proc path, is refused.
func TestNetnsOwn(t *testing.T) {
	own := "/proc/" + strconv.Itoa(os.Getpid()) + "/ns/net"
	expect(t, Paths{}.Netns(own), "host's own network namespace")
}

func TestCNIPath(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(root, "opt", "cni", "bin")
	if err := os.MkdirAll(filepath.Join(bin, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "bin-link")
	escape := filepath.Join(bin, "escape")
	for l, target := range map[string]string{link: bin, escape: "/usr/bin"} {
		if err := os.Symlink(target, l); err != nil {
			t.Fatal(err)
		}
	}
	p := Paths{CNIBinDirs: []string{link}}
	tests := []struct {
		dirs []string
		want string
	}{
		{[]string{bin}, ""},
		{[]string{link, filepath.Join(bin, "sub")}, ""},
		{nil, ""},
		{[]string{bin, "/usr/bin"}, `"/usr/bin" is not in the CNI bin directories`},
		{[]string{escape}, "not in the CNI bin directories"},
		{[]string{bin + "/../../../usr/bin"}, "not a clean path"},
		{[]string{bin + "-evil"}, "not in the CNI bin directories"},
		{[]string{"bin"}, "not an absolute path"},
		{[]string{""}, "empty"},
		{[]string{bin + "\x00"}, "NUL"},
	}
	for _, tt := range tests {
		expect(t, p.CNIPath(tt.dirs), tt.want)
	}
}

func expect(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("unexpected error: %v", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("error %v, want one saying %q", err, want)
	}
}
