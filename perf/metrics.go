package perf

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/cpu"
)

// Counter is a monotonically increasing count. It is padded to its own cache
// line: counters are allocated together at registration and would otherwise
// false-share when different loops bump neighbours. Safe from any goroutine.
type Counter struct {
	_ cpu.CacheLinePad
	v atomic.Uint64
	_ cpu.CacheLinePad
}

// Inc adds 1.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Load returns the current count.
func (c *Counter) Load() uint64 { return c.v.Load() }

// ShardedCounter is a Counter split into padded per-shard cells, for counts
// bumped by every event loop on every message, where even a padded single
// atomic would bounce its cache line between cores. Load sums the cells.
// Safe from any goroutine.
type ShardedCounter struct {
	cells []paddedUint64
	mask  uint32
}

// NewShardedCounter returns an unregistered counter with shards cells,
// rounded up to a power of two and clamped to 1..MaxShards.
func NewShardedCounter(shards int) *ShardedCounter {
	n := shardCount(max(1, min(shards, MaxShards)))
	return &ShardedCounter{cells: make([]paddedUint64, n), mask: uint32(n - 1)}
}

type paddedUint64 struct {
	v atomic.Uint64
	_ cpu.CacheLinePad
}

// AddOn adds n to cell shard (reduced modulo the cell count). An event loop
// passing its own index never shares a cache line with another loop.
func (c *ShardedCounter) AddOn(shard int, n uint64) { c.cells[uint32(shard)&c.mask].v.Add(n) }

// Add adds n to the current P's cell, for callers without a stable index.
func (c *ShardedCounter) Add(n uint64) { c.cells[uint32(currentP())&c.mask].v.Add(n) }

// Load returns the sum of all cells. Concurrent adds may or may not be seen.
func (c *ShardedCounter) Load() uint64 {
	var sum uint64
	for i := range c.cells {
		sum += c.cells[i].v.Load()
	}
	return sum
}

// Gauge is an integer value that goes up and down (connections, rooms).
// Safe from any goroutine.
type Gauge struct {
	_ cpu.CacheLinePad
	v atomic.Int64
	_ cpu.CacheLinePad
}

// Set replaces the value.
func (g *Gauge) Set(v int64) { g.v.Store(v) }

// Add adds delta, which may be negative.
func (g *Gauge) Add(delta int64) { g.v.Add(delta) }

// Inc adds 1.
func (g *Gauge) Inc() { g.v.Add(1) }

// Dec subtracts 1.
func (g *Gauge) Dec() { g.v.Add(-1) }

// Load returns the current value.
func (g *Gauge) Load() int64 { return g.v.Load() }

// Label is one name="value" pair attached to a series. Label sets are fixed
// at registration; there is no per-increment label lookup.
type Label struct {
	Name, Value string
}

type kind uint8

const (
	kindCounter kind = iota + 1
	kindGauge
	kindSummary
)

func (k kind) String() string {
	switch k {
	case kindCounter:
		return "counter"
	case kindGauge:
		return "gauge"
	case kindSummary:
		return "summary"
	}
	return "untyped"
}

// family is every series sharing one metric name, as the exposition format
// groups them under one # HELP / # TYPE pair.
type family struct {
	name   string
	help   string
	kind   kind
	series []*series // sorted by labels
}

// series is one labelled time series. Exactly one value source is set.
type series struct {
	labels string // rendered `a="x",b="y"`, without braces; "" for none
	key    string // labels rendered as `a=x,b=y` for WriteJSON keys

	counter  *Counter
	sharded  *ShardedCounter
	cfunc    func() uint64
	gauge    *Gauge
	gfunc    func() float64
	tracker  *Tracker
	snapshot *Histogram // reused by each scrape of tracker; guarded by Metrics.mu
}

// Metrics is a registry of named counters, gauges and latency trackers that
// renders them as Prometheus text or compact JSON.
//
// Registration takes a mutex and is meant for startup; the returned Counter,
// Gauge and Tracker values are then updated lock-free (or per-shard locked)
// without touching the registry. Writers take the registry mutex, so scrapes
// are serialized with each other and with registration. Safe from any
// goroutine.
//
// Registering a name twice with the same type and labels returns the existing
// Counter or Gauge; the first registration's help text wins. An invalid name or label, a name reused with a different
// type, or a second func or tracker for the same series is a programmer
// error and panics, as http.ServeMux.Handle does for conflicting patterns:
// names are constants in code, never client input.
type Metrics struct {
	mu       sync.Mutex
	families []*family // sorted by name; guarded by mu
	hooks    []func()  // run before each write; guarded by mu
	runtime  bool      // RegisterRuntime done; guarded by mu
}

// NewMetrics returns an empty registry.
func NewMetrics() *Metrics { return &Metrics{} }

// Counter returns the counter name{labels}, creating it on first use.
func (m *Metrics) Counter(name, help string, labels ...Label) *Counter {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, existed := m.seriesLocked(name, help, kindCounter, labels)
	if existed {
		if s.counter == nil {
			panic("perf: metric " + name + " already registered with another counter source")
		}
		return s.counter
	}
	s.counter = new(Counter)
	return s.counter
}

// ShardedCounter returns the sharded counter name{labels}, creating it with
// shards cells (rounded up to a power of two) on first use.
func (m *Metrics) ShardedCounter(name, help string, shards int, labels ...Label) *ShardedCounter {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, existed := m.seriesLocked(name, help, kindCounter, labels)
	if existed {
		if s.sharded == nil {
			panic("perf: metric " + name + " already registered with another counter source")
		}
		return s.sharded
	}
	s.sharded = NewShardedCounter(shards)
	return s.sharded
}

