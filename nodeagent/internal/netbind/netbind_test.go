package netbind

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"
)

// TestMain refuses to run without root: the kernel tests make namespaces and links, and a
// skipped test would hide them (CI runs as root).
func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "netbind's tests create network namespaces and links: run them as root (CI does)")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// newNS is a throwaway namespace that stands for the host, and a netlink handle in it.
func newNS(t testing.TB) (ns.NetNS, *netlink.Handle) {
	t.Helper()
	n, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(); _ = testutils.UnmountNS(n) })
	h, err := Netlink{HostNS: n.Path()}.handle(Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return n, h
}

// veth adds a veth pair, both ends up, and returns the first end.
func veth(t testing.TB, h *netlink.Handle, name string) netlink.Link {
	t.Helper()
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "-p"}); err != nil {
		t.Fatalf("adding veth %s: %v", name, err)
	}
	return up(t, h, name, name+"-p")[0]
}

func up(t testing.TB, h *netlink.Handle, names ...string) []netlink.Link {
	t.Helper()
	var links []netlink.Link
	for _, name := range names {
		l, err := h.LinkByName(name)
		if err == nil {
			err = h.LinkSetUp(l)
		}
		if err != nil {
			t.Fatalf("bringing %s up: %v", name, err)
		}
		links = append(links, l)
	}
	return links
}

func TestDumpRetriesAnInterruptedDump(t *testing.T) {
	other := errors.New("permission denied")
	for _, tt := range []struct {
		name        string
		failures    int   // calls that return ErrDumpInterrupted before one that does not
		last        error // what the call returns after the failures
		wantCalls   int
		wantErr     error
		wantEntries int
	}{
		{"answered at once", 0, nil, 1, nil, 3},
		{"interrupted once", 1, nil, 2, nil, 3},
		{"interrupted until the last attempt", maxDumpAttempts - 1, nil, maxDumpAttempts, nil, 3},
		{"interrupted every time", maxDumpAttempts, nil, maxDumpAttempts, netlink.ErrDumpInterrupted, 0},
		{"another error is not retried", 0, other, 1, other, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			got, err := dump(func() ([]int, error) {
				calls++
				if calls <= tt.failures {
					return []int{1}, netlink.ErrDumpInterrupted // a partial answer
				}
				if tt.last != nil {
					return nil, tt.last
				}
				return []int{1, 2, 3}, nil
			})
			if calls != tt.wantCalls || len(got) != tt.wantEntries || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("%d calls, %d entries, error %v; want %d calls, %d entries, error %v", calls, len(got), err, tt.wantCalls, tt.wantEntries, tt.wantErr)
			}
		})
	}
}
