package realapi

import (
	"math"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// Quantiles are a histogram's p50 and p99 and how many it counted.
type Quantiles struct {
	P50, P99 time.Duration
	Count    uint64
}

// Histogram is a histogram in seconds: cumulative counts under each upper bound.
type Histogram struct {
	Bounds     []float64
	Cumulative []uint64
	Count      uint64
}

// HistogramOf sums the series of the named histogram whose labels include every pair in match.
func HistogramOf(families []*dto.MetricFamily, name string, match map[string]string) Histogram {
	var h Histogram
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.Metric {
			if m.Histogram == nil || !matches(m.Label, match) {
				continue
			}
			h.Count += m.Histogram.GetSampleCount()
			for i, b := range m.Histogram.Bucket {
				if i == len(h.Bounds) {
					h.Bounds, h.Cumulative = append(h.Bounds, b.GetUpperBound()), append(h.Cumulative, 0)
				}
				h.Cumulative[i] += b.GetCumulativeCount()
			}
		}
	}
	return h
}

// Minus is what was observed since earlier, a reading of the same histogram.
func (h Histogram) Minus(earlier Histogram) Histogram {
	d := Histogram{Bounds: h.Bounds, Cumulative: slices.Clone(h.Cumulative), Count: h.Count - earlier.Count}
	for i := range min(len(d.Cumulative), len(earlier.Cumulative)) {
		d.Cumulative[i] -= earlier.Cumulative[i]
	}
	return d
}

// Quantiles estimates p50 and p99 from the buckets as Prometheus's histogram_quantile does:
// linearly within the bucket that holds the quantile.
func (h Histogram) Quantiles() Quantiles {
	return Quantiles{P50: quantile(0.5, h.Bounds, h.Cumulative, h.Count), P99: quantile(0.99, h.Bounds, h.Cumulative, h.Count), Count: h.Count}
}

func matches(labels []*dto.LabelPair, match map[string]string) bool {
	found := 0
	for _, l := range labels {
		if v, ok := match[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			found++
		}
	}
	return found == len(match)
}

// quantile is q of total observations in cumulative buckets (upper bounds in seconds; the
// implicit +Inf bucket holds the rest: a quantile there is the largest bound).
func quantile(q float64, bounds []float64, cumulative []uint64, total uint64) time.Duration {
	if total == 0 || len(bounds) == 0 {
		return 0
	}
	rank := q * float64(total)
	lower, below := 0.0, uint64(0)
	for i, upper := range bounds {
		if float64(cumulative[i]) >= rank {
			if math.IsInf(upper, 1) {
				return seconds(lower)
			}
			in := cumulative[i] - below
			return seconds(lower + (upper-lower)*(rank-float64(below))/float64(in))
		}
		lower, below = upper, cumulative[i]
	}
	return seconds(lower)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// CounterByLabel sums the named counter's series by the value of one label, those whose labels
// include every pair in match.
func CounterByLabel(families []*dto.MetricFamily, name, label string, match map[string]string) map[string]float64 {
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.Metric {
			if !matches(m.Label, match) {
				continue
			}
			for _, l := range m.Label {
				if l.GetName() == label {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}
