package sim

import "github.com/topolane/topolane/topology/placement"

// meter follows a running job's NIC bandwidth: a share's changes whenever another pod takes or
// returns a share of the same NIC, so it is integrated over time.
type meter struct {
	devs        []placement.Allocation
	start, last float64
	mbps        float64 // as things stand
	area        float64 // Mbit/s × seconds, start to last
}

// mean is the job's bandwidth averaged from its start to now; at its start, what it got.
func (m *meter) mean(now float64) float64 {
	if now <= m.start {
		return m.mbps
	}
	return (m.area + (now-m.last)*m.mbps) / (now - m.start)
}

// Bandwidth is what devs give as things stand on the node, in Mbit/s: a PF its link speed, a VF
// or a macvlan its NIC's link speed divided by the shares (VFs and macvlans) of that NIC in use.
func (n *Node) Bandwidth(devs []placement.Allocation) float64 {
	return n.bandwidth(devs, n.shares())
}

func (n *Node) bandwidth(devs []placement.Allocation, shares map[string]int) float64 {
	total := 0.0
	for _, d := range devs {
		nic := n.Topo.NIC(d.NIC)
		if nic == nil {
			continue
		}
		speed := float64(nic.SpeedMbps)
		if d.Kind != placement.KindPF {
			speed /= float64(max(shares[d.NIC], 1))
		}
		total += speed
	}
	return total
}

// shares counts the shares in use, by NIC.
func (n *Node) shares() map[string]int {
	out := map[string]int{}
	for _, devs := range n.held {
		for _, d := range devs {
			if d.Kind != placement.KindPF {
				out[d.NIC]++
			}
		}
	}
	return out
}

// advance integrates every running job's bandwidth on the node up to now.
func (n *Node) advance(now float64) {
	for _, m := range n.meters {
		m.area += (now - m.last) * m.mbps
		m.last = now
	}
}

// rate takes every running job's bandwidth as it now stands.
func (n *Node) rate() {
	shares := n.shares()
	for _, m := range n.meters {
		m.mbps = n.bandwidth(m.devs, shares)
	}
}

// start meters a job that has just taken its devices.
func (n *Node) start(job string, devs []placement.Allocation, now float64) {
	n.meters[job] = &meter{devs: devs, start: now, last: now}
	n.rate()
}

// stop ends a job's meter and returns its mean bandwidth.
func (n *Node) stop(job string, now float64) float64 {
	m := n.meters[job]
	if m == nil {
		return 0
	}
	delete(n.meters, job)
	return m.mean(now)
}
