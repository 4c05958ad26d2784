package perf

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// benchValues cycles through realistic latencies (10µs..~20ms) so records
// touch many buckets instead of one hot cache line.
var benchValues = func() [1024]int64 {
	var v [1024]int64
	for i := range v {
		v[i] = int64(10*time.Microsecond) << (i % 11)
	}
	return v
}()

func BenchmarkTrackerRecord(b *testing.B) {
	b.Run("path=Record", func(b *testing.B) {
		tr := mustTracker(b, Options{})
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			tr.RecordValue(benchValues[i&1023])
		}
	})
	b.Run("path=RecordOn", func(b *testing.B) {
		tr := mustTracker(b, Options{})
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			tr.RecordOn(0, benchValues[i&1023])
		}
	})
	b.Run("path=Histogram", func(b *testing.B) {
		h := mustHistogram(b)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			h.RecordValue(benchValues[i&1023])
		}
	})
}

func BenchmarkTrackerRecordParallel(b *testing.B) {
	b.Run("path=Record", func(b *testing.B) {
		tr := mustTracker(b, Options{})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				tr.RecordValue(benchValues[i&1023])
			}
		})
	})
	b.Run("path=RecordOn", func(b *testing.B) {
		tr := mustTracker(b, Options{})
		var next atomic.Int32
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			// One shard per goroutine, as one per event loop.
			shard := int(next.Add(1) - 1)
			for i := 0; pb.Next(); i++ {
				tr.RecordOn(shard, benchValues[i&1023])
			}
		})
	})
	// Baseline: the obvious single mutex around one histogram.
	b.Run("path=baseline-one-mutex", func(b *testing.B) {
		h := hdr.New(int64(DefaultLowest), int64(DefaultHighest), DefaultSignificantDigits)
		var mu sync.Mutex
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				mu.Lock()
				_ = h.RecordValue(benchValues[i&1023])
				mu.Unlock()
			}
		})
	})
}

func BenchmarkCounterParallel(b *testing.B) {
	b.Run("type=Counter", func(b *testing.B) {
		var c Counter
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.Inc()
			}
		})
	})
	b.Run("type=ShardedCounter", func(b *testing.B) {
		c := NewMetrics().ShardedCounter("c_total", "", 64)
		var next atomic.Int32
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			shard := int(next.Add(1) - 1)
			for pb.Next() {
				c.AddOn(shard, 1)
			}
		})
	})
}

func BenchmarkSnapshot(b *testing.B) {
	tr := mustTracker(b, Options{})
	for i := 0; i < 100_000; i++ {
		tr.RecordOn(i, benchValues[i&1023])
	}
	var h *Histogram
	b.ReportAllocs()
	for b.Loop() {
		h = tr.SnapshotInto(h)
	}
	b.ReportMetric(float64(tr.Shards()), "shards")
}

// benchRegistry is a typical server registry: 10 counters (some labelled),
// 5 gauges, 5 populated trackers.
func benchRegistry(b *testing.B) *Metrics {
	m := NewMetrics()
	for i := 0; i < 10; i++ {
		m.Counter("meshfast_events_total", "Events.", Label{"kind", "k" + strconv.Itoa(i)}).Add(uint64(i * 1000))
	}
	for i := 0; i < 4; i++ {
		m.Gauge("meshfast_gauge_"+strconv.Itoa(i), "A gauge.").Set(int64(i))
	}
	m.GaugeFunc("meshfast_ratio", "A func gauge.", func() float64 { return 0.5 })
	for i := 0; i < 5; i++ {
		tr := m.Tracker("meshfast_duration_seconds", "Latency.", Options{}, Label{"kind", "k" + strconv.Itoa(i)})
		for j := 0; j < 10_000; j++ {
			tr.RecordOn(j, benchValues[j&1023])
		}
	}
	return m
}

func BenchmarkWritePrometheus(b *testing.B) {
	b.Run("metrics=20", func(b *testing.B) {
		m := benchRegistry(b)
		buf := m.WritePrometheus(nil)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			buf = m.WritePrometheus(buf[:0])
		}
	})
	b.Run("metrics=20/runtime", func(b *testing.B) {
		m := benchRegistry(b)
		m.RegisterRuntime()
		buf := m.WritePrometheus(nil)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			buf = m.WritePrometheus(buf[:0])
		}
	})
}

func BenchmarkWriteJSON(b *testing.B) {
	m := benchRegistry(b)
	buf := m.WriteJSON(nil)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = m.WriteJSON(buf[:0])
	}
}

var sinkNano int64

func BenchmarkClock(b *testing.B) {
	b.Run("clock=Coarse", func(b *testing.B) {
		c := NewCoarseClock(0)
		c.Start()
		defer c.Stop()
		b.ReportAllocs()
		for b.Loop() {
			sinkNano = c.UnixNano()
		}
	})
	b.Run("clock=System", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkNano = SystemClock{}.UnixNano()
		}
	})
	b.Run("clock=time.Now", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkNano = time.Now().UnixNano()
		}
	})
}
