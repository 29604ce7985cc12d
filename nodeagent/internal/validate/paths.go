package validate

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
)

// Defaults of the agent's --netns-dirs and --cni-bin-dirs.
var (
	DefaultNetnsDirs  = []string{"/var/run/netns", "/run/netns"}
	DefaultCNIBinDirs = []string{"/opt/cni/bin"}
)

// procNetns is a process's network namespace, as CRI-O and some runtimes pass it.
var procNetns = regexp.MustCompile(`^/proc/[1-9][0-9]{0,9}/ns/net$`)

// maxPath is the kernel's PATH_MAX.
const maxPath = 4096

// Paths says where paths that arrive on the socket may point.
type Paths struct {
	NetnsDirs  []string // the runtime's network namespaces (bind mounts directly in one of these)
	CNIBinDirs []string // CNI plugins; every CNI_PATH entry must be one of these or below
	// Self is the agent's own network namespace (the host's), never a pod's; empty means
	// /proc/self/ns/net.
	Self string
}

// Netns checks CNI_NETNS: a clean absolute path, a file directly in one of the runtime's netns
// directories (symbolic links in the directory's path resolved, the file itself not a link) or
// /proc/<pid>/ns/net, and not the agent's own namespace. A namespace that is already gone
// passes (DEL must succeed then).
func (p Paths) Netns(path string) error {
	if err := cleanAbs("CNI_NETNS", path); err != nil {
		return err
	}
	if !procNetns.MatchString(path) {
		if err := p.inNetnsDir(path); err != nil {
			return err
		}
	}
	return p.notSelf(path)
}

func (p Paths) inNetnsDir(path string) error {
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err == nil {
		for _, allowed := range p.NetnsDirs {
			if a, err := filepath.EvalSymlinks(allowed); err == nil && a == dir {
				return notLink("CNI_NETNS", path)
			}
		}
	}
	return fmt.Errorf("CNI_NETNS %q is neither in the runtime's netns directories (%s) nor /proc/<pid>/ns/net: if your runtime keeps namespaces elsewhere, add that directory to the agent's --netns-dirs",
		path, strings.Join(p.NetnsDirs, ", "))
}

func notLink(field, path string) error {
	fi, err := os.Lstat(path)
	if err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%s %q is a symbolic link: topolane takes the runtime's own path", field, path)
	}
	return nil
}

// notSelf refuses the agent's own network namespace: the host's devices are there.
func (p Paths) notSelf(path string) error {
	self := p.Self
	if self == "" {
		self = "/proc/self/ns/net"
	}
	var ns, own syscall.Stat_t
	if syscall.Stat(path, &ns) != nil || syscall.Stat(self, &own) != nil {
		return nil // gone (a DEL after the pod's end), or nothing to compare with
	}
	if ns.Dev == own.Dev && ns.Ino == own.Ino {
		return fmt.Errorf("CNI_NETNS %q is the host's own network namespace: topolane moves devices into pods only", path)
	}
	return nil
}

// CNIPath checks every CNI_PATH entry: a clean absolute path at or below one of the CNI bin
// directories, symbolic links resolved. The IPAM plugin is looked up there.
func (p Paths) CNIPath(dirs []string) error {
	for _, d := range dirs {
		if err := cleanAbs("CNI_PATH entry", d); err != nil {
			return err
		}
		if !p.inBinDirs(d) {
			return fmt.Errorf("CNI_PATH entry %q is not in the CNI bin directories (%s): topolane runs plugins from those only; if your runtime keeps them elsewhere, add that directory to the agent's --cni-bin-dirs",
				d, strings.Join(p.CNIBinDirs, ", "))
		}
	}
	return nil
}

func (p Paths) inBinDirs(dir string) bool {
	resolved := resolve(dir)
	for _, allowed := range p.CNIBinDirs {
		if Within(resolve(allowed), resolved) {
			return true
		}
	}
	return false
}

// Within says whether path is base or below it; both clean and absolute.
func Within(base, path string) bool {
	return path == base || strings.HasPrefix(path, strings.TrimSuffix(base, "/")+"/")
}

// resolve resolves the symbolic links of path's longest existing prefix.
func resolve(path string) string {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		return r
	}
	parent := filepath.Dir(path)
	if parent == path {
		return path
	}
	return filepath.Join(resolve(parent), filepath.Base(path))
}

// Resolve is resolve for callers outside: path with the symbolic links of its longest
// existing prefix resolved.
func Resolve(path string) string { return resolve(filepath.Clean(path)) }

// cleanAbs refuses what is not a clean absolute path: relative, "..", "//", ".", a trailing
// "/", NUL, longer than PATH_MAX.
func cleanAbs(field, path string) error {
	switch {
	case path == "":
		return fmt.Errorf("%s is empty", field)
	case len(path) > maxPath:
		return fmt.Errorf("%s is %d bytes long: longer than the kernel's PATH_MAX", field, len(path))
	case strings.ContainsRune(path, 0):
		return fmt.Errorf("%s %q has a NUL byte", field, path)
	case !filepath.IsAbs(path):
		return fmt.Errorf("%s %q is not an absolute path", field, path)
	case filepath.Clean(path) != path:
		return fmt.Errorf("%s %q is not a clean path (it has \"..\", \".\", \"//\" or a trailing \"/\")", field, path)
	}
	return nil
}
