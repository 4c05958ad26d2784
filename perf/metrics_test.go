package perf

import (
	"encoding/json"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWritePrometheus(t *testing.T) {
	m := NewMetrics()
	m.Counter("zz_msgs_total", "Messages.").Add(7)
	m.Counter("zz_msgs_total", "Messages.").Inc() // same series: get, not create
	m.Counter("errors_total", "Errors by kind.", Label{"kind", "parse"}).Add(2)
	m.Counter("errors_total", "Errors by kind.", Label{"kind", "slow"}).Add(3)
	sc := m.ShardedCounter("bytes_total", "Bytes.", 4)
	sc.AddOn(0, 10)
	sc.AddOn(5, 1)
	sc.Add(100)
	m.CounterFunc("ext_total", "External.", func() uint64 { return 42 })
	g := m.Gauge("conns", "Open connections.")
	g.Add(5)
	g.Dec()
	m.GaugeFunc("ratio", "Help with \\ backslash\nand newline.", func() float64 { return 0.25 })
	m.GaugeFunc("nan_gauge", "Not a number.", func() float64 { return math.NaN() })
	m.GaugeFunc("esc", "Escaped label.", func() float64 { return 1 },
		Label{"path", `a\b"c` + "\nd"}, Label{"a", "first"})
	lat := m.Tracker("cmd_duration_seconds", "Command latency.", Options{}, Label{"kind", "command"})
	for i := 1; i <= 1000; i++ {
		lat.Record(time.Duration(i) * time.Microsecond)
	}
	m.Tracker("cmd_duration_seconds", "Command latency.", Options{}, Label{"kind", "publish"})

	out := string(m.WritePrometheus(nil))
	t.Logf("\n%s", out)
	s := parseProm(t, out)

	want := map[string]float64{
		"zz_msgs_total":                8,
		"errors_total{kind=parse}":     2,
		"errors_total{kind=slow}":      3,
		"bytes_total":                  111,
		"ext_total":                    42,
		"conns":                        4,
		"ratio":                        0.25,
		"esc{a=first,path=a\\b\"c\nd}": 1,
		"cmd_duration_seconds_count{kind=command}": 1000,
		"cmd_duration_seconds_count{kind=publish}": 0,
	}
	for k, v := range want {
		got, ok := s[k]
		if !ok {
			t.Errorf("missing %s", k)
			continue
		}
		if got.value != v {
			t.Errorf("%s = %v, want %v", k, got.value, v)
		}
	}
	if v := s["nan_gauge"].value; !math.IsNaN(v) {
		t.Errorf("nan_gauge = %v, want NaN", v)
	}
	if v := s["cmd_duration_seconds{kind=publish,quantile=0.99}"].value; !math.IsNaN(v) {
		t.Errorf("empty summary quantile = %v, want NaN", v)
	}
	for q, want := range map[string]float64{"0.5": 500e-6, "0.9": 900e-6, "0.99": 990e-6, "0.999": 999e-6} {
		got := s["cmd_duration_seconds{kind=command,quantile="+q+"}"].value
		if math.Abs(got-want) > want*0.001+1e-6 {
			t.Errorf("quantile %s = %v, want %v", q, got, want)
		}
	}
	if got, want := s["cmd_duration_seconds_sum{kind=command}"].value, 500500e-6; math.Abs(got-want) > 1e-9 {
		t.Errorf("summary _sum = %v, want %v", got, want)
	}
	if !strings.Contains(out, "# TYPE cmd_duration_seconds summary\n") ||
		!strings.Contains(out, "# TYPE errors_total counter\n") ||
		!strings.Contains(out, "# TYPE conns gauge\n") {
		t.Error("missing TYPE lines")
	}
	if strings.Count(out, "# HELP errors_total ") != 1 {
		t.Error("labelled series must share one HELP/TYPE")
	}
	if !strings.Contains(out, `# HELP ratio Help with \\ backslash\nand newline.`) {
		t.Error("HELP text not escaped")
	}
	// Families sorted by name, series by labels.
	if strings.Index(out, "bytes_total") > strings.Index(out, "zz_msgs_total") ||
		strings.Index(out, `kind="parse"`) > strings.Index(out, `kind="slow"`) {
		t.Error("output not sorted")
	}
	if again := string(m.WritePrometheus(nil)); again != out {
		t.Error("output not deterministic")
	}
}

func TestWritePrometheusEmpty(t *testing.T) {
	if out := NewMetrics().WritePrometheus(nil); len(out) != 0 {
		t.Fatalf("empty registry wrote %q", out)
	}
	dst := []byte("keep")
	if out := NewMetrics().WritePrometheus(dst); string(out) != "keep" {
		t.Fatal("WritePrometheus must append to dst")
	}
}

func TestWriteJSON(t *testing.T) {
	m := NewMetrics()
	m.Counter("msgs_total", "Messages.").Add(3)
	m.Counter("errors_total", "Errors.", Label{"kind", "quo\"te\x01"}).Inc()
	m.Gauge("conns", "Conns.").Set(-2)
	m.GaugeFunc("inf", "Inf.", func() float64 { return math.Inf(1) })
	tr := m.Tracker("lat_seconds", "Latency.", Options{}, Label{"kind", "command"})
	tr.Record(10 * time.Microsecond)
	tr.Record(time.Millisecond)

	out := m.WriteJSON(nil)
	t.Logf("%s", out)
	var got struct {
		Counters map[string]float64
		Gauges   map[string]*float64
		Trackers map[string]struct {
			Count int64
			P50   float64 `json:"p50_us"`
			P99   float64 `json:"p99_us"`
			Max   float64 `json:"max_us"`
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("invalid JSON %s: %v", out, err)
	}
	if got.Counters["msgs_total"] != 3 || got.Counters["errors_total{kind=quo\"te\x01}"] != 1 {
		t.Errorf("counters = %v", got.Counters)
	}
	if v := got.Gauges["conns"]; v == nil || *v != -2 {
		t.Errorf("gauges = %v", got.Gauges)
	}
	if v, ok := got.Gauges["inf"]; !ok || v != nil {
		t.Errorf("non-finite gauge must be null, got %v", v)
	}
	lat := got.Trackers["lat_seconds{kind=command}"]
	if lat.Count != 2 || math.Abs(lat.P50-10) > 0.52 || math.Abs(lat.P99-1000) > 1 || math.Abs(lat.Max-1000) > 1 {
		t.Errorf("tracker = %+v", lat)
	}
	if e := NewMetrics().WriteJSON(nil); string(e) != `{"counters":{},"gauges":{},"trackers":{}}` {
		t.Errorf("empty JSON = %s", e)
	}
}

func TestRegisterRuntime(t *testing.T) {
	m := NewMetrics()
	m.RegisterRuntime()
	m.RegisterRuntime() // idempotent
	s := parseProm(t, string(m.WritePrometheus(nil)))
	for _, name := range []string{"go_goroutines", "go_memory_classes_heap_objects_bytes", "go_gc_heap_goal_bytes", "go_gc_cycles_total"} {
		if v, ok := s[name]; !ok || !(v.value >= 0) {
			t.Errorf("%s = %v, %v", name, v.value, ok)
		}
	}
	if s["go_goroutines"].value < 1 || s["go_memory_classes_heap_objects_bytes"].value <= 0 {
		t.Error("runtime values implausible")
	}
	if _, ok := readRSS(); ok {
		if v := s["process_resident_memory_bytes"].value; v < 1<<20 {
			t.Errorf("RSS = %v, implausibly small", v)
		}
	}
}

func TestRegistrationPanics(t *testing.T) {
	tr := mustTracker(t, Options{})
	cases := map[string]func(m *Metrics){
		"bad name":        func(m *Metrics) { m.Counter("9bad", "") },
		"empty name":      func(m *Metrics) { m.Counter("", "") },
		"bad label":       func(m *Metrics) { m.Counter("ok", "", Label{"bad-label", "x"}) },
		"reserved label":  func(m *Metrics) { m.Counter("ok", "", Label{"__x", "x"}) },
		"duplicate label": func(m *Metrics) { m.Counter("ok", "", Label{"a", "x"}, Label{"a", "y"}) },
		"type conflict": func(m *Metrics) {
			m.Counter("x", "")
			m.Gauge("x", "")
		},
		"source conflict": func(m *Metrics) {
			m.Counter("x", "")
			m.ShardedCounter("x", "", 2)
		},
		"second func": func(m *Metrics) {
			m.GaugeFunc("x", "", func() float64 { return 0 })
			m.GaugeFunc("x", "", func() float64 { return 1 })
		},
		"second tracker": func(m *Metrics) {
			m.Summary("x", "", tr)
			m.Summary("x", "", mustTracker(t, Options{}))
		},
		"quantile label": func(m *Metrics) { m.Summary("x", "", tr, Label{"quantile", "1"}) },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f(NewMetrics())
		})
	}
	// Re-registering the same tracker is fine.
	m := NewMetrics()
	m.Summary("x_seconds", "", tr)
	m.Summary("x_seconds", "", tr)
}

