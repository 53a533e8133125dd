package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Histogram is a log-linear histogram of durations: exact below 128 ns,
// then 64 buckets per power of two, so any quantile it reports is within
// 1/64 (1.6%) of the true value. Recording is one array increment. The
// zero value is empty; it is not safe for concurrent use: each goroutine
// keeps its own and they are merged at the end.
type Histogram struct {
	counts   [histBuckets]uint64
	n        uint64
	min, max time.Duration
	sum      time.Duration
}

const (
	histSubBits = 7 // values below 1<<histSubBits are exact
	histSub     = 1 << (histSubBits - 1)
	histShifts  = 63 - histSubBits + 1
	histBuckets = histShifts*histSub + 2*histSub
)

func histIndex(v uint64) int {
	shift := bits.Len64(v) - histSubBits
	if shift <= 0 {
		return int(v)
	}
	return shift*histSub + int(v>>uint(shift))
}

// histUpper is the largest value that falls in bucket i.
func histUpper(i int) uint64 {
	if i < 2*histSub {
		return uint64(i)
	}
	shift := i/histSub - 1
	mant := uint64(i - shift*histSub)
	return (mant+1)<<uint(shift) - 1
}

// Record adds d (a negative d counts as 0).
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[histIndex(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

func (h *Histogram) merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// quantile returns the value at or below which a fraction q of the
// recorded values fall (the nearest-rank definition), as the upper bound of
// its bucket, never above the largest value recorded.
func (h *Histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := time.Duration(histUpper(i))
			if v > h.max {
				v = h.max
			}
			if v < h.min {
				v = h.min
			}
			return v
		}
	}
	return h.max
}

// LatencySummary is what the report gives of a histogram: the count, and
// the mean, quantiles and maximum in milliseconds (to the microsecond).
type LatencySummary struct {
	N    uint64  `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// Summary returns the histogram's figures; all zero when it is empty.
func (h *Histogram) Summary() LatencySummary {
	s := LatencySummary{N: h.n, P50: ms(h.quantile(0.5)), P90: ms(h.quantile(0.9)),
		P99: ms(h.quantile(0.99)), P999: ms(h.quantile(0.999)), Max: ms(h.max)}
	if h.n > 0 {
		s.Mean = ms(h.sum / time.Duration(h.n))
	}
	return s
}
