package realapi

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// histogram is a family of one histogram series with labels, observations in buckets (upper
// bounds in seconds, cumulative counts).
func histogram(name string, labels map[string]string, bounds []float64, cumulative []uint64, count uint64) *dto.MetricFamily {
	m := &dto.Metric{Histogram: &dto.Histogram{SampleCount: proto.Uint64(count)}}
	for k, v := range labels {
		m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(k), Value: proto.String(v)})
	}
	for i, b := range bounds {
		m.Histogram.Bucket = append(m.Histogram.Bucket, &dto.Bucket{UpperBound: proto.Float64(b), CumulativeCount: proto.Uint64(cumulative[i])})
	}
	return &dto.MetricFamily{Name: proto.String(name), Metric: []*dto.Metric{m}}
}

func TestHistogramQuantiles(t *testing.T) {
	bounds := []float64{0.001, 0.002, 0.004, 0.008}
	for _, tt := range []struct {
		name       string
		cumulative []uint64
		count      uint64
		want       Quantiles
	}{
		// 100 in (1, 2] ms: p50 halfway through the bucket, p99 at 99%.
		{"one bucket", []uint64{0, 100, 100, 100}, 100, Quantiles{P50: 1500 * time.Microsecond, P99: 1990 * time.Microsecond, Count: 100}},
		// 50 at ≤ 1 ms, 50 in (4, 8]: p50 is the top of the first, p99 near 8 ms.
		{"two buckets", []uint64{50, 50, 50, 100}, 100, Quantiles{P50: time.Millisecond, P99: 7920 * time.Microsecond, Count: 100}},
		// Beyond the largest bound: the largest bound.
		{"+Inf", []uint64{0, 0, 0, 10}, 20, Quantiles{P50: 8 * time.Millisecond, P99: 8 * time.Millisecond, Count: 20}},
		{"empty", []uint64{0, 0, 0, 0}, 0, Quantiles{}},
	} {
		families := []*dto.MetricFamily{
			histogram("latency", map[string]string{"verb": "filter"}, bounds, tt.cumulative, tt.count),
			histogram("latency", map[string]string{"verb": "bind"}, bounds, []uint64{7, 7, 7, 7}, 7), // not matched
		}
		got := HistogramOf(families, "latency", map[string]string{"verb": "filter"}).Quantiles()
		if diff := got.P50 - tt.want.P50; diff < -time.Microsecond || diff > time.Microsecond || got.Count != tt.want.Count ||
			got.P99-tt.want.P99 < -time.Microsecond || got.P99-tt.want.P99 > time.Microsecond {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// TestHistogramMinus: what a histogram observed since an earlier reading of it.
func TestHistogramMinus(t *testing.T) {
	bounds := []float64{0.001, 0.002}
	earlier := HistogramOf([]*dto.MetricFamily{histogram("h", nil, bounds, []uint64{10, 10}, 10)}, "h", nil)
	later := HistogramOf([]*dto.MetricFamily{histogram("h", nil, bounds, []uint64{10, 30}, 30)}, "h", nil)
	got := later.Minus(earlier).Quantiles()
	if got.Count != 20 || got.P50 != 1500*time.Microsecond {
		t.Errorf("since the earlier reading: %+v, want 20 in (1, 2] ms", got)
	}
}

func TestCounterByLabel(t *testing.T) {
	counter := func(result, profile string, v float64) *dto.Metric {
		return &dto.Metric{Counter: &dto.Counter{Value: proto.Float64(v)}, Label: []*dto.LabelPair{
			{Name: proto.String("result"), Value: proto.String(result)}, {Name: proto.String("profile"), Value: proto.String(profile)}}}
	}
	families := []*dto.MetricFamily{{Name: proto.String("attempts"), Metric: []*dto.Metric{
		counter("scheduled", "a", 3), counter("error", "a", 1), counter("scheduled", "b", 5)}}}
	got := CounterByLabel(families, "attempts", "result", map[string]string{"profile": "a"})
	if len(got) != 2 || got["scheduled"] != 3 || got["error"] != 1 {
		t.Errorf("profile a by result: %v", got)
	}
}
