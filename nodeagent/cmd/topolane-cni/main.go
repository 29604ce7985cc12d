// Command topolane-cni is topolane's CNI plugin (spec 1.0 and 1.1: ADD, DEL, CHECK, GC, STATUS,
// VERSION). It is a thin client: it reads the call and hands it to topolane-agent over the
// node's unix socket, which decides, attaches and journals. It works alone (as a Multus
// delegate) and in a chain, where it adds its interface to the previous result.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
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

// socketDir is the agent's directory: a network config (which a namespace's user may write,
// as a Multus NetworkAttachmentDefinition) cannot point the plugin at a socket elsewhere.
// Tests link their own with -ldflags -X.
var socketDir = cniserver.SocketDir

func load(data []byte) (*netConf, error) {
	conf := &netConf{}
	if err := json.Unmarshal(data, conf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "the network config is not JSON", err.Error())
	}
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "the network config's prevResult cannot be read", err.Error())
	}
	if conf.Socket == "" {
		conf.Socket = filepath.Join(socketDir, filepath.Base(cniserver.DefaultSocket))
	}
	if err := checkSocket(conf.Socket); err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	return conf, nil
}

// checkSocket accepts a socket directly in the agent's directory, by its path or through
// symbolic links of the directory (/var/run is often /run).
func checkSocket(path string) error {
	refused := fmt.Errorf("the network config's socket %q is not in topolane-agent's directory %s/: remove \"socket\" from the config, or name a socket in that directory", path, socketDir)
	if !filepath.IsAbs(path) || filepath.Clean(path) != path || strings.ContainsRune(path, 0) {
		return refused
	}
	dir := filepath.Dir(path)
	if dir == socketDir {
		return nil
	}
	resolved, err := filepath.EvalSymlinks(dir)
	want, werr := filepath.EvalSymlinks(socketDir)
	if err != nil || werr != nil || resolved != want {
		return refused
	}
	return nil
}

// request turns the CNI call into the agent's request. CNI_ARGS is read loosely: runtimes pass
// more than the pod's name, and IgnoreUnknown is not always set.
func request(args *skel.CmdArgs) attach.Request {
	q := attach.Request{ContainerID: args.ContainerID, Netns: args.Netns, IfName: args.IfName,
		NetConf: args.StdinData, CNIPath: filepath.SplitList(args.Path), Args: args.Args}
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
	reply, err := send(conf, command, args, valid)
	if err != nil {
		return conf, reply, types.NewError(types.ErrTryAgainLater, err.Error(), "")
	}
	return conf, reply, replyErr(reply)
}

// send hands the call to the agent; err is for the transport only.
func send(conf *netConf, command string, args *skel.CmdArgs, valid [][2]string) (cniserver.Reply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return cniserver.Send(ctx, conf.Socket, cniserver.Call{Command: command, Request: request(args), Valid: valid})
}

func replyErr(reply cniserver.Reply) error {
	if reply.Code != 0 {
		return &types.Error{Code: reply.Code, Msg: reply.Msg}
	}
	return nil
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

// cmdDel succeeds when the agent's socket does not exist (the agent is not running, or never
// ran here): nothing can be asked, and the agent returns devices of pods that are gone when it
// starts. A socket that exists but does not answer is an error the runtime retries.
func cmdDel(args *skel.CmdArgs) error {
	conf, err := load(args.StdinData)
	if err != nil {
		return err
	}
	if _, err := os.Stat(conf.Socket); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "topolane-cni: DEL of %s/%s: topolane-agent's socket %s does not exist, so there is no agent to ask; "+
			"the agent returns the device to the host when it starts (reconcile)\n", args.ContainerID, args.IfName, conf.Socket)
		return nil
	}
	_, _, err = call("DEL", args, nil)
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

// cmdStatus answers 50 (the plugin cannot serve ADDs, CNI 1.1) when the agent is not ready or
// not answering at all.
func cmdStatus(args *skel.CmdArgs) error {
	conf, err := load(args.StdinData)
	if err != nil {
		return err
	}
	reply, err := send(conf, "STATUS", args, nil)
	if err != nil {
		return types.NewError(types.ErrPluginNotAvailable, err.Error(), "")
	}
	return replyErr(reply)
}
