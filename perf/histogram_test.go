package perf

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// workerValues is one simulated load-generator worker's latencies.
func workerValues(seed uint64, n int) []int64 {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	vals := make([]int64, n)
	for i := range vals {
		// Log-uniform over 10µs..2s spreads values over most buckets.
		vals[i] = int64(float64(10*time.Microsecond) * math.Pow(2e5, r.Float64()))
	}
	return vals
}

// TestMergeEncodedEqualsDirect is the load generator's contract: each worker
// process encodes its histogram, the coordinator decodes and merges, and the
// result must be identical to one histogram that saw every value.
func TestMergeEncodedEqualsDirect(t *testing.T) {
	workers := [][]int64{workerValues(1, 20_000), workerValues(2, 30_000), workerValues(3, 1)}
	direct := mustHistogram(t)
	merged := mustHistogram(t)
	for i, vals := range workers {
		// Workers record through a Tracker, as the real ones do.
		tr := mustTracker(t, Options{Shards: 4})
		for j, v := range vals {
			tr.RecordOn(j, v)
			direct.RecordValue(v)
		}
		enc, err := tr.Snapshot().Encode()
		if err != nil {
			t.Fatal(err)
		}
		dec, err := DecodeHistogram(enc)
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
		if dropped := merged.Merge(dec); dropped != 0 {
			t.Fatalf("worker %d: dropped %d", i, dropped)
		}
	}
	if !merged.Equal(direct) {
		t.Fatal("merged encoded histograms differ from direct recording")
	}
	ms, ds := merged.Summary(), direct.Summary()
	// Sum does not survive the binary form exactly; everything else must.
	ms.Sum, ds.Sum, ms.Mean, ds.Mean = 0, 0, 0, 0
	if ms != ds {
		t.Fatalf("summaries differ:\nmerged %+v\ndirect %+v", ms, ds)
	}
	checkNear(t, "approximate Sum", merged.Sum()/1000, direct.Sum()/1000)
}

// TestMergeJSONEqualsDirect is the same through MarshalJSON, which also
// carries the exact sum.
func TestMergeJSONEqualsDirect(t *testing.T) {
	direct := mustHistogram(t)
	merged := mustHistogram(t)
	for seed := uint64(10); seed < 13; seed++ {
		w := mustHistogram(t)
		for _, v := range workerValues(seed, 5000) {
			w.RecordValue(v)
			direct.RecordValue(v)
		}
		b, err := json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		var dec Histogram
		if err := json.Unmarshal(b, &dec); err != nil {
			t.Fatal(err)
		}
		merged.Merge(&dec)
	}
	if !merged.Equal(direct) {
		t.Fatal("merged JSON histograms differ from direct recording")
	}
	if merged.Summary() != direct.Summary() {
		t.Fatalf("summaries differ:\nmerged %+v\ndirect %+v", merged.Summary(), direct.Summary())
	}
}

func TestHistogramJSONShape(t *testing.T) {
	h := mustHistogram(t)
	h.Record(time.Millisecond)
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"count", "sum_ns", "p50_ns", "p99_ns", "p999_ns", "max_ns", "hdr"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
	// A bare string of the Encode form is accepted too.
	enc, _ := h.Encode()
	var h2 Histogram
	if err := json.Unmarshal([]byte(`"`+string(enc)+`"`), &h2); err != nil {
		t.Fatal(err)
	}
	if !h2.Equal(h) {
		t.Fatal("bare-string JSON round trip differs")
	}
	var h3 Histogram
	if err := h3.UnmarshalText(enc); err != nil || !h3.Equal(h) {
		t.Fatalf("text round trip: %v", err)
	}
}

func TestDecodeCorrupt(t *testing.T) {
	h0 := mustHistogram(t)
	h0.Record(time.Millisecond)
	good, err := h0.Encode()
	if err != nil {
		t.Fatal(err)
	}
	truncated := string(good[:len(good)/2])
	for _, in := range []string{"", "not base64!", "AAAA", truncated} {
		if _, err := DecodeHistogram([]byte(in)); !errors.Is(err, ErrCorruptHistogram) {
			t.Errorf("DecodeHistogram(%q) error = %v, want ErrCorruptHistogram", in, err)
		}
	}
	var h Histogram
	if err := json.Unmarshal([]byte(`{"hdr":"AAAA"}`), &h); !errors.Is(err, ErrCorruptHistogram) {
		t.Errorf("UnmarshalJSON error = %v, want ErrCorruptHistogram", err)
	}
	if err := json.Unmarshal([]byte(`{"hdr":5}`), &h); !errors.Is(err, ErrCorruptHistogram) {
		t.Errorf("UnmarshalJSON error = %v, want ErrCorruptHistogram", err)
	}
}

func TestHistogramMergeOtherGeometry(t *testing.T) {
	small, err := NewHistogram(Options{Highest: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	big := mustHistogram(t)
	big.Record(time.Millisecond)
	big.Record(30 * time.Second)
	if dropped := small.Merge(big); dropped != 1 {
		t.Fatalf("dropped = %d, want 1 (30s is outside 1s range)", dropped)
	}
	if small.Count() != 1 {
		t.Fatalf("Count = %d, want 1", small.Count())
	}
}
