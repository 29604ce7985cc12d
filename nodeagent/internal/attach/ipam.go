package attach

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"

	"github.com/containernetworking/cni/pkg/invoke"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/topolane/topolane/nodeagent/internal/shaping"
)

// netConf is what the agent reads of the network config.
type netConf struct {
	Name string `json:"name"`
	IPAM struct {
		Type string `json:"type"`
	} `json:"ipam"`
	RuntimeConfig struct {
		Bandwidth *shaping.RuntimeBandwidth `json:"bandwidth"`
	} `json:"runtimeConfig"`
	Bandwidth *shaping.RuntimeBandwidth `json:"-"`
}

// parseNetConf reads the network's name, its IPAM plugin's and the runtime's bandwidth
// capability, if the network asks for it.
func parseNetConf(data []byte) (netConf, error) {
	var conf netConf
	if err := json.Unmarshal(data, &conf); err != nil {
		return conf, fmt.Errorf("network config is not JSON: %w", err)
	}
	if conf.IPAM.Type == "" {
		return conf, fmt.Errorf(`network config has no "ipam" with a "type": name an IPAM plugin, e.g. {"type": "host-local", "subnet": "10.56.0.0/16"}`)
	}
	conf.Bandwidth = conf.RuntimeConfig.Bandwidth
	return conf, nil
}

// ipamResult reads the addresses the IPAM plugin gave the device.
func ipamResult(d *Device) (*current.Result, error) {
	var res current.Result
	if err := json.Unmarshal(d.IPAMResult, &res); err != nil || len(res.IPs) == 0 {
		return nil, fmt.Errorf("the journal holds no IPAM result for %s", d.IfName)
	}
	return &res, nil
}

func marshalResult(res *current.Result) (json.RawMessage, error) { return json.Marshal(res) }

// gatewayFor is the gateway of the address whose subnet holds dst's gateway-less route: what
// the IPAM plugin meant by a route without one.
func gatewayFor(res *current.Result, dst *net.IPNet) net.IP {
	for _, ip := range res.IPs {
		if ip.Gateway != nil && (dst.IP.To4() == nil) == (ip.Address.IP.To4() == nil) {
			return ip.Gateway
		}
	}
	return nil
}

// ipamArgs are the CNI arguments the IPAM plugin is run with: the attachment's own, under the
// device's name (each device has its own addresses), with the runtime's CNI_ARGS (and
// IgnoreUnknown, which runtimes set and plugins such as host-local need for the pod's name).
func ipamArgs(command string, r *Record, d *Device) *invoke.Args {
	args := r.CNIArgs
	if args == "" {
		args = "K8S_POD_NAMESPACE=" + podNamespace(r.Pod) + ";K8S_POD_NAME=" + podName(r.Pod)
	}
	if !strings.Contains(strings.ToLower(args), "ignoreunknown=") {
		args = "IgnoreUnknown=1;" + args
	}
	return &invoke.Args{Command: command, ContainerID: r.ContainerID, NetNS: r.Netns, IfName: d.IfName,
		PluginArgsStr: args, Path: strings.Join(r.CNIPath, ":")}
}

// ipamAdd asks the IPAM plugin for the device's addresses.
func ipamAdd(ctx context.Context, r *Record, d *Device) (*current.Result, error) {
	path, err := invoke.FindInPath(r.IPAMType, r.CNIPath)
	if err != nil {
		return nil, fmt.Errorf("IPAM plugin %q: %w (CNI_PATH %s)", r.IPAMType, err, strings.Join(r.CNIPath, ":"))
	}
	res, err := invoke.ExecPluginWithResult(ctx, path, r.NetConf, ipamArgs("ADD", r, d), nil)
	if err != nil {
		return nil, fmt.Errorf("IPAM plugin %s for %s: %w", r.IPAMType, d.IfName, err)
	}
	cur, err := current.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("IPAM plugin %s answered: %w", r.IPAMType, err)
	}
	if len(cur.IPs) == 0 {
		return nil, fmt.Errorf("IPAM plugin %s gave %s no address", r.IPAMType, d.IfName)
	}
	return cur, nil
}

// ipamDel releases the device's addresses; releasing twice is harmless (CNI spec).
func ipamDel(ctx context.Context, r *Record, d *Device) error {
	path, err := invoke.FindInPath(r.IPAMType, r.CNIPath)
	if err != nil {
		return fmt.Errorf("IPAM plugin %q: %w (CNI_PATH %s)", r.IPAMType, err, strings.Join(r.CNIPath, ":"))
	}
	if err := invoke.ExecPluginWithoutResult(ctx, path, r.NetConf, ipamArgs("DEL", r, d), nil); err != nil {
		return fmt.Errorf("IPAM plugin %s DEL of %s: %w", r.IPAMType, d.IfName, err)
	}
	return nil
}

func podNamespace(key string) string { ns, _, _ := strings.Cut(key, "/"); return ns }
func podName(key string) string      { _, n, _ := strings.Cut(key, "/"); return n }
