package perf

import (
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		ok   bool
	}{
		{"zero", Options{}, true},
		{"explicit", Options{Lowest: time.Nanosecond, Highest: time.Hour, SignificantDigits: 2, Shards: 3}, true},
		{"negative lowest", Options{Lowest: -1}, false},
		{"highest below 2x lowest", Options{Lowest: time.Second, Highest: time.Second}, false},
		{"digits 6", Options{SignificantDigits: 6}, false},
		{"digits negative", Options{SignificantDigits: -1}, false},
		{"shards negative", Options{Shards: -1}, false},
		{"shards too many", Options{Shards: MaxShards + 1}, false},
		{"geometry overflow", Options{Lowest: 1 << 50, Highest: 1 << 62, SignificantDigits: 5}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if tc.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("error %v does not wrap ErrInvalidOptions", err)
			}
			if _, err2 := NewTracker(tc.o); (err2 == nil) != tc.ok {
				t.Fatalf("NewTracker error = %v, want ok=%v", err2, tc.ok)
			}
		})
	}
}

func TestTrackerDefaults(t *testing.T) {
	tr := mustTracker(t, Options{Shards: 3})
	o := tr.Options()
	if o.Lowest != DefaultLowest || o.Highest != DefaultHighest || o.SignificantDigits != DefaultSignificantDigits {
		t.Fatalf("defaults not applied: %+v", o)
	}
	if tr.Shards() != 4 || o.Shards != 4 {
		t.Fatalf("Shards() = %d, want 3 rounded up to 4", tr.Shards())
	}
	if s := tr.Summary(); s != (Summary{}) {
		t.Fatalf("empty tracker summary = %+v, want zero", s)
	}
}

// TestPercentilesUniform records 1µs..100ms in 1µs steps, where every
// quantile and the mean are known exactly.
func TestPercentilesUniform(t *testing.T) {
	tr := mustTracker(t, Options{})
	const n = 100_000
	for i := 1; i <= n; i++ {
		tr.Record(time.Duration(i) * time.Microsecond)
	}
	s := tr.Summary()
	if s.Count != n {
		t.Fatalf("Count = %d, want %d", s.Count, n)
	}
	// Sum is tracked exactly, not reconstructed from buckets.
	if want := time.Duration(n*(n+1)/2) * time.Microsecond; s.Sum != want {
		t.Fatalf("Sum = %v, want %v", s.Sum, want)
	}
	checkNear(t, "Mean", s.Mean, 50_000_500*time.Nanosecond)
	checkNear(t, "Min", s.Min, time.Microsecond)
	checkNear(t, "P50", s.P50, 50*time.Millisecond)
	checkNear(t, "P90", s.P90, 90*time.Millisecond)
	checkNear(t, "P99", s.P99, 99*time.Millisecond)
	checkNear(t, "P999", s.P999, 99_900*time.Microsecond)
	checkNear(t, "Max", s.Max, 100*time.Millisecond)
}

// TestPercentilesBimodal is the case averages hide: 1% of requests are
// 500x slower, which must show at p99.9 and not before.
func TestPercentilesBimodal(t *testing.T) {
	tr := mustTracker(t, Options{})
	for i := 0; i < 990; i++ {
		tr.Record(time.Millisecond)
	}
	for i := 0; i < 10; i++ {
		tr.Record(500 * time.Millisecond)
	}
	s := tr.Summary()
	checkNear(t, "P50", s.P50, time.Millisecond)
	checkNear(t, "P90", s.P90, time.Millisecond)
	checkNear(t, "P99", s.P99, time.Millisecond)
	checkNear(t, "P999", s.P999, 500*time.Millisecond)
	checkNear(t, "Max", s.Max, 500*time.Millisecond)
	checkNear(t, "Mean", s.Mean, (990*time.Millisecond+10*500*time.Millisecond)/1000)
}

// TestPercentilesExponential compares against exact order statistics of a
// long-tailed sample, using HDR's rank rule: the value at rank
// round(q*n), 1-based.
func TestPercentilesExponential(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 200_000
	vals := make([]int64, n)
	tr := mustTracker(t, Options{})
	for i := range vals {
		vals[i] = int64(r.ExpFloat64()*float64(2*time.Millisecond)) + int64(50*time.Microsecond)
		tr.RecordOn(i, vals[i])
	}
	slices.Sort(vals)
	h := tr.Snapshot()
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 0.9999} {
		rank := int(q*n + 0.5)
		checkNear(t, "quantile", h.Quantile(q), time.Duration(vals[rank-1]))
	}
	checkNear(t, "Max", h.Max(), time.Duration(vals[n-1]))
	checkNear(t, "Min", h.Min(), time.Duration(vals[0]))
}

