package shapingtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"
)

// Flow is what one TCP connection delivered: payload bytes received per bin, from the first.
type Flow struct {
	Bin  time.Duration
	Bins []int64
	MSS  int // the sender's segment payload (TCP_MAXSEG: the MTU less IP, TCP and options)
	MTU  int
}

// Send sends TCP from one namespace to addr (in another) for d, as fast as TCP goes, and
// records what arrives in bins of bin. mtu is the path's MTU, for Wire.
func Send(from, to ns.NetNS, addr net.IP, d, bin time.Duration, mtu int) (Flow, error) {
	if bin <= 0 || d < bin {
		return Flow{}, fmt.Errorf("a flow of %v in bins of %v: the flow must last a bin at least", d, bin)
	}
	var l net.Listener
	err := to.Do(func(ns.NetNS) error {
		var err error
		l, err = net.Listen("tcp4", net.JoinHostPort(addr.String(), "0"))
		return err
	})
	if err != nil {
		return Flow{}, fmt.Errorf("listening: %w", err)
	}
	defer l.Close()
	got := make(chan result, 1)
	go func() { got <- receive(l, d, bin) }()
	var c net.Conn
	err = from.Do(func(ns.NetNS) error {
		var err error
		c, err = net.DialTimeout("tcp4", l.Addr().String(), 5*time.Second)
		return err
	})
	if err != nil {
		l.Close()
		<-got
		return Flow{}, fmt.Errorf("connecting: %w", err)
	}
	mss, serr := send(c.(*net.TCPConn), d+5*time.Second)
	r := <-got
	if r.err != nil {
		return Flow{}, r.err
	}
	if mss == 0 {
		return Flow{}, fmt.Errorf("sending: %w", serr)
	}
	return Flow{Bin: bin, Bins: r.bins, MSS: mss, MTU: mtu}, nil
}

type result struct {
	bins []int64
	err  error
}

// receive accepts one connection and counts what arrives for d from the first byte, then
// closes it (which stops the sender).
func receive(l net.Listener, d, bin time.Duration) result {
	c, err := l.Accept()
	if err != nil {
		return result{err: fmt.Errorf("accepting: %w", err)}
	}
	defer c.Close()
	bins := make([]int64, int(d/bin))
	buf := make([]byte, 256<<10)
	n, err := io.ReadAtLeast(c, buf, 1)
	if err != nil {
		return result{err: fmt.Errorf("receiving: %w", err)}
	}
	start := time.Now()
	bins[0] += int64(n)
	if err := c.SetReadDeadline(start.Add(d)); err != nil {
		return result{err: err}
	}
	for {
		n, err := c.Read(buf)
		if i := int(time.Since(start) / bin); i < len(bins) {
			bins[i] += int64(n)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return result{bins: bins}
		}
		if err != nil {
			return result{err: fmt.Errorf("receiving: %w", err)}
		}
	}
}

// send writes until the receiver closes (or the deadline passes) and returns the MSS.
func send(c *net.TCPConn, deadline time.Duration) (int, error) {
	defer c.Close()
	mss, err := maxSeg(c)
	if err != nil {
		return 0, err
	}
	if err := c.SetWriteDeadline(time.Now().Add(deadline)); err != nil {
		return 0, err
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := c.Write(buf); err != nil {
			return mss, err // the receiver is done
		}
	}
}

func maxSeg(c *net.TCPConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var mss int
	var serr error
	err = raw.Control(func(fd uintptr) { mss, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG) })
	return mss, errors.Join(err, serr)
}

// Wire is the factor from TCP payload to what a shaper counts: each full segment carries MSS
// bytes of payload in MTU + 14 bytes (IP and TCP headers with options, and the Ethernet header;
// tbf counts a GSO packet per segment, without preamble or FCS).
func (f Flow) Wire() float64 { return float64(f.MTU+14) / float64(f.MSS) }

// Rate is the rate on the wire, in bit/s, over the bins within [from, to).
func (f Flow) Rate(from, to time.Duration) float64 {
	i, j := int((from+f.Bin-1)/f.Bin), min(int(to/f.Bin), len(f.Bins))
	if j <= i {
		return 0
	}
	var sum int64
	for _, b := range f.Bins[i:j] {
		sum += b
	}
	return float64(sum) * 8 * f.Wire() / (float64(j-i) * f.Bin.Seconds())
}

// Duration is how long the flow was recorded.
func (f Flow) Duration() time.Duration { return time.Duration(len(f.Bins)) * f.Bin }

// Point is the rate on the wire over one step of a series.
type Point struct {
	T    float64 // s, the step's end
	Rate float64 // bit/s
}

// Series is the rate over time in steps of step.
func (f Flow) Series(step time.Duration) []Point {
	var out []Point
	for t := step; t <= f.Duration(); t += step {
		out = append(out, Point{T: t.Seconds(), Rate: f.Rate(t-step, t)})
	}
	return out
}

// PhaseEnd is when a burst phase above threshold bit/s ended: where the rate first stays at or
// below it for 300 ms (0: the flow never ran above it; Duration: it never stopped). A refilled
// bucket's short burst later on, after a stall, is not the burst phase.
func (f Flow) PhaseEnd(threshold float64) time.Duration {
	w := 300 * time.Millisecond
	for t := time.Duration(0); t+w <= f.Duration(); t += f.Bin {
		if f.Rate(t, t+w) > threshold {
			continue
		}
		for t < f.Duration() && f.Rate(t, t+f.Bin) > threshold {
			t += f.Bin
		}
		return t
	}
	return f.Duration()
}
