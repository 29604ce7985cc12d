// Command topolane-cni is topolane's CNI plugin (spec 1.0 and 1.1: ADD, DEL, CHECK, GC, STATUS,
// VERSION). It is a thin client: it reads the call and hands it to topolane-agent over the
// node's unix socket, which decides, attaches and journals. It works alone (as a Multus
// delegate) and in a chain, where it adds its interface to the previous result.
package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/topolane/topolane/nodeagent/internal/attach"
	"github.com/topolane/topolane/nodeagent/internal/cniserver"
)

// netConf is the network config: CNI's, plus where the agent listens.
type netConf struct {
	types.PluginConf
	Socket string `json:"socket,omitempty"`
}

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck, GC: cmdGC, Status: cmdStatus},
		version.All, "topolane: gives GPU pods the PF or VF nearest their GPUs")
}

// timeout bounds a call to the agent; the runtime's own deadline is usually longer.
const timeout = 2 * time.Minute

func load(data []byte) (*netConf, error) {
	conf := &netConf{}
	if err := json.Unmarshal(data, conf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "the network config is not JSON", err.Error())
	}
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "the network config's prevResult cannot be read", err.Error())
	}
	if conf.Socket == "" {
		conf.Socket = cniserver.DefaultSocket
	}
	return conf, nil
}

// request turns the CNI call into the agent's request. CNI_ARGS is read loosely: runtimes pass
// more than the pod's name, and IgnoreUnknown is not always set.
func request(args *skel.CmdArgs) attach.Request {
	q := attach.Request{ContainerID: args.ContainerID, Netns: args.Netns, IfName: args.IfName,
		NetConf: args.StdinData, CNIPath: filepath.SplitList(args.Path)}
	for _, kv := range strings.Split(args.Args, ";") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "K8S_POD_NAMESPACE":
			q.PodNamespace = v
		case "K8S_POD_NAME":
			q.PodName = v
		}
	}
	return q
}

func call(command string, args *skel.CmdArgs, valid [][2]string) (*netConf, cniserver.Reply, error) {
	conf, err := load(args.StdinData)
	if err != nil {
		return nil, cniserver.Reply{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	reply, err := cniserver.Send(ctx, conf.Socket, cniserver.Call{Command: command, Request: request(args), Valid: valid})
	if err != nil {
		return conf, reply, types.NewError(types.ErrTryAgainLater, err.Error(), "")
	}
	if reply.Code != 0 {
		return conf, reply, &types.Error{Code: reply.Code, Msg: reply.Msg}
	}
	return conf, reply, nil
}

func cmdAdd(args *skel.CmdArgs) error {
	conf, reply, err := call("ADD", args, nil)
	if err != nil {
		return err
	}
	if reply.Result == nil {
		return types.NewError(types.ErrInternal, "topolane-agent answered ADD without a result", "")
	}
	res, err := chain(conf, reply.Result)
	if err != nil {
		return err
	}
	return types.PrintResult(res, conf.CNIVersion)
}

// chain appends this plugin's interface, addresses and routes to the previous plugin's result.
func chain(conf *netConf, ours *current.Result) (*current.Result, error) {
	if conf.PrevResult == nil {
		return ours, nil
	}
	prev, err := current.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "the previous result cannot be converted", err.Error())
	}
	offset := len(prev.Interfaces)
	prev.Interfaces = append(prev.Interfaces, ours.Interfaces...)
	for _, ip := range ours.IPs {
		c := *ip
		if c.Interface != nil {
			i := *c.Interface + offset
			c.Interface = &i
		}
		prev.IPs = append(prev.IPs, &c)
	}
	prev.Routes = append(prev.Routes, ours.Routes...)
	return prev, nil
}

func cmdDel(args *skel.CmdArgs) error {
	_, _, err := call("DEL", args, nil)
	return err
}

func cmdCheck(args *skel.CmdArgs) error {
	_, _, err := call("CHECK", args, nil)
	return err
}

func cmdGC(args *skel.CmdArgs) error {
	conf, err := load(args.StdinData)
	if err != nil {
		return err
	}
	var valid [][2]string
	for _, a := range conf.ValidAttachments {
		valid = append(valid, [2]string{a.ContainerID, a.IfName})
	}
	_, _, err = call("GC", args, valid)
	return err
}

func cmdStatus(args *skel.CmdArgs) error {
	_, _, err := call("STATUS", args, nil)
	return err
}
