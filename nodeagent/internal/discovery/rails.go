package discovery

import (
	"fmt"
	"os"
	"strconv"

	"sigs.k8s.io/yaml"

	"github.com/topolane/topolane/topology"
)

// ReadRails reads a --rails file: a YAML (or JSON) map from GPU to NIC, e.g.
//
//	# GPU (PCI address, UUID or index) -> NIC (PCI address or netdev)
//	"0000:1b:00.0": "0000:1a:00.0"
//	"3": enp96s0np0
func ReadRails(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--rails: %w", err)
	}
	var pins map[string]string
	if err := yaml.UnmarshalStrict(data, &pins); err != nil {
		return nil, fmt.Errorf("--rails %s: want a map from GPU (PCI address, UUID or index) to NIC (PCI address or netdev): %w", path, err)
	}
	return pins, nil
}

// assignRails gives every GPU its rail, honouring the pins that name a GPU and an eligible NIC of
// this node; a pin that does not is left out with a warning (the GPU takes its nearest NIC).
// lastNames are the netdev names NICs had in the host, for a NIC whose netdev is in a pod now.
func assignRails(r *Result, pins, lastNames map[string]string) {
	resolved := map[string]string{}
	for gpu, nic := range pins {
		g, n, err := resolvePin(r.Node, gpu, nic, lastNames)
		if err == nil {
			err = topology.CheckPin(r.Node, g, n)
		}
		if err != nil {
			r.warn("--rails: %v: GPU %s takes its nearest NIC", err, gpu)
			continue
		}
		resolved[g] = n
	}
	if err := topology.AssignRails(r.Node, resolved); err != nil {
		r.warn("--rails: %v", err) // cannot happen: every pin was checked
	}
	if len(r.Node.Rails) == 0 && len(r.Node.GPUs) > 0 {
		r.note("no rails: no NIC topolane may hand out")
	}
}

// resolvePin turns a pin's GPU and NIC, as a person writes them, into PCI addresses. A NIC
// whose netdev is in a pod is known by the name it had in the host.
func resolvePin(n *topology.Node, gpu, nic string, lastNames map[string]string) (string, string, error) {
	g := n.GPU(gpu)
	if i, err := strconv.Atoi(gpu); err == nil && i >= 0 && i < len(n.GPUs) {
		g = &n.GPUs[i]
	}
	if g == nil {
		return "", "", fmt.Errorf("GPU %q is not a PCI address, UUID or index of this node's %d GPUs", gpu, len(n.GPUs))
	}
	for _, x := range n.NICs {
		if x.PCIAddress == nic || (x.Name != "" && x.Name == nic) {
			return g.PCIAddress, x.PCIAddress, nil
		}
	}
	for _, x := range n.NICs {
		if x.Name == "" && nic != "" && lastNames[x.PCIAddress] == nic {
			return g.PCIAddress, x.PCIAddress, nil
		}
	}
	return "", "", fmt.Errorf("NIC %q is not a PCI address or netdev of this node", nic)
}
