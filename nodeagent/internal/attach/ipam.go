package attach

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/containernetworking/cni/pkg/invoke"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// parseNetConf reads the network's name and its IPAM plugin's from the network config.
func parseNetConf(netconf []byte) (name, ipamType string, err error) {
	var conf struct {
		Name string `json:"name"`
		IPAM struct {
			Type string `json:"type"`
		} `json:"ipam"`
	}
	if err := json.Unmarshal(netconf, &conf); err != nil {
		return "", "", fmt.Errorf("network config is not JSON: %w", err)
	}
	if conf.IPAM.Type == "" {
		return "", "", fmt.Errorf(`network config has no "ipam" with a "type": name an IPAM plugin, e.g. {"type": "host-local", "subnet": "10.56.0.0/16"}`)
	}
	return conf.Name, conf.IPAM.Type, nil
}

// ipamResult reads the addresses the IPAM plugin gave.
func ipamResult(r *Record) (*current.Result, error) {
	var res current.Result
	if err := json.Unmarshal(r.IPAMResult, &res); err != nil || len(res.IPs) == 0 {
		return nil, fmt.Errorf("the journal holds no IPAM result for %s/%s", r.ContainerID, r.IfName)
	}
	return &res, nil
}

// ipamArgs are the CNI arguments the IPAM plugin is run with: the attachment's own.
func ipamArgs(command string, r *Record) *invoke.Args {
	return &invoke.Args{Command: command, ContainerID: r.ContainerID, NetNS: r.Netns, IfName: r.IfName,
		PluginArgsStr: "IgnoreUnknown=1;K8S_POD_NAMESPACE=" + podNamespace(r.Pod) + ";K8S_POD_NAME=" + podName(r.Pod), Path: strings.Join(r.CNIPath, ":")}
}

// ipamAdd asks the IPAM plugin for the attachment's addresses.
func ipamAdd(ctx context.Context, r *Record) (*current.Result, error) {
	path, err := invoke.FindInPath(r.IPAMType, r.CNIPath)
	if err != nil {
		return nil, fmt.Errorf("IPAM plugin %q: %w (CNI_PATH %s)", r.IPAMType, err, strings.Join(r.CNIPath, ":"))
	}
	res, err := invoke.ExecPluginWithResult(ctx, path, r.NetConf, ipamArgs("ADD", r), nil)
	if err != nil {
		return nil, fmt.Errorf("IPAM plugin %s: %w", r.IPAMType, err)
	}
	cur, err := current.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("IPAM plugin %s answered: %w", r.IPAMType, err)
	}
	if len(cur.IPs) == 0 {
		return nil, fmt.Errorf("IPAM plugin %s gave no address", r.IPAMType)
	}
	return cur, nil
}

// ipamDel releases the attachment's addresses; releasing twice is harmless (CNI spec).
func ipamDel(ctx context.Context, r *Record) error {
	path, err := invoke.FindInPath(r.IPAMType, r.CNIPath)
	if err != nil {
		return fmt.Errorf("IPAM plugin %q: %w (CNI_PATH %s)", r.IPAMType, err, strings.Join(r.CNIPath, ":"))
	}
	if err := invoke.ExecPluginWithoutResult(ctx, path, r.NetConf, ipamArgs("DEL", r), nil); err != nil {
		return fmt.Errorf("IPAM plugin %s DEL: %w", r.IPAMType, err)
	}
	return nil
}

func podNamespace(key string) string { ns, _, _ := strings.Cut(key, "/"); return ns }
func podName(key string) string      { _, n, _ := strings.Cut(key, "/"); return n }
