package netbind

import (
	"fmt"
	"testing"
)

// BenchmarkHostLinks reads a host namespace shaped like a DGX H100's: 8 PFs and a management
// NIC (veth ends here, with their peers: 18 links), one with an address and the default route.
func BenchmarkHostLinks(b *testing.B) {
	n, h := newNS(b)
	for i := range 9 {
		veth(b, h, fmt.Sprintf("enp%ds0np0", i))
	}
	l, _ := h.LinkByName("enp0s0np0")
	addAddr(b, h, l, "10.204.0.2/24")
	addDefault(b, h, l, "10.204.0.1")
	k := Netlink{HostNS: n.Path()}
	b.ResetTimer()
	for b.Loop() {
		if _, err := k.HostLinks(); err != nil {
			b.Fatal(err)
		}
	}
}
