package netbind

import (
	"errors"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/topolane/topolane/topology"
)

// TestRDMANetnsMode asks the kernel: a node with RDMA answers shared or exclusive, and one
// without (this machine, CI) answers ErrNoRDMA, whose message says what to load.
func TestRDMANetnsMode(t *testing.T) {
	mode, err := Netlink{}.RDMANetnsMode()
	switch {
	case err == nil && (mode == topology.RDMANetnsShared || mode == topology.RDMANetnsExclusive):
	case errors.Is(err, ErrNoRDMA) && strings.Contains(err.Error(), "mlx5_ib"):
	default:
		t.Errorf("RDMANetnsMode() = %q, %v; want shared or exclusive, or ErrNoRDMA saying what to load", mode, err)
	}
}

// TestMoveRDMAErrorsNameTheDevice: whatever stops a move (no RDMA netlink here, a device that
// is not there, a namespace that is gone), the error names the device and what to check.
func TestMoveRDMAErrorsNameTheDevice(t *testing.T) {
	n, _ := newNS(t)
	for _, tt := range []struct {
		name      string
		from, to  string
		wantOneOf []string
		wantNoNS  bool
	}{
		{"into a pod", Host, n.Path(), []string{"rdma dev", "mlx5_ib"}, false},
		{"back to the host", n.Path(), Host, []string{"rdma dev", "mlx5_ib"}, false},
		{"into a namespace that is gone", Host, "/var/run/netns/topolane-test-gone", []string{"/var/run/netns/topolane-test-gone"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Netlink{HostNS: n.Path()}.MoveRDMA(tt.from, "tl-missing7", tt.to)
			if err == nil || !strings.Contains(err.Error(), "RDMA device tl-missing7") || !containsAny(err.Error(), tt.wantOneOf) {
				t.Errorf("MoveRDMA: %v; want an error naming RDMA device tl-missing7 and one of %q", err, tt.wantOneOf)
			}
			if errors.Is(err, ErrNoNamespace) != tt.wantNoNS {
				t.Errorf("errors.Is(%v, ErrNoNamespace) = %v", err, !tt.wantNoNS)
			}
		})
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// TestFindRDMA is the lookup a move makes among the RDMA devices of a namespace (the kernel
// here has none, so the list is given).
func TestFindRDMA(t *testing.T) {
	links := func(names ...string) []*netlink.RdmaLink {
		var out []*netlink.RdmaLink
		for i, n := range names {
			out = append(out, &netlink.RdmaLink{Attrs: netlink.RdmaLinkAttrs{Index: uint32(i), Name: n}})
		}
		return out
	}
	for _, tt := range []struct {
		name    string
		links   []*netlink.RdmaLink
		ns      string
		want    uint32
		wantErr string
	}{
		{"found", links("mlx5_0", "mlx5_3"), Host, 1, ""},
		{"another device's prefix is not it", links("mlx5_30", "mlx5_3"), Host, 1, ""},
		{"not there", links("mlx5_0", "mlx5_1"), Host, 0,
			"RDMA device mlx5_3 is not in the host namespace (RDMA devices there: mlx5_0, mlx5_1): check `rdma dev` there; in exclusive netns mode a device that moved into a pod is listed only in the pod's namespace"},
		{"none in a pod", nil, "/var/run/netns/pod", 0, "RDMA device mlx5_3 is not in /var/run/netns/pod (RDMA devices there: none)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, err := findRDMA(tt.links, "mlx5_3", tt.ns)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrNoRDMADevice) {
					t.Errorf("error %v, want %q matching ErrNoRDMADevice", err, tt.wantErr)
				}
				return
			}
			if err != nil || l.Attrs.Index != tt.want {
				t.Errorf("found %+v, %v; want index %d", l, err, tt.want)
			}
		})
	}
}
