package attach_test

import (
	"slices"
	"testing"
	"time"
)

// BenchmarkAddDel times ADD and DEL of a VF on the kernel, IPAM by the real host-local plugin,
// every step journaled with fsync. Budget: p50 ≤ 10 ms, p99 ≤ 50 ms each.
func BenchmarkAddDel(b *testing.B) {
	e := newEnv(b)
	e.AddPod("p", []int{0}, map[string]string{"topolane.io/nic": "vf"})
	podNS := e.NewPodNS()
	q := e.Request("p", podNS)
	var adds, dels []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := e.Att.Add(ctx, q); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if err := e.Att.Del(ctx, q); err != nil {
			b.Fatal(err)
		}
		adds, dels = append(adds, mid.Sub(start)), append(dels, time.Since(mid))
	}
	report(b, "add", adds)
	report(b, "del", dels)
	b.ReportMetric(0, "ns/op")
}

func report(b *testing.B, verb string, d []time.Duration) {
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2])/1e6, verb+"-p50-ms")
	b.ReportMetric(float64(d[len(d)*99/100])/1e6, verb+"-p99-ms")
}
