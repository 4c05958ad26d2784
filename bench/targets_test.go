package bench

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runOf builds a run from name/value pairs.
func runOf(label string, kv ...any) *RunResult {
	r := &RunResult{Label: label}
	for i := 0; i < len(kv); i += 2 {
		var v float64
		switch x := kv[i+1].(type) {
		case int:
			v = float64(x)
		case float64:
			v = x
		}
		r.add(kv[i].(string), v, "")
	}
	return r
}

func reportOf(scenario string, o Options, runs ...*RunResult) *Report {
	o.Scenario = scenario
	if o.BaselineLabel == "" {
		o.BaselineLabel = DefaultBaselineLabel
	}
	return &Report{Scenario: scenario, Options: o, Runs: runs}
}

// find returns the one result named target, failing unless there is exactly one.
func find(t *testing.T, res []TargetResult, target string) TargetResult {
	t.Helper()
	var got []TargetResult
	for _, r := range res {
		if r.Target == target {
			got = append(got, r)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%d results for %q in %+v", len(got), target, res)
	}
	return got[0]
}

func absent(t *testing.T, res []TargetResult, target string) {
	t.Helper()
	for _, r := range res {
		if r.Target == target {
			t.Fatalf("unexpected %+v", r)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestTargetsIdle(t *testing.T) {
	for _, c := range []struct {
		rss  float64
		want TargetStatus
	}{{1213, TargetMet}, {1536, TargetMet}, {1024, TargetStretch}, {1537, TargetMissed}} {
		rep := reportOf(ScenarioIdle, Options{Conns: 19000},
			runOf("meshfast", "rss per extra connection", c.rss, "heap per extra connection", 1100))
		got := find(t, CheckTargets([]*Report{rep}), "idle memory per connection (RSS slope)")
		if got.Status != c.want || got.Value != c.rss || !strings.Contains(got.Note, "1100") {
			t.Errorf("rss %v: %+v, want %s", c.rss, got, c.want)
		}
	}
	// A report without the slope (one sample) says nothing.
	if res := CheckTargets([]*Report{reportOf(ScenarioIdle, Options{}, runOf("meshfast"))}); len(res) != 0 {
		t.Fatalf("%+v", res)
	}
}

func TestTargetsConnect(t *testing.T) {
	rep := reportOf(ScenarioConnect, Options{Conns: 10000},
		runOf("meshfast", "handshakes/s of tcp connects/s", 58.7, "handshakes/s", 18458),
		runOf("floor", "handshakes/s of tcp connects/s", 72.7, "handshakes/s", 16606))
	got := find(t, CheckTargets([]*Report{rep}), "handshakes/s of TCP connects/s")
	if got.Status != TargetMissed || got.Value != 58.7 || !strings.Contains(got.Note, "72.7%") ||
		!strings.Contains(got.Note, "1.11×") {
		t.Fatalf("%+v", got)
	}
	rep.Runs[0].Metrics[0].Value = 86
	if got := find(t, CheckTargets([]*Report{rep}), "handshakes/s of TCP connects/s"); got.Status != TargetStretch {
		t.Fatalf("%+v", got)
	}
	rep.Runs[0].Metrics[0].Value = 70
	if got := find(t, CheckTargets([]*Report{rep}), "handshakes/s of TCP connects/s"); got.Status != TargetMet {
		t.Fatalf("%+v", got)
	}
}

// A paced run (everyone keeps up) compares CPU per delivery and checks the
// latency targets.
func TestTargetsFanoutPaced(t *testing.T) {
	o := Options{Conns: 1000}
	o.Fanout.Rate, o.Ceiling.Rate = 20, 20
	rep := reportOf(ScenarioFanout, o,
		runOf("meshfast", "subscribers", 1000, "publishes/s", 20, "deliveries/s", 20000,
			"server frames per write", 1.01, "server cpu per delivery", 12000, "delivery p99", 9500,
			"client cpu per delivery", 12000),
		runOf("baseline", "subscribers", 1000, "publishes/s", 20, "deliveries/s", 20000,
			"server cpu per delivery", 25000, "delivery p99", 12000),
		runOf("ceiling", "deliveries/s", 20000, "server cpu per delivery", 10000, "delivery p99", 7000))
	rep.Host.CPUs = 2
	res := CheckTargets([]*Report{rep})
	if c := find(t, res, "fanout vs write(2) ceiling"); !near(c.Value, 10000.0/12000) || c.Status != TargetMet ||
		!strings.Contains(c.Note, "core-second") {
		t.Fatalf("ceiling: %+v", c)
	}
	if b := find(t, res, "fanout vs goroutine-per-connection baseline"); !near(b.Value, 25000.0/12000) || b.Status != TargetMet ||
		!strings.Contains(b.Note, "the ceiling itself 2.50× the baseline") {
		t.Fatalf("baseline: %+v", b)
	}
	// 1.2 × 7 ms + 2 ms = 10.4 ms
	if l := find(t, res, "p99 publish-to-receive vs ceiling"); l.Value != 9.5 || l.Status != TargetMet || !strings.Contains(l.Want, "10.4") {
		t.Fatalf("latency: %+v", l)
	}
	// (10 µs written + 12 µs read) × 990 deliveries ÷ 2 cores = 10.9 ms
	if l := find(t, res, "p99 publish-to-receive, 1k subscribers"); l.Status != TargetMet || !strings.Contains(l.Note, "7.0 ms") ||
		!strings.Contains(l.Note, "CPU floor 10.9 ms") {
		t.Fatalf("latency 1k: %+v", l)
	}
	// Without the host's cores or the client's cost there is no floor.
	rep.Host.CPUs = 0
	if l := find(t, CheckTargets([]*Report{rep}), "p99 publish-to-receive, 1k subscribers"); strings.Contains(l.Note, "floor") {
		t.Fatalf("latency 1k without cores: %+v", l)
	}
	rep.Host.CPUs = 2
	absent(t, res, "high-rate frames per write")

	// Dearer than 1/0.8 of the ceiling, less than twice as cheap as the
	// baseline, slower than 1.2× the ceiling + 2 ms.
	rep.Runs[0].Metrics[4].Value = 12600
	rep.Runs[0].Metrics[5].Value = 10500
	rep.Runs[1].Metrics[3].Value = 18000 // the baseline: now within 2× of the ceiling
	res = CheckTargets([]*Report{rep})
	if b := find(t, res, "fanout vs goroutine-per-connection baseline"); !strings.Contains(b.Note, "the ceiling itself 1.80× the baseline") {
		t.Fatalf("baseline: %+v", b)
	}
	for _, name := range []string{"fanout vs write(2) ceiling", "fanout vs goroutine-per-connection baseline",
		"p99 publish-to-receive vs ceiling", "p99 publish-to-receive, 1k subscribers"} {
		if r := find(t, res, name); r.Status != TargetMissed {
			t.Errorf("%s: %+v", name, r)
		}
	}
	if !Missed(res) {
		t.Fatal("Missed = false")
	}
}

// At saturation deliveries/s are compared and latency is not checked.
func TestTargetsFanoutSaturated(t *testing.T) {
	o := Options{Conns: 5000}
	o.Fanout.Rate = 100 // ceiling back to back (Ceiling.Rate 0)
	rep := reportOf(ScenarioFanout, o,
		runOf("meshfast", "subscribers", 5000, "publishes/s", 100, "deliveries/s", 400000,
			"server frames per write", 3.1, "server cpu per delivery", 2500, "delivery p99", 120000),
		runOf("baseline", "subscribers", 5000, "publishes/s", 100, "deliveries/s", 200000,
			"server cpu per delivery", 10000, "delivery p99", 10e6),
		runOf("ceiling", "deliveries/s", 160000, "server cpu per delivery", 6000, "delivery p99", 30000))
	res := CheckTargets([]*Report{rep})
	if c := find(t, res, "fanout vs write(2) ceiling"); c.Value != 2.5 || c.Status != TargetMet ||
		!strings.Contains(c.Note, "saturation") || !strings.Contains(c.Note, "3.1 frames per write") {
		t.Fatalf("ceiling: %+v", c)
	}
	// Coalescing frames, a server may pass the ceiling: its lead is no limit.
	if b := find(t, res, "fanout vs goroutine-per-connection baseline"); b.Value != 2 || b.Status != TargetMet ||
		strings.Contains(b.Note, "ceiling itself") {
		t.Fatalf("baseline: %+v", b)
	}
	absent(t, res, "p99 publish-to-receive vs ceiling")
	absent(t, res, "high-rate frames per write")
	// The baseline kept up: compare CPU, which a saturated run cannot win by rate.
	rep.Runs[1].Metrics[2].Value = 500000
	if b := find(t, CheckTargets([]*Report{rep}), "fanout vs goroutine-per-connection baseline"); b.Value != 4 {
		t.Fatalf("baseline by CPU: %+v", b)
	}
}

func TestTargetsFanoutHighRate(t *testing.T) {
	o := Options{Conns: 1000}
	o.Fanout.Rate = 2000
	rep := reportOf(ScenarioFanout, o,
		runOf("meshfast", "subscribers", 1000, "publishes/s", 1970, "deliveries/s", 1.97e6,
			"server frames per write", 27.1, "server cpu per delivery", 522, "delivery p99", 145000))
	res := CheckTargets([]*Report{rep})
	if r := find(t, res, "high-rate deliveries per server core-second"); !near(r.Value, 1e9/522) || r.Status != TargetMet {
		t.Fatalf("%+v", r)
	}
	if r := find(t, res, "high-rate frames per write"); r.Value != 27.1 || r.Status != TargetMet {
		t.Fatalf("%+v", r)
	}
	absent(t, res, "p99 publish-to-receive, 1k subscribers")
	rep.Runs[0].Metrics[3].Value = 8
	rep.Runs[0].Metrics[4].Value = 1200
	for _, r := range CheckTargets([]*Report{rep}) {
		if r.Status != TargetMissed {
			t.Errorf("%+v", r)
		}
	}
	// Closed-loop publishers count as high rate too.
	rep.Options.Fanout.Rate = -1
	find(t, CheckTargets([]*Report{rep}), "high-rate frames per write")
}

func TestTargetsSimAndConnections(t *testing.T) {
	o := Options{}
	o.Sim.Conns = 1000000
	rep := reportOf(ScenarioSim, o, runOf("sim", "simulated connections", 1e6, "cpu ns per subscriber per broadcast", 65.8))
	if r := find(t, CheckTargets([]*Report{rep}), "simulated broadcast CPU per subscriber"); r.Status != TargetMet || r.Source != "sim 1M" {
		t.Fatalf("%+v", r)
	}
	// Cheap but small proves nothing about a million.
	rep.Options.Sim.Conns = 1000
	rep.Runs[0].Metrics[0].Value = 1000
	if r := find(t, CheckTargets([]*Report{rep}), "simulated broadcast CPU per subscriber"); r.Status != TargetMissed || !strings.Contains(r.Note, "only 1k") {
		t.Fatalf("%+v", r)
	}

	idle := reportOf(ScenarioIdle, Options{Conns: 102000}, runOf("meshfast", "connections", 99000)) // some failed
	idle.Runs[0].Workers, idle.Runs[0].Targets = 11, []string{"127.0.0.1:9301", "127.0.0.1:9302"}
	if r := find(t, CheckTargets([]*Report{idle}), "connections held"); r.Status != TargetMissed ||
		!strings.Contains(r.Note, "2 server address(es), 11 load-generator processes") {
		t.Fatalf("%+v", r)
	}
	idle.Runs[0].Metrics[0].Value = 102000
	if r := find(t, CheckTargets([]*Report{idle}), "connections held"); r.Status != TargetMet {
		t.Fatalf("%+v", r)
	}
	idle.Options.Conns = 19000
	absent(t, CheckTargets([]*Report{idle}), "connections held")
}

func TestTargetsMultiNode(t *testing.T) {
	const name = "multi-node fan-out vs one node, deliveries per server core-second"
	rep := reportOf(ScenarioMultiNode, Options{Conns: 10000},
		runOf("3 nodes", "fanout subscribers", 10000, "fanout deliveries per server core-second", 190000),
		runOf("1 node", "fanout subscribers", 10000, "fanout deliveries per server core-second", 260000))
	if r := find(t, CheckTargets([]*Report{rep}), name); r.Status != TargetMet || !near(r.Value, 190000.0/260000) {
		t.Fatalf("%+v", r)
	}
	rep.Runs[0].Metrics[1].Value = 120000
	if r := find(t, CheckTargets([]*Report{rep}), name); r.Status != TargetMissed {
		t.Fatalf("%+v", r)
	}
	// Fewer subscribers than the target is stated at prove nothing.
	rep.Runs[0].Metrics[0].Value, rep.Runs[0].Metrics[1].Value = 30, 190000
	if r := find(t, CheckTargets([]*Report{rep}), name); r.Status != TargetMissed || !strings.Contains(r.Note, "only 30") {
		t.Fatalf("%+v", r)
	}
	rep.Runs = rep.Runs[:1]
	absent(t, CheckTargets([]*Report{rep}), name)
}

// TestTargetsFromRunReport checks a real report, through its JSON file.
func TestTargetsFromRunReport(t *testing.T) {
	o := quick(ScenarioSim)
	o.Sim = SimOptions{Conns: 300, Publishes: 3, Loops: 2}
	o.Out = filepath.Join(t.TempDir(), "sim.json")
	ran := run(t, o)
	rep, err := ReadReport(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	r := find(t, CheckTargets([]*Report{rep}), "simulated broadcast CPU per subscriber")
	if want := metric(t, ran.Runs[0], "cpu ns per subscriber per broadcast"); r.Value != want || r.Status != TargetMissed {
		t.Fatalf("%+v, want value %v, missed (300 subscribers)", r, want)
	}
	var b strings.Builder
	if err := WriteTargets(&b, []TargetResult{r}); err != nil || !strings.Contains(b.String(), "sim 300") {
		t.Fatalf("table %q: %v", b.String(), err)
	}
}

func TestReadReportErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadReport(filepath.Join(dir, "none.json")); err == nil {
		t.Error("missing file read")
	}
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte(`{"scenario":`), 0o644)
	if _, err := ReadReport(bad); err == nil {
		t.Error("truncated JSON read")
	}
	empty := filepath.Join(dir, "empty.json")
	_ = os.WriteFile(empty, []byte(`{"scenario":"idle","runs":[]}`), 0o644)
	if _, err := ReadReport(empty); err == nil {
		t.Error("report without runs read")
	}
}

func TestSummarize(t *testing.T) {
	r := func(target, source, want string, v float64, st TargetStatus) TargetResult {
		return TargetResult{Target: target, Source: source, Want: want, Value: v, Status: st, Note: "n" + formatValue(v)}
	}
	res := []TargetResult{
		r("ratio", "connect 10k", "≥ 70", 66, TargetMissed),
		r("memory", "idle 19k", "≤ 1536", 1400, TargetMet),
		r("ratio", "connect 10k", "≥ 70", 72, TargetMet),
		r("ratio", "connect 19k", "≥ 70", 60, TargetMissed),
		r("ratio", "connect 10k", "≥ 70", 57, TargetMissed),
		r("memory", "idle 19k", "≤ 1536", 1600, TargetMissed),
	}
	got := Summarize(res)
	if len(got) != 3 || got[0].Target != "ratio" || got[0].Source != "connect 10k" || got[1].Target != "memory" || got[2].Source != "connect 19k" {
		t.Fatalf("groups or order: %+v", got)
	}
	// Odd count: the median, graded as its run was.
	if m := got[0]; m.Value != 66 || m.Status != TargetMissed || !strings.Contains(m.Note, "median of 3: 66, 72, 57; met in 1") ||
		!strings.Contains(m.Note, "median run: n66") {
		t.Fatalf("median: %+v", m)
	}
	// Even count: the worse middle run; for a "≤" target that is the higher value.
	if m := got[1]; m.Value != 1600 || m.Status != TargetMissed || !strings.Contains(m.Note, "met in 1") {
		t.Fatalf("even ≤: %+v", m)
	}
	if got[2] != res[3] {
		t.Fatalf("single run changed: %+v", got[2])
	}
	res[5].Value, res[1].Value = 1200, 1300 // both met now: the worse is 1300
	if m := Summarize(res)[1]; m.Value != 1300 {
		t.Fatalf("even ≤ worse middle: %+v", m)
	}
	res[0].Value, res[2].Value, res[4].Value = 71, 75, 73 // ≥, even-free odd group: median 73
	if m := Summarize(res)[0]; m.Value != 73 {
		t.Fatalf("odd ≥ median: %+v", m)
	}
}