func TestTrackerClamps(t *testing.T) {
	tr := mustTracker(t, Options{Shards: 1})
	tr.Record(-time.Second)     // clock step: counted as 0
	tr.Record(10 * time.Minute) // stall past Highest: counted as Highest
	tr.RecordValue(0)
	s := tr.Summary()
	if s.Count != 3 {
		t.Fatalf("Count = %d, want 3: out-of-range values must not be dropped", s.Count)
	}
	checkNear(t, "Max", s.Max, DefaultHighest)
	if s.Min != 0 {
		t.Fatalf("Min = %v, want 0", s.Min)
	}
	if s.Sum != DefaultHighest {
		t.Fatalf("Sum = %v, want clamped values only", s.Sum)
	}
}

// TestTrackerConcurrent hammers every record path while readers snapshot;
// run under -race it checks the locking, and the totals check no record is
// lost.
func TestTrackerConcurrent(t *testing.T) {
	tr := mustTracker(t, Options{Shards: 4})
	const workers, per = 8, 5000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		var h *Histogram
		for {
			select {
			case <-stop:
				return
			default:
			}
			h = tr.SnapshotInto(h)
			if h.Count() > workers*per {
				t.Errorf("snapshot count %d exceeds total", h.Count())
			}
		}
	}()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= per; i++ {
				switch i % 3 {
				case 0:
					tr.Record(time.Duration(i) * time.Microsecond)
				case 1:
					tr.RecordValue(int64(i) * int64(time.Microsecond))
				default:
					tr.RecordOn(w, int64(i)*int64(time.Microsecond))
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	s := tr.Summary()
	if s.Count != workers*per {
		t.Fatalf("Count = %d, want %d", s.Count, workers*per)
	}
	if want := time.Duration(workers*per*(per+1)/2) * time.Microsecond; s.Sum != want {
		t.Fatalf("Sum = %v, want %v", s.Sum, want)
	}
	checkNear(t, "P50", s.P50, per/2*time.Microsecond)
}

func TestSnapshotIntoReuse(t *testing.T) {
	tr := mustTracker(t, Options{Shards: 2})
	tr.Record(time.Millisecond)
	h1 := tr.SnapshotInto(nil)
	tr.Record(2 * time.Millisecond)
	h2 := tr.SnapshotInto(h1)
	if h2 != h1 {
		t.Fatal("SnapshotInto did not reuse a same-geometry histogram")
	}
	if h2.Count() != 2 {
		t.Fatalf("Count = %d, want 2 (reset then merged)", h2.Count())
	}
	other, err := NewHistogram(Options{SignificantDigits: 2})
	if err != nil {
		t.Fatal(err)
	}
	if h3 := tr.SnapshotInto(other); h3 == other || h3.Count() != 2 {
		t.Fatal("SnapshotInto must replace a histogram of another geometry")
	}
}

func TestSnapshotAndReset(t *testing.T) {
	tr := mustTracker(t, Options{Shards: 2})
	for i := 0; i < 10; i++ {
		tr.RecordOn(i, int64(time.Millisecond))
	}
	first := tr.SnapshotAndReset(nil)
	tr.Record(time.Second)
	second := tr.SnapshotAndReset(nil)
	if first.Count() != 10 || second.Count() != 1 {
		t.Fatalf("intervals = %d, %d; want 10, 1", first.Count(), second.Count())
	}
	checkNear(t, "second interval max", second.Max(), time.Second)
	if tr.Summary().Count != 0 {
		t.Fatal("tracker not empty after SnapshotAndReset")
	}
	tr.Record(time.Second)
	tr.Reset()
	if tr.Summary().Count != 0 {
		t.Fatal("tracker not empty after Reset")
	}
}

func TestTrackerMerge(t *testing.T) {
	tr := mustTracker(t, Options{})
	tr.Record(time.Millisecond)
	h := mustHistogram(t)
	h.Record(3 * time.Millisecond)
	if dropped := tr.Merge(h); dropped != 0 {
		t.Fatalf("dropped %d", dropped)
	}
	s := tr.Summary()
	if s.Count != 2 || s.Sum != 4*time.Millisecond {
		t.Fatalf("after merge: %+v", s)
	}
}

func TestMustNewTrackerPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("MustNewTracker accepted invalid options")
		}
	}()
	MustNewTracker(Options{SignificantDigits: 9})
}

// TestRecordSkipsBusyShard pins down that a scrape merging a loop's shard
// does not stall the loop: the record moves to a free shard.
func TestRecordSkipsBusyShard(t *testing.T) {
	tr := mustTracker(t, Options{Shards: 2})
	tr.shards[0].mu.Lock() // as a merging reader would
	done := make(chan struct{})
	go func() {
		defer close(done)
		tr.RecordOn(0, int64(time.Millisecond))
		tr.RecordValue(int64(time.Millisecond))
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RecordOn blocked behind a busy shard")
	}
	tr.shards[0].mu.Unlock()
	if n := tr.Summary().Count; n != 2 {
		t.Fatalf("Count = %d, want 2", n)
	}
}
