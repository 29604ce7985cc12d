// Package attach gives a pod the devices it was placed for, one per rail of its GPUs, and takes
// them back. ADD decides the devices (the extender's reservation, the GPUs kubelet gave), asks
// the IPAM plugin for each device's addresses, moves each into the pod's network namespace under
// its name, configures and shapes it and writes the pod's acceleration config; every phase is
// journaled before it is taken. DEL and the reconcile undo from the journal alone, never
// deciding again.
package attach

import (
	"context"
	"errors"
	"fmt"
	"sync"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/topolane/topolane/nodeagent/internal/netbind"
	"github.com/topolane/topolane/topology"
)

// Attacher serves ADD, DEL, CHECK and GC one at a time: pods arriving together on a node must
// not be handed the same device.
type Attacher struct {
	Kernel netbind.Kernel
	// Netdevs finds a PCI function's netdev in the host namespace as it is now.
	Netdevs Netdevs
	// HostUse says which netdevs the host keeps for itself now; nil checks nothing beyond the
	// topology's exclusions.
	HostUse  HostUse
	Journal  Journal
	AccelDir string                // acceleration configs: <AccelDir>/<pod UID>/accel.{env,json}
	Topology func() *topology.Node // the node as last discovered; nil until discovery ran
	Pods     Pods
	GPUs     GPUs
	// BootID reads the kernel's boot id; nil reads /proc/sys/kernel/random/boot_id.
	BootID   func() (string, error)
	Reporter Reporter // may be nil
	// AfterStep is a test hook called after each step of ADD ("add") and of undoing ("del"), for
	// each device (its index; -1 for a step of the whole attachment).
	AfterStep func(op string, s Step, device int)

	mu sync.Mutex
}

// Netdevs finds devices by PCI address, never by a remembered name: udev, a temporary name or a
// device that was in a pod when discovery ran all change names.
type Netdevs interface {
	// NetDev is the netdev of the PCI function in the host namespace now, or an error saying why
	// there is none (in another namespace, bound to vfio-pci, no driver).
	NetDev(pciAddress string) (string, error)
}

// HostUse says what the host uses its links for.
type HostUse interface {
	// Kept returns, for each of the netdevs the host keeps for itself (an address, the default
	// route, a bond or bridge port, the Node's IP), why.
	Kept(netdevs []string) (map[string]string, error)
}

// Reporter tells the cluster what the node did: pod annotation, event, NodeTopology status. It
// is called outside the attacher's lock.
type Reporter interface {
	Attached(ctx context.Context, r *Record)
	Detached(ctx context.Context, r *Record)
	// Warn records a warning event on the pod.
	Warn(ctx context.Context, r *Record, reason, message string)
}

// Request is one CNI call, as the topolane-cni binary hands it over.
type Request struct {
	ContainerID  string   `json:"containerID"`
	Netns        string   `json:"netns"`
	IfName       string   `json:"ifName"`
	PodNamespace string   `json:"podNamespace"`
	PodName      string   `json:"podName"`
	NetConf      []byte   `json:"netConf"`
	CNIPath      []string `json:"cniPath"`
	// Args is the runtime's CNI_ARGS, handed on to the IPAM plugin.
	Args string `json:"args,omitempty"`
}

func (q Request) key() string { return q.PodNamespace + "/" + q.PodName }

func (q Request) validate(needNetns bool) error {
	switch {
	case q.ContainerID == "":
		return fmt.Errorf("CNI_CONTAINERID is empty")
	case q.IfName == "":
		return fmt.Errorf("CNI_IFNAME is empty")
	case len(q.IfName) > 15:
		return fmt.Errorf("CNI_IFNAME %q is longer than the kernel's 15 characters", q.IfName)
	case needNetns && q.Netns == "":
		return fmt.Errorf("CNI_NETNS is empty")
	case q.PodNamespace == "" || q.PodName == "":
		return fmt.Errorf("CNI_ARGS carries no K8S_POD_NAMESPACE and K8S_POD_NAME: topolane serves Kubernetes pods only")
	}
	return nil
}

func (a *Attacher) after(op string, s Step, device int) {
	if a.AfterStep != nil {
		a.AfterStep(op, s, device)
	}
}

// Add attaches the devices and returns the CNI result. A repeated ADD of a finished attachment
// returns the same result; one that was interrupted is undone and done again.
func (a *Attacher) Add(ctx context.Context, q Request) (*current.Result, error) {
	if err := q.validate(true); err != nil {
		return nil, coded(CodeEnv, err)
	}
	r, fresh, err := a.add(ctx, q)
	if err != nil {
		return nil, err
	}
	if fresh && a.Reporter != nil {
		a.Reporter.Attached(ctx, r)
	}
	return a.result(r)
}

// add does the work of Add under the lock; fresh says whether it attached anything.
func (a *Attacher) add(ctx context.Context, q Request) (r *Record, fresh bool, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r, ok, err := a.Journal.Load(q.ContainerID, q.IfName); err != nil {
		return nil, false, err
	} else if ok {
		if r.Step == StepDone && !r.Deleting {
			return r, false, nil
		}
		if err := a.undo(ctx, r); err != nil {
			return nil, false, fmt.Errorf("an earlier ADD of this container was interrupted and could not be undone: %w", err)
		}
	}
	r, err = a.plan(ctx, q)
	if err != nil {
		return nil, false, err
	}
	if err := a.do(ctx, r); err != nil {
		if uerr := a.undo(ctx, r); uerr != nil {
			return nil, false, errors.Join(err, fmt.Errorf("and undoing it failed, the journal keeps it for the next try: %w", uerr))
		}
		return nil, false, err
	}
	return r, true, nil
}
