package loadgen

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name string
		gen  func() time.Duration
	}{
		{"exact small values", func() time.Duration { return time.Duration(rng.IntN(128)) }},
		{"uniform to 10ms", func() time.Duration { return time.Duration(rng.Int64N(int64(10 * time.Millisecond))) }},
		{"long tail", func() time.Duration { return time.Duration(rng.ExpFloat64() * float64(time.Millisecond)) }},
		{"seconds", func() time.Duration { return time.Duration(rng.Int64N(int64(30 * time.Second))) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Two halves merged must equal the whole, and every quantile
			// must be within one bucket (1/64) of the exact answer.
			var a, b Histogram
			vals := make([]time.Duration, 20000)
			for i := range vals {
				vals[i] = tc.gen()
				if i%2 == 0 {
					a.Record(vals[i])
				} else {
					b.Record(vals[i])
				}
			}
			a.merge(&b)
			slices.Sort(vals)
			if a.n != uint64(len(vals)) || a.min != vals[0] || a.max != vals[len(vals)-1] {
				t.Fatalf("n/min/max = %d/%v/%v, want %d/%v/%v", a.n, a.min, a.max, len(vals), vals[0], vals[len(vals)-1])
			}
			for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
				rank := int(q * float64(len(vals)))
				if float64(rank) < q*float64(len(vals)) {
					rank++
				}
				want := vals[max(rank, 1)-1]
				got := a.quantile(q)
				if got < want || float64(got-want) > float64(want)/64+1 {
					t.Errorf("q%.3f = %v, want %v (within 1/64 above)", q, got, want)
				}
			}
		})
	}
	var empty Histogram
	if s := empty.Summary(); s.N != 0 || s.P99 != 0 || s.Max != 0 {
		t.Errorf("empty summary = %+v", s)
	}
}

func TestHistBucketsCoverEveryValue(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1 << 20, 1<<40 + 12345, 1<<63 - 1} {
		i := histIndex(v)
		if i < prev || i >= histBuckets {
			t.Fatalf("index(%d) = %d after %d (of %d)", v, i, prev, histBuckets)
		}
		if up := histUpper(i); up < v || (v >= 128 && float64(up-v) > float64(v)/64) {
			t.Errorf("upper(index(%d)) = %d", v, up)
		}
		prev = i
	}
}
