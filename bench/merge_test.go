package bench

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/meshfast/meshfast/perf"
)

// TestMergeWorkerHistograms checks that histograms shipped from workers in
// their result events (JSON, HDR-encoded) merge to exactly what one
// histogram recording every value directly holds.
func TestMergeWorkerHistograms(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	direct, err := perf.NewHistogram(histOptions)
	if err != nil {
		t.Fatal(err)
	}
	acc := map[string]*perf.Histogram{}
	var wantCounts counts
	for w := range 3 {
		tr := perf.MustNewTracker(histOptions)
		for range 5000 + w*1000 {
			d := time.Duration(rng.ExpFloat64() * float64(200*time.Microsecond))
			if rng.IntN(100) == 0 {
				d = time.Duration(rng.Int64N(int64(2 * time.Second)))
			}
			tr.Record(d)
			direct.Record(d)
		}
		var c counts
		c[cReplies] = uint64(w + 1)
		wantCounts.add(c)
		b, err := json.Marshal(event{Ev: "result", Counts: c, Hists: map[string]*perf.Histogram{"rtt": tr.Snapshot()}})
		if err != nil {
			t.Fatal(err)
		}
		var ev event
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatal(err)
		}
		if err := mergeHists(acc, ev.Hists); err != nil {
			t.Fatal(err)
		}
	}
	got := acc["rtt"]
	if !got.Equal(direct) {
		t.Fatalf("merged histogram differs: %+v vs %+v", got.Summary(), direct.Summary())
	}
	for _, q := range []float64{0.5, 0.99, 0.999, 1} {
		if got.Quantile(q) != direct.Quantile(q) {
			t.Fatalf("q%v: %v vs %v", q, got.Quantile(q), direct.Quantile(q))
		}
	}
	if got.Sum() != direct.Sum() {
		t.Fatalf("sum %v vs %v", got.Sum(), direct.Sum())
	}
	r := &RunResult{}
	var results []event
	for range 2 {
		results = append(results, event{Counts: wantCounts, Hists: map[string]*perf.Histogram{"rtt": direct}})
	}
	c, err := r.collect(results)
	if err != nil || c[cReplies] != 2*wantCounts[cReplies] || r.Latency["rtt"].Count() != 2*direct.Count() {
		t.Fatalf("collect: %v %v", err, c.named())
	}
}
