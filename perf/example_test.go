package perf_test

import (
	"fmt"
	"time"

	"github.com/meshfast/meshfast/perf"
)

func ExampleTracker() {
	lat := perf.MustNewTracker(perf.Options{Shards: 4})
	// Event loop 2 records into its own shard.
	for i := 1; i <= 100; i++ {
		lat.RecordOn(2, int64(time.Duration(i)*time.Millisecond))
	}
	s := lat.Summary()
	fmt.Println(s.Count, s.P50.Round(time.Millisecond), s.P99.Round(time.Millisecond))
	// Output: 100 50ms 99ms
}

func ExampleHistogram_Merge() {
	// Each load-generator worker ships its histogram encoded...
	worker := perf.MustNewTracker(perf.Options{})
	worker.Record(3 * time.Millisecond)
	enc, _ := worker.Snapshot().Encode()

	// ...and the coordinator merges them.
	total, _ := perf.NewHistogram(perf.Options{})
	h, _ := perf.DecodeHistogram(enc)
	total.Merge(h)
	fmt.Println(total.Count(), total.Max().Round(time.Microsecond))
	// Output: 1 3ms
}

func ExampleMetrics_WritePrometheus() {
	m := perf.NewMetrics()
	m.Counter("meshfast_errors_total", "Errors by kind.", perf.Label{Name: "kind", Value: "parse"}).Add(2)
	m.Gauge("meshfast_connections", "Open connections.").Set(3)
	fmt.Print(string(m.WritePrometheus(nil)))
	// Output:
	// # HELP meshfast_connections Open connections.
	// # TYPE meshfast_connections gauge
	// meshfast_connections 3
	// # HELP meshfast_errors_total Errors by kind.
	// # TYPE meshfast_errors_total counter
	// meshfast_errors_total{kind="parse"} 2
}
