// Package validate checks what reaches the agent from outside (the topolane-cni plugin's
// socket, the runtime, the API server) before anything acts on it: one function per field. A
// value that passes cannot make a path built from it leave its directory.
package validate

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	k8svalidation "k8s.io/apimachinery/pkg/util/validation"
)

// cniName is the CNI spec's charset for container ids and network names.
var cniName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`)

// MaxContainerID keeps a journal file name (<id>_<ifname>.json, and its temporary
// .<name>.tmpNNNNNNNNNN while it is written) within the 255 bytes of a file name.
const MaxContainerID = 200

// ifNameMax is the kernel's IFNAMSIZ less the terminating NUL.
const ifNameMax = 15

var uuidShape = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// ContainerID checks CNI_CONTAINERID by the CNI spec's charset; it names journal files.
func ContainerID(id string) error {
	switch {
	case id == "":
		return errors.New("CNI_CONTAINERID is empty")
	case len(id) > MaxContainerID:
		return fmt.Errorf("CNI_CONTAINERID is %d bytes long: topolane takes at most %d", len(id), MaxContainerID)
	case !cniName.MatchString(id):
		return fmt.Errorf("CNI_CONTAINERID %q has characters outside the CNI spec's [a-zA-Z0-9][a-zA-Z0-9_.-]*", id)
	}
	return nil
}

// IfName checks CNI_IFNAME by the kernel's rules (dev_valid_name): 1 to 15 bytes, not "." or
// "..", no "/", ":" or whitespace; topolane also refuses NUL and other control characters.
func IfName(name string) error {
	switch {
	case name == "":
		return errors.New("CNI_IFNAME is empty")
	case len(name) > ifNameMax:
		return fmt.Errorf("CNI_IFNAME %q is %d bytes long: the kernel takes at most %d", name, len(name), ifNameMax)
	case name == "." || name == "..":
		return fmt.Errorf("CNI_IFNAME %q is not a name the kernel takes", name)
	}
	if i := strings.IndexFunc(name, func(r rune) bool {
		return r == '/' || r == ':' || unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar
	}); i >= 0 {
		return fmt.Errorf("CNI_IFNAME %q has %q at byte %d: the kernel refuses \"/\", \":\" and whitespace in interface names", name, name[i:i+1], i)
	}
	return nil
}

// PodNamespace checks K8S_POD_NAMESPACE: a Kubernetes namespace is a DNS-1123 label.
func PodNamespace(ns string) error {
	if ns == "" {
		return errors.New("CNI_ARGS carries no K8S_POD_NAMESPACE: topolane serves Kubernetes pods only")
	}
	if errs := k8svalidation.IsDNS1123Label(ns); len(errs) > 0 {
		return fmt.Errorf("K8S_POD_NAMESPACE %q is not a Kubernetes namespace: %s", ns, strings.Join(errs, "; "))
	}
	return nil
}

// PodName checks K8S_POD_NAME: a pod's name is a DNS-1123 subdomain.
func PodName(name string) error {
	if name == "" {
		return errors.New("CNI_ARGS carries no K8S_POD_NAME: topolane serves Kubernetes pods only")
	}
	if errs := k8svalidation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Errorf("K8S_POD_NAME %q is not a Kubernetes pod name: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

// PodUID checks a pod's UID (the API server's, a UUID); it names the pod's directory under
// --accel-dir.
func PodUID(uid string) error {
	if !uuidShape.MatchString(uid) {
		return fmt.Errorf("pod UID %q is not a UUID as the API server gives: topolane will not name a directory after it", uid)
	}
	return nil
}

// NetworkName checks a network config's "name" by the CNI spec's charset.
func NetworkName(name string) error {
	if !cniName.MatchString(name) {
		return fmt.Errorf("the network config's name %q has characters outside the CNI spec's [a-zA-Z0-9][a-zA-Z0-9_.-]*", name)
	}
	return nil
}

// PluginType checks a plugin's "type" (the network's, its IPAM's): the name of a binary looked
// up in CNI_PATH, never a path.
func PluginType(field, typ string) error {
	if !cniName.MatchString(typ) || typ == "." || typ == ".." {
		return fmt.Errorf("the network config's %s %q is not a plugin name: a plugin is a file name in CNI_PATH, without \"/\"", field, typ)
	}
	return nil
}

// NetConf checks the network config's name and the plugin names in it. An IPAM section
// without a type is left for the attacher to explain.
func NetConf(data []byte) error {
	var conf struct {
		Name string `json:"name"`
		Type string `json:"type"`
		IPAM struct {
			Type string `json:"type"`
		} `json:"ipam"`
	}
	if err := json.Unmarshal(data, &conf); err != nil {
		return fmt.Errorf("the network config is not JSON: %w", err)
	}
	if err := NetworkName(conf.Name); err != nil {
		return err
	}
	if err := PluginType("type", conf.Type); err != nil {
		return err
	}
	if conf.IPAM.Type == "" {
		return nil
	}
	return PluginType("ipam type", conf.IPAM.Type)
}

// RDMADevice checks an RDMA device's name (mlx5_0), which names a sysfs directory.
func RDMADevice(name string) error {
	if name == "" || len(name) > 64 || name == "." || name == ".." ||
		strings.ContainsFunc(name, func(r rune) bool { return r == '/' || unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return fmt.Errorf("%q is not an RDMA device name", name)
	}
	return nil
}