// TestMetricsConcurrent updates, registers and scrapes at once, for -race.
func TestMetricsConcurrent(t *testing.T) {
	m := NewMetrics()
	c := m.Counter("c_total", "")
	sc := m.ShardedCounter("s_total", "", 4)
	g := m.Gauge("g", "")
	tr := m.Tracker("t_seconds", "", Options{Shards: 4})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				c.Inc()
				sc.AddOn(w, 1)
				g.Add(1)
				tr.RecordOn(w, int64(i)*1000)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		var buf []byte
		for i := 0; i < 50; i++ {
			buf = m.WritePrometheus(buf[:0])
			buf = m.WriteJSON(buf[:0])
			m.Counter("late_total", "", Label{"i", string(rune('a' + i%26))}).Inc()
		}
	}()
	wg.Wait()
	s := parseProm(t, string(m.WritePrometheus(nil)))
	if s["c_total"].value != 8000 || s["s_total"].value != 8000 || s["g"].value != 8000 || s["t_seconds_count"].value != 8000 {
		t.Fatalf("lost updates: %v %v %v %v", s["c_total"], s["s_total"], s["g"], s["t_seconds_count"])
	}
}

// TestOnScrape checks that a scrape hook runs once per write, before the
// func-backed values it feeds are read, for both output forms.
func TestOnScrape(t *testing.T) {
	m := NewMetrics()
	var hooks, reads int
	var snap uint64
	m.OnScrape(func() { hooks++; snap = uint64(hooks * 10) })
	m.CounterFunc("a_total", "A.", func() uint64 { reads++; return snap })
	m.CounterFunc("b_total", "B.", func() uint64 { reads++; return snap + 1 })
	m.GaugeFunc("c", "C.", func() float64 { reads++; return float64(snap + 2) })

	s := parseProm(t, string(m.WritePrometheus(nil)))
	if hooks != 1 || reads != 3 {
		t.Fatalf("one scrape: %d hook runs, %d reads; want 1 and 3", hooks, reads)
	}
	if s["a_total"].value != 10 || s["b_total"].value != 11 || s["c"].value != 12 {
		t.Fatalf("values not from this scrape's hook: %+v", s)
	}
	var js struct {
		Counters map[string]float64 `json:"counters"`
	}
	if err := json.Unmarshal(m.WriteJSON(nil), &js); err != nil {
		t.Fatal(err)
	}
	if hooks != 2 || js.Counters["a_total"] != 20 {
		t.Fatalf("WriteJSON: %d hook runs, a_total %v; want 2 and 20", hooks, js.Counters["a_total"])
	}
}
