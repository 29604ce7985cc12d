package attachtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/topolane/topolane/nodeagent/internal/netbind"
	"github.com/topolane/topolane/topology"
)

// The kernel calls that need RDMA or InfiniBand hardware are faked like SetVFMAC: their state
// lives in a file beside the VF MACs (a killed and restarted agent sees it), every call is
// recorded, and any of them can be made to fail (Env.FailKernel).

// hardware is the fake's state.
type hardware struct {
	Mode  string               `json:"mode,omitempty"`  // RDMA netns mode; "" reads as shared
	RDMA  map[string]string    `json:"rdma,omitempty"`  // RDMA device → its namespace when not the host's
	GUIDs map[string][2]string `json:"guids,omitempty"` // "pf/vf" → node and port GUID, once set
	Calls []string             `json:"calls,omitempty"`
	Fail  map[string]string    `json:"fail,omitempty"` // method → the error it returns
}

func hardwareFile(dir string) string { return filepath.Join(dir, "hardware.json") }

func loadHardware(path string) (hardware, error) {
	var hw hardware
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return hw, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &hw)
	}
	if err != nil {
		return hw, fmt.Errorf("fake hardware state %s: %w", path, err)
	}
	return hw, nil
}

func (hw hardware) save(path string) error {
	data, err := json.Marshal(hw)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// hardware runs fn on the fake's state under the fake's lock and saves what it changed. The
// call is recorded first; a failure set for method is returned without running fn.
func (k Kernel) hardware(method, call string, fn func(hw *hardware) error) error {
	vfMu.Lock()
	defer vfMu.Unlock()
	path := hardwareFile(filepath.Dir(k.vfFile))
	hw, err := loadHardware(path)
	if err != nil {
		return err
	}
	hw.Calls = append(hw.Calls, method+"("+call+")")
	err = errors.New(hw.Fail[method])
	if hw.Fail[method] == "" {
		err = fn(&hw)
	}
	return errors.Join(err, hw.save(path))
}

func (k Kernel) RDMANetnsMode() (mode string, err error) {
	err = k.hardware("RDMANetnsMode", "", func(hw *hardware) error {
		mode = hw.Mode
		if mode == "" {
			mode = topology.RDMANetnsShared
		}
		return nil
	})
	return mode, err
}

func (k Kernel) MoveRDMA(fromNS, dev, toNS string) error {
	return k.hardware("MoveRDMA", fmt.Sprintf("%q, %s, %q", fromNS, dev, toNS), func(hw *hardware) error {
		if hw.Mode != topology.RDMANetnsExclusive {
			return fmt.Errorf("moving RDMA device %s: operation not supported (RDMA devices move only in exclusive netns mode)", dev)
		}
		if hw.RDMA[dev] != fromNS {
			return fmt.Errorf("%w: RDMA device %s is not in %q (it is in %q)", netbind.ErrNoRDMADevice, dev, fromNS, hw.RDMA[dev])
		}
		if !k.NamespaceExists(toNS) {
			return fmt.Errorf("moving RDMA device %s: %s: %w", dev, toNS, netbind.ErrNoNamespace)
		}
		if hw.RDMA == nil {
			hw.RDMA = map[string]string{}
		}
		hw.RDMA[dev] = toNS
		return nil
	})
}

func (k Kernel) SetVFGUID(pf string, vf int, node, port net.HardwareAddr) error {
	return k.hardware("SetVFGUID", fmt.Sprintf("%s, %d, %s, %s", pf, vf, node, port), func(hw *hardware) error {
		if len(node) != 8 || len(port) != 8 {
			return fmt.Errorf("VF %d of %s: GUIDs %q and %q, want 8 bytes each", vf, pf, node, port)
		}
		if hw.GUIDs == nil {
			hw.GUIDs = map[string][2]string{}
		}
		hw.GUIDs[fmt.Sprintf("%s/%d", pf, vf)] = [2]string{node.String(), port.String()}
		return nil
	})
}

func (k Kernel) VFGUID(pf string, vf int) (node, port net.HardwareAddr, err error) {
	err = k.hardware("VFGUID", fmt.Sprintf("%s, %d", pf, vf), func(hw *hardware) error {
		g, ok := hw.GUIDs[fmt.Sprintf("%s/%d", pf, vf)]
		if !ok { // what the PF reports before anyone set them
			node, port = DefaultGUIDs(pf, vf)
			return nil
		}
		node, _ = net.ParseMAC(g[0])
		port, _ = net.ParseMAC(g[1])
		return nil
	})
	return node, port, err
}

// DefaultGUIDs are the GUIDs the fake reports for a VF nobody has set.
func DefaultGUIDs(pf string, vf int) (node, port net.HardwareAddr) {
	return net.HardwareAddr{0x0e, 0xf0, 0, 0, 0, 0, byte(len(pf)), byte(vf)}, net.HardwareAddr{0x0e, 0xf1, 0, 0, 0, 0, byte(len(pf)), byte(vf)}
}

// SetRDMANetnsMode sets the mode the fake reports (shared until set).
func (e *Env) SetRDMANetnsMode(mode string) {
	e.T.Helper()
	e.editHardware(func(hw *hardware) { hw.Mode = mode })
}

// FailKernel makes the fake's method (MoveRDMA, SetVFGUID, ...) fail with msg; "" heals it.
func (e *Env) FailKernel(method, msg string) {
	e.T.Helper()
	e.editHardware(func(hw *hardware) {
		if hw.Fail == nil {
			hw.Fail = map[string]string{}
		}
		hw.Fail[method] = msg
	})
}

// KernelCalls lists the faked hardware calls made so far, as `MoveRDMA("", mlx5_0, "/run/netns/x")`.
func (e *Env) KernelCalls() []string { return e.readHardware().Calls }

// RDMANamespace is where the fake holds RDMA device dev: "" for the host.
func (e *Env) RDMANamespace(dev string) string { return e.readHardware().RDMA[dev] }

func (e *Env) readHardware() hardware {
	e.T.Helper()
	var hw hardware
	e.editHardware(func(h *hardware) { hw = *h })
	return hw
}

func (e *Env) editHardware(edit func(hw *hardware)) {
	e.T.Helper()
	vfMu.Lock()
	defer vfMu.Unlock()
	path := hardwareFile(e.Fx.Dir)
	hw, err := loadHardware(path)
	if err == nil {
		edit(&hw)
		err = hw.save(path)
	}
	if err != nil {
		e.T.Fatal(err)
	}
}
