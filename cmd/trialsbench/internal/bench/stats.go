package bench

import (
	"math"
	"slices"
	"time"
)

// Dist summarises a distribution of durations, in milliseconds.
type Dist struct {
	N    int     `json:"n"`
	Mean float64 `json:"meanMs"`
	P50  float64 `json:"p50Ms"`
	P95  float64 `json:"p95Ms"`
	P99  float64 `json:"p99Ms"`
	Max  float64 `json:"maxMs"`
}

// distOf summarises ms (which it sorts in place).
func distOf(ms []float64) Dist {
	if len(ms) == 0 {
		return Dist{}
	}
	slices.Sort(ms)
	var sum float64
	for _, v := range ms {
		sum += v
	}
	return Dist{
		N: len(ms), Mean: round3(sum / float64(len(ms))),
		P50: round3(quantile(ms, 0.50)), P95: round3(quantile(ms, 0.95)),
		P99: round3(quantile(ms, 0.99)), Max: round3(ms[len(ms)-1]),
	}
}

// quantile is the nearest-rank quantile of sorted values.
func quantile(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func mb(bytes int64) float64 { return round1(float64(bytes) / (1 << 20)) }

// lagPoint is the lag of the trials due in one second of the window.
type lagPoint struct {
	DueS  float64 `json:"dueS"` // start of the second, from the window's start
	N     int     `json:"n"`
	P50Ms float64 `json:"p50Ms"`
	P99Ms float64 `json:"p99Ms"`
	MaxMs float64 `json:"maxMs"`
}

// trialLag is one trial's due time (from the window's start) and lag.
type trialLag struct {
	DueS, LagMs float64
}

// lagSeries buckets lags by the second their trial was due in.
func lagSeries(lags []trialLag) []lagPoint {
	buckets := map[int][]float64{}
	last := 0
	for _, l := range lags {
		b := int(math.Floor(l.DueS))
		buckets[b] = append(buckets[b], l.LagMs)
		last = max(last, b)
	}
	var out []lagPoint
	for b := 0; b <= last; b++ {
		v := buckets[b]
		if len(v) == 0 {
			continue
		}
		d := distOf(v)
		out = append(out, lagPoint{DueS: float64(b), N: d.N, P50Ms: d.P50, P99Ms: d.P99, MaxMs: d.Max})
	}
	return out
}

func lagValues(lags []trialLag) []float64 {
	out := make([]float64, len(lags))
	for i, l := range lags {
		out[i] = l.LagMs
	}
	return out
}

// ratio is a/b rounded, or 0 when b is 0 (not measured).
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return math.Round(a/b*1000) / 1000
}
