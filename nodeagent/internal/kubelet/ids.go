package kubelet

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/topolane/topolane/topology"
)

// The device plugin's GPU ids (NVIDIA k8s-device-plugin): a GPU's UUID, a MIG device's UUID
// (mig-strategy single or mixed; MIG-GPU-<uuid>/<gi>/<ci> from drivers before R470), and
// either followed by ::<n> when shared by time-slicing or MPS (the replica). Older sharing
// plugins append -<n> to the GPU's UUID instead.
var (
	uuidHex     = `[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`
	gpuID       = regexp.MustCompile(`^GPU-` + uuidHex + `$`)
	gpuReplica  = regexp.MustCompile(`^(GPU-` + uuidHex + `)-[0-9]+$`)
	migID       = regexp.MustCompile(`^MIG-` + uuidHex + `$`)
	migLegacyID = regexp.MustCompile(`^MIG-(GPU-` + uuidHex + `)/[0-9]+/[0-9]+$`)
	indexID     = regexp.MustCompile(`^[0-9]+(:[0-9]+)?$`)
	replica     = regexp.MustCompile(`^[0-9]+$`)
)

// Resolver maps the device plugin's ids to the node's GPUs.
type Resolver struct {
	// Known says whether a GPU (UUID, or PCI address) is one of the node's GPUs as discovered;
	// nil takes every well-formed id.
	Known func(uuid string) bool
	// MIGParent gives the UUID of the GPU a MIG device is on (NVML knows); nil where the agent
	// has no NVML.
	MIGParent func(migUUID string) (string, error)
}

// GPUs maps a pod's device ids to its GPUs: each GPU once (an id repeated across init,
// sidecar and app containers, two replicas of one GPU, two MIG devices of one GPU), in the
// order first seen. The error names every id that cannot be mapped.
func (r Resolver) GPUs(ids []string) ([]string, error) {
	gpus, _, err := r.resolve(ids)
	return gpus, err
}

// resolve maps ids and also returns those it could not map, each once.
func (r Resolver) resolve(ids []string) (gpus, unmapped []string, err error) {
	seen := map[string]bool{}
	var errs []error
	for _, id := range ids {
		g, err := r.GPU(id)
		if err != nil {
			if !seen[id] {
				errs = append(errs, err)
				unmapped = append(unmapped, id)
			}
			g = id
		} else if seen[g] {
			continue
		} else {
			gpus = append(gpus, g)
		}
		seen[g] = true
	}
	return gpus, unmapped, errors.Join(errs...)
}

// GPU maps one device id to its GPU's UUID (a PCI address stays as it is).
func (r Resolver) GPU(id string) (string, error) {
	base := id
	if b, n, ok := strings.Cut(id, "::"); ok {
		if !replica.MatchString(n) {
			return "", fmt.Errorf("device id %q: %q after \"::\" is not a replica number", id, n)
		}
		base = b
	}
	uuid, err := r.parent(base)
	if err != nil {
		return "", fmt.Errorf("device id %q: %w", id, err)
	}
	if r.Known != nil && !r.Known(uuid) {
		return "", fmt.Errorf("device id %q: GPU %s is not one of this node's GPUs as discovered (was it added after the agent started, or is NVML missing?)", id, uuid)
	}
	return uuid, nil
}

func (r Resolver) parent(id string) (string, error) {
	switch {
	case gpuID.MatchString(id):
		return id, nil
	case gpuReplica.MatchString(id):
		return gpuReplica.FindStringSubmatch(id)[1], nil
	case migLegacyID.MatchString(id):
		return migLegacyID.FindStringSubmatch(id)[1], nil
	case migID.MatchString(id):
		if r.MIGParent == nil {
			return "", fmt.Errorf("MIG device %s: finding its GPU needs NVML, which the agent does not have here (run it on the node with the NVIDIA driver)", id)
		}
		return r.MIGParent(id)
	case indexID.MatchString(id):
		return "", fmt.Errorf("an index, as the device plugin's deviceIDStrategy=index gives: set deviceIDStrategy=uuid (the default) so that the GPU is known")
	}
	if addr, err := topology.NormalizePCIAddress(id); err == nil {
		return addr, nil
	}
	return "", fmt.Errorf("not a GPU id topolane knows (GPU-<uuid>, MIG-<uuid> or MIG-GPU-<uuid>/<gi>/<ci>, optionally followed by ::<replica>)")
}
