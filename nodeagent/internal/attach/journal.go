package attach

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/topolane/topolane/topology/placement"
)

// Step is how far an ADD has gone. A record is written with the last step of the phase about to
// be taken, before it is taken: after a crash, every step up to the recorded one may have
// happened, and undoing them is written so that undoing one that did not happen is harmless.
type Step int

const (
	StepChosen     Step = iota + 1 // the device is decided
	StepIPAM                       // the IPAM plugin is asked for addresses
	StepHostName                   // the device is marked (alias), downed and renamed on the host
	StepVFMAC                      // a VF's MAC is set through its PF
	StepMoved                      // the device is moved into the pod's namespace
	StepRenamed                    // it takes the CNI interface name
	StepConfigured                 // MAC, addresses, routes, up
	StepAccel                      // the pod's acceleration config is written
	StepDone                       // the pod has its device
)

var stepNames = map[Step]string{StepChosen: "chosen", StepIPAM: "ipam", StepHostName: "host-rename", StepVFMAC: "vf-mac",
	StepMoved: "moved", StepRenamed: "renamed", StepConfigured: "configured", StepAccel: "accel", StepDone: "done"}

func (s Step) String() string { return stepNames[s] }

// Record is everything needed to undo an attachment without deciding anything again.
type Record struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifName"`
	Netns       string `json:"netns"`
	Pod         string `json:"pod"` // namespace/name
	PodUID      string `json:"podUID"`
	Network     string `json:"network"`

	Kind   placement.Kind `json:"kind"`
	NIC    string         `json:"nic"`    // PCI address of the PF
	Device string         `json:"device"` // PCI address of what the pod gets
	Level  string         `json:"level"`  // from the device to the pod's GPUs
	RDMA   string         `json:"rdma,omitempty"`

	HostName  string `json:"hostName"`  // the device's name on the host, restored on DEL
	TempName  string `json:"tempName"`  // its name while it moves
	Alias     string `json:"alias"`     // how it is found wherever it is
	OrigAlias string `json:"origAlias"` // restored on DEL
	OrigMAC   string `json:"origMAC"`
	WasUp     bool   `json:"wasUp"`

	PF        string `json:"pf,omitempty"` // VF only: the PF's netdev and the VF's index
	VFIndex   int    `json:"vfIndex,omitempty"`
	OrigVFMAC string `json:"origVFMAC,omitempty"`
	MAC       string `json:"mac,omitempty"` // the MAC given (VF only)

	NetConf    json.RawMessage `json:"netConf"` // the network config, as the IPAM plugin must see it again on DEL
	CNIPath    []string        `json:"cniPath"`
	IPAMType   string          `json:"ipamType"`
	IPAMResult json.RawMessage `json:"ipamResult,omitempty"`
	GPUs       []string        `json:"gpus,omitempty"` // the pod's GPUs, PCI addresses

	Step Step `json:"step"`
	// Deleting is set when a DEL starts: a restart finishes it.
	Deleting bool `json:"deleting,omitempty"`
}

// Journal keeps one record per attachment as a file, each write atomic (write, fsync, rename,
// fsync the directory).
type Journal struct{ Dir string }

func (j Journal) path(containerID, ifName string) string {
	return filepath.Join(j.Dir, containerID+"_"+ifName+".json")
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

// Load reads a record; ok is false when there is none.
func (j Journal) Load(containerID, ifName string) (*Record, bool, error) {
	data, err := os.ReadFile(j.path(containerID, ifName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("journal: %w", err)
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, false, fmt.Errorf("journal %s is unreadable (%v): move it aside and check the device by hand", j.path(containerID, ifName), err)
	}
	return &r, true, nil
}

// Remove deletes a record; removing one that is gone is not an error.
func (j Journal) Remove(r *Record) error {
	err := os.Remove(j.path(r.ContainerID, r.IfName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("journal: %w", err)
	}
	return syncDir(j.Dir)
}

// All reads every record.
func (j Journal) All() ([]*Record, error) {
	paths, err := filepath.Glob(filepath.Join(j.Dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var out []*Record
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		var r Record
		if err == nil {
			err = json.Unmarshal(data, &r)
		}
		if err != nil {
			return out, fmt.Errorf("journal %s is unreadable (%v): move it aside and check the device by hand", p, err)
		}
		out = append(out, &r)
	}
	return out, nil
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
