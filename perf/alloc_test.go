//go:build !race

// The race detector allocates on its own, so allocation gates run only in
// normal builds.

package perf

import (
	"testing"
	"time"
)

// TestHotPathsDoNotAllocate is the allocation gate for everything a hot
// path may call per message.
func TestHotPathsDoNotAllocate(t *testing.T) {
	m := NewMetrics()
	tr := m.Tracker("lat_seconds", "", Options{Shards: 4})
	c := m.Counter("c_total", "")
	sc := m.ShardedCounter("s_total", "", 4)
	g := m.Gauge("g", "")
	clk := NewCoarseClock(0)
	clk.Start()
	defer clk.Stop()
	h := mustHistogram(t)

	cases := []struct {
		name string
		f    func()
	}{
		{"Tracker.Record", func() { tr.Record(123 * time.Microsecond) }},
		{"Tracker.RecordValue", func() { tr.RecordValue(int64(time.Millisecond)) }},
		{"Tracker.RecordOn", func() { tr.RecordOn(3, int64(time.Millisecond)) }},
		{"Tracker.Record/clamped", func() { tr.Record(time.Hour); tr.Record(-1) }},
		{"Histogram.RecordValue", func() { h.RecordValue(42_000) }},
		{"Counter.Inc", func() { c.Inc() }},
		{"ShardedCounter.AddOn", func() { sc.AddOn(1, 2) }},
		{"ShardedCounter.Add", func() { sc.Add(2) }},
		{"Gauge.Add", func() { g.Add(1); g.Dec() }},
		{"CoarseClock.UnixNano", func() { _ = clk.UnixNano() }},
		{"SystemClock.UnixNano", func() { _ = SystemClock{}.UnixNano() }},
	}
	for _, tc := range cases {
		if n := testing.AllocsPerRun(1000, tc.f); n != 0 {
			t.Errorf("%s: %v allocs/op, want 0", tc.name, n)
		}
	}
}

// TestScrapeAllocations keeps a steady-state scrape into a reused buffer
// cheap: trackers reuse their snapshot histogram, so it must not allocate
// per tracker.
func TestScrapeAllocations(t *testing.T) {
	m := NewMetrics()
	for i := 0; i < 5; i++ {
		m.Counter("c_total", "", Label{"i", string(rune('a' + i))}).Inc()
	}
	m.Gauge("g", "").Set(1)
	m.GaugeFunc("gf", "", func() float64 { return 1.5 })
	tr := m.Tracker("lat_seconds", "", Options{Shards: 2})
	tr.Record(time.Millisecond)
	buf := m.WritePrometheus(nil)
	if n := testing.AllocsPerRun(100, func() { buf = m.WritePrometheus(buf[:0]) }); n != 0 {
		t.Errorf("WritePrometheus: %v allocs/op, want 0", n)
	}
	buf = m.WriteJSON(buf[:0])
	if n := testing.AllocsPerRun(100, func() { buf = m.WriteJSON(buf[:0]) }); n != 0 {
		t.Errorf("WriteJSON: %v allocs/op, want 0", n)
	}
}