// CounterFunc registers a counter whose value fn computes at scrape time,
// for counts kept elsewhere (per-loop stats, a library's own counters). fn
// runs under the registry lock and must be fast and must not call back into
// m.
func (m *Metrics) CounterFunc(name, help string, fn func() uint64, labels ...Label) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, existed := m.seriesLocked(name, help, kindCounter, labels)
	if existed {
		panic("perf: metric " + name + " already registered")
	}
	s.cfunc = fn
}

// OnScrape registers fn to run once at the start of every WritePrometheus
// and WriteJSON, before any func-backed value is read: a collector that
// reads an expensive source once per scrape (a stats call that walks every
// event loop, a table scan) and keeps the result for the CounterFunc and
// GaugeFunc funcs registered beside it, instead of each func reading the
// source again. fn runs under the registry lock, as those funcs do, so what
// it stores is guarded by that lock; it must be fast and must not call back
// into m. Hooks run in registration order.
func (m *Metrics) OnScrape(fn func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hooks = append(m.hooks, fn)
}

// Gauge returns the gauge name{labels}, creating it on first use.
func (m *Metrics) Gauge(name, help string, labels ...Label) *Gauge {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, existed := m.seriesLocked(name, help, kindGauge, labels)
	if existed {
		if s.gauge == nil {
			panic("perf: metric " + name + " already registered with another gauge source")
		}
		return s.gauge
	}
	s.gauge = new(Gauge)
	return s.gauge
}

// GaugeFunc registers a gauge whose value fn computes at scrape time. fn
// runs under the registry lock and must be fast and must not call back into
// m.
func (m *Metrics) GaugeFunc(name, help string, fn func() float64, labels ...Label) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, existed := m.seriesLocked(name, help, kindGauge, labels)
	if existed {
		panic("perf: metric " + name + " already registered")
	}
	s.gfunc = fn
}

// Summary registers t as the Prometheus summary name{labels}, exported in
// seconds with quantiles 0.5, 0.9, 0.99 and 0.999. By convention name ends
// in _seconds. Registering the same tracker again is a no-op.
func (m *Metrics) Summary(name, help string, t *Tracker, labels ...Label) {
	for _, l := range labels {
		if l.Name == "quantile" {
			panic("perf: summary " + name + " uses the reserved label quantile")
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, existed := m.seriesLocked(name, help, kindSummary, labels)
	if existed {
		if s.tracker != t {
			panic("perf: summary " + name + " already registered with another tracker")
		}
		return
	}
	s.tracker = t
}

// Tracker creates a Tracker with opts and registers it as Summary does.
// Invalid opts panic, like every other registration mistake.
func (m *Metrics) Tracker(name, help string, opts Options, labels ...Label) *Tracker {
	t := MustNewTracker(opts)
	m.Summary(name, help, t, labels...)
	return t
}

// seriesLocked finds or inserts the series name{labels}, keeping families
// sorted by name and series sorted by labels so output is deterministic
// without sorting on every scrape. m.mu is held on entry.
func (m *Metrics) seriesLocked(name, help string, k kind, labels []Label) (s *series, existed bool) {
	if !validMetricName(name) {
		panic("perf: invalid metric name " + `"` + name + `"`)
	}
	rendered, key := renderLabels(name, labels)
	i, found := slices.BinarySearchFunc(m.families, name, func(f *family, n string) int {
		return strings.Compare(f.name, n)
	})
	if !found {
		m.families = slices.Insert(m.families, i, &family{name: name, help: help, kind: k})
	}
	f := m.families[i]
	if f.kind != k {
		panic("perf: metric " + name + " registered as " + f.kind.String() + ", not " + k.String())
	}
	j, found := slices.BinarySearchFunc(f.series, rendered, func(s *series, l string) int {
		return strings.Compare(s.labels, l)
	})
	if found {
		return f.series[j], true
	}
	s = &series{labels: rendered, key: key}
	f.series = slices.Insert(f.series, j, s)
	return s, false
}

// renderLabels validates labels and renders them once, sorted by name, in
// both the Prometheus form (escaped values) and the JSON key form.
func renderLabels(metric string, labels []Label) (prom, key string) {
	if len(labels) == 0 {
		return "", ""
	}
	ls := slices.Clone(labels)
	slices.SortFunc(ls, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	var p, k []byte
	for i, l := range ls {
		if !validLabelName(l.Name) {
			panic("perf: metric " + metric + ": invalid label name " + `"` + l.Name + `"`)
		}
		if i > 0 {
			if ls[i-1].Name == l.Name {
				panic("perf: metric " + metric + ": duplicate label " + l.Name)
			}
			p = append(p, ',')
			k = append(k, ',')
		}
		p = append(p, l.Name...)
		p = append(p, `="`...)
		p = appendLabelValue(p, l.Value)
		p = append(p, '"')
		k = append(k, l.Name...)
		k = append(k, '=')
		k = append(k, l.Value...)
	}
	return string(p), string(k)
}

// validMetricName matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func validMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == ':' || isLetter(c) || (i > 0 && isDigit(c))) {
			return false
		}
	}
	return true
}

// validLabelName matches [a-zA-Z_][a-zA-Z0-9_]* minus the reserved __ prefix.
func validLabelName(s string) bool {
	if s == "" || strings.HasPrefix(s, "__") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || isLetter(c) || (i > 0 && isDigit(c))) {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
