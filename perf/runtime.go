package perf

import (
	"math"
	"runtime/metrics"
)

// runtimeGauges maps runtime/metrics samples to exported names. Names follow
// client_golang's runtime/metrics collector so dashboards carry over.
var runtimeGauges = [...]struct {
	sample, name, help string
	counter            bool
}{
	{"/sched/goroutines:goroutines", "go_goroutines", "Number of goroutines that currently exist.", false},
	{"/sched/gomaxprocs:threads", "go_sched_gomaxprocs_threads", "Current runtime.GOMAXPROCS setting.", false},
	{"/memory/classes/heap/objects:bytes", "go_memory_classes_heap_objects_bytes", "Memory occupied by live and not-yet-swept heap objects.", false},
	{"/memory/classes/total:bytes", "go_memory_classes_total_bytes", "All memory mapped by the Go runtime into the current process.", false},
	{"/gc/heap/goal:bytes", "go_gc_heap_goal_bytes", "Heap size target for the end of the GC cycle.", false},
	{"/gc/cycles/total:gc-cycles", "go_gc_cycles_total", "Count of completed GC cycles.", true},
}

// runtimeStats holds one scrape's worth of runtime readings. refresh runs as
// a Metrics hook, and the registered funcs read the cached values, so one
// scrape costs one metrics.Read and one statm read however many series use
// them. All fields are guarded by the owning Metrics.mu.
type runtimeStats struct {
	samples []metrics.Sample
	rss     float64
}

func (r *runtimeStats) refresh() {
	// runtime/metrics reads these without stopping the world, unlike
	// runtime.ReadMemStats, and does not allocate for scalar samples.
	metrics.Read(r.samples)
	if rss, ok := readRSS(); ok {
		r.rss = float64(rss)
	} else {
		r.rss = math.NaN()
	}
}

func (r *runtimeStats) value(i int) float64 {
	v := r.samples[i].Value
	switch v.Kind() {
	case metrics.KindUint64:
		return float64(v.Uint64())
	case metrics.KindFloat64:
		return v.Float64()
	}
	return math.NaN()
}

// RegisterRuntime adds Go runtime gauges (goroutines, GOMAXPROCS, heap,
// total runtime memory, GC goal and cycles) and, where /proc/self/statm
// exists, process_resident_memory_bytes. Values are read once per scrape.
// Samples the running Go version does not support are skipped. Calling it
// again is a no-op.
func (m *Metrics) RegisterRuntime() {
	m.mu.Lock()
	if m.runtime {
		m.mu.Unlock()
		return
	}
	m.runtime = true
	r := &runtimeStats{samples: make([]metrics.Sample, len(runtimeGauges))}
	for i, g := range runtimeGauges {
		r.samples[i].Name = g.sample
	}
	r.refresh()
	m.hooks = append(m.hooks, r.refresh)
	m.mu.Unlock()

	for i, g := range runtimeGauges {
		if r.samples[i].Value.Kind() == metrics.KindBad {
			continue
		}
		if g.counter {
			m.CounterFunc(g.name, g.help, func() uint64 { return uint64(r.value(i)) })
		} else {
			m.GaugeFunc(g.name, g.help, func() float64 { return r.value(i) })
		}
	}
	if _, ok := readRSS(); ok {
		m.GaugeFunc("process_resident_memory_bytes", "Resident memory size in bytes.",
			func() float64 { return r.rss })
	}
}
