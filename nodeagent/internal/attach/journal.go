package attach

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/topolane/topolane/nodeagent/internal/shaping"
	"github.com/topolane/topolane/topology/placement"
)

// Step is how far an ADD has gone, for all its devices at once. A record is written with the
// last step of the phase about to be taken, before it is taken: after a crash, every step up to
// the recorded one may have happened to any device, and undoing them is written so that undoing
// one that did not happen is harmless.
type Step int

const (
	StepChosen     Step = iota + 1 // the devices are decided
	StepIPAM                       // the IPAM plugin is asked for each device's addresses
	StepHostName                   // each device is marked (alias), downed and renamed on the host
	StepVFConfig                   // a VF's MAC (or InfiniBand GUIDs) and rate ceiling are set through its PF
	StepMoved                      // the devices (and in exclusive mode their RDMA devices) move into the pod
	StepRenamed                    // they take their names in the pod
	StepConfigured                 // MAC, addresses, routes, up
	StepShaped                     // bandwidth limits are applied in the pod's namespace
	StepAccel                      // the pod's acceleration config is written
	StepDone                       // the pod has its devices
)

var stepNames = map[Step]string{StepChosen: "chosen", StepIPAM: "ipam", StepHostName: "host-rename", StepVFConfig: "vf-config",
	StepMoved: "moved", StepRenamed: "renamed", StepConfigured: "configured", StepShaped: "shaped", StepAccel: "accel", StepDone: "done"}

func (s Step) String() string { return stepNames[s] }

// Record is everything needed to undo an attachment without deciding anything again: one CNI
// ADD, which gives a pod one device per rail of its GPUs.
type Record struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifName"` // CNI_IFNAME
	Netns       string `json:"netns"`
	Pod         string `json:"pod"` // namespace/name
	PodUID      string `json:"podUID"`
	Network     string `json:"network"`
	// BootID is the kernel's boot id at ADD: after a reboot the devices are already home.
	BootID string `json:"bootID"`

	NetConf  json.RawMessage `json:"netConf"` // the network config, as the IPAM plugin must see it again on DEL
	CNIPath  []string        `json:"cniPath"`
	CNIArgs  string          `json:"cniArgs,omitempty"` // the runtime's CNI_ARGS, handed on to IPAM
	IPAMType string          `json:"ipamType"`
	GPUs     []string        `json:"gpus,omitempty"` // the pod's GPUs, PCI addresses, in order

	Devices []Device `json:"devices"`

	Step Step `json:"step"`
	// Deleting is set when a DEL starts: a restart finishes it.
	Deleting bool `json:"deleting,omitempty"`
	// Failed lists what the last undo could not do; the next DEL or reconcile tries again.
	Failed []string `json:"failed,omitempty"`
}

// Device is one device of an attachment.
type Device struct {
	IfName string         `json:"ifName"` // its name in the pod
	Rail   int            `json:"rail"`   // the rail it serves; -1 for topolane.io/nics: one
	Kind   placement.Kind `json:"kind"`
	NIC    string         `json:"nic"`    // PCI address of the PF
	Device string         `json:"device"` // PCI address of what the pod gets
	Level  string         `json:"level"`  // from the device to the farthest of its GPUs
	GPUs   []string       `json:"gpus"`   // the pod's GPUs it serves
	RDMA   string         `json:"rdma,omitempty"`
	// InfiniBand is set for a device of an InfiniBand-mode NIC: a VF gets GUIDs, not a MAC.
	InfiniBand bool `json:"infiniband,omitempty"`

	HostName  string `json:"hostName"`  // the device's name on the host, restored on DEL
	TempName  string `json:"tempName"`  // its name while it moves
	Alias     string `json:"alias"`     // how it is found in the pod
	OrigAlias string `json:"origAlias"` // restored on DEL
	OrigMAC   string `json:"origMAC"`
	WasUp     bool   `json:"wasUp"`
	MTU       int    `json:"mtu,omitempty"`

	PF        string `json:"pf,omitempty"` // VF and macvlan: the PF's netdev; VF: its index
	VFIndex   int    `json:"vfIndex,omitempty"`
	OrigVFMAC string `json:"origVFMAC,omitempty"`
	MAC       string `json:"mac,omitempty"` // the MAC given (Ethernet VF)
	// InfiniBand VF: the GUIDs given and the ones to restore.
	NodeGUID     string `json:"nodeGUID,omitempty"`
	PortGUID     string `json:"portGUID,omitempty"`
	OrigNodeGUID string `json:"origNodeGUID,omitempty"`
	OrigPortGUID string `json:"origPortGUID,omitempty"`
	// MoveRDMA is set when the node's RDMA subsystem is in exclusive mode: the RDMA device
	// moves with the netdev.
	MoveRDMA bool `json:"moveRDMA,omitempty"`

	IPAMResult json.RawMessage `json:"ipamResult,omitempty"`
	// Table is the routing table of its source rule, for a pod with several devices (Multihome).
	Table int `json:"table,omitempty"`
	// NoAddresses: its IPAM ADD failed or was never made, so the plugin holds nothing to release.
	NoAddresses bool               `json:"noAddresses,omitempty"`
	Shaping     *shaping.Plan      `json:"shaping,omitempty"`
	VFCeiling   *shaping.VFCeiling `json:"vfCeiling,omitempty"`
}

// Journal keeps one record per attachment as a file, each write atomic (write, fsync, rename,
// fsync the directory).
type Journal struct{ Dir string }

// fileName is the record's file: container ids cannot hold "@", so no two attachments share one.
func fileName(containerID, ifName string) string { return containerID + "@" + ifName + ".json" }

func (j Journal) path(containerID, ifName string) string {
	return filepath.Join(j.Dir, fileName(containerID, ifName))
}

// Save writes the record with its step.
func (j Journal) Save(r *Record) error {
	if err := os.MkdirAll(j.Dir, 0o700); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(j.path(r.ContainerID, r.IfName), data, 0o600)
}

// legacyPath is where an agent before rails kept the record.
func (j Journal) legacyPath(containerID, ifName string) string {
	return filepath.Join(j.Dir, containerID+"_"+ifName+".json")
}

// Load reads a record; ok is false when there is none.
func (j Journal) Load(containerID, ifName string) (*Record, bool, error) {
	for _, path := range []string{j.path(containerID, ifName), j.legacyPath(containerID, ifName)} {
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("journal: %w", err)
		}
		r, err := decodeRecord(path, data)
		return r, err == nil, err
	}
	return nil, false, nil
}

func decodeRecord(path string, data []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("journal %s is unreadable (%v): move it aside and check its devices by hand", path, err)
	}
	if len(r.Devices) == 0 {
		if err := r.fromLegacy(data); err != nil {
			return nil, fmt.Errorf("journal %s: %w", path, err)
		}
	}
	return &r, nil
}

// fromLegacy reads the one device of a record an agent before rails wrote: its fields were the
// record's own, and its steps are numbered as today's up to configured.
func (r *Record) fromLegacy(data []byte) error {
	var old struct {
		Device
		IPAMResult json.RawMessage `json:"ipamResult"`
		OldStep    int             `json:"step"`
	}
	if err := json.Unmarshal(data, &old); err != nil || old.Kind == "" {
		return fmt.Errorf("the record names no device: move it aside and check the node by hand")
	}
	d := old.Device
	d.IfName, d.Rail, d.IPAMResult = r.IfName, -1, old.IPAMResult
	r.Devices = []Device{d}
	if old.OldStep >= int(StepShaped) { // accel and done come one later now, after shaping
		r.Step = Step(old.OldStep + 1)
	}
	return nil
}

// Remove deletes a record; removing one that is gone is not an error.
func (j Journal) Remove(r *Record) error {
	for _, path := range []string{j.path(r.ContainerID, r.IfName), j.legacyPath(r.ContainerID, r.IfName)} {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("journal: %w", err)
		}
	}
	return syncDir(j.Dir)
}

// All reads every record. One that cannot be read is reported in the error and left out:
// it must not stop the others from being served.
func (j Journal) All() ([]*Record, error) {
	paths, err := filepath.Glob(filepath.Join(j.Dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var out []*Record
	var errs []error
	for _, p := range paths {
		if strings.HasPrefix(filepath.Base(p), ".") {
			continue
		}
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		var r *Record
		if err == nil {
			r, err = decodeRecord(p, data)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

// writeAtomic replaces path with data: a crash leaves the old file or the new, never half.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // gone after the rename
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), mode)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
