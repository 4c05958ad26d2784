package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// A target is a claim meshfast makes about itself, checked against the
// reports of one campaign. Each is a ratio from one report (one run, one
// machine) where a ratio makes sense, since absolute figures move with the
// host; see perf/results.md for the figures and what limits them.
//
// Fanout capacity is compared as deliveries per second of server CPU (1e9 /
// "server cpu per delivery"): a run offered below saturation delivers at the
// offered rate for every server, so their deliveries/s are equal and only the
// CPU they paid says how far each could go. When both runs are saturated
// their deliveries/s are compared.

// TargetStatus is how a figure compares with its target.
type TargetStatus string

const (
	TargetMet     TargetStatus = "met"
	TargetStretch TargetStatus = "met, stretch too"
	TargetMissed  TargetStatus = "missed"
)

// TargetResult is one target checked against one report.
type TargetResult struct {
	Target string       `json:"target"`
	Source string       `json:"source"` // the report: scenario and size
	Value  float64      `json:"value"`
	Unit   string       `json:"unit,omitempty"`
	Want   string       `json:"want"`
	Status TargetStatus `json:"status"`
	Note   string       `json:"note,omitempty"`
}

// ReadReport reads a JSON report written by Run (Options.Out).
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("bench: report %s: %w", path, err)
	}
	if len(rep.Runs) == 0 {
		return nil, fmt.Errorf("bench: report %s: no runs", path)
	}
	return &rep, nil
}

// Target thresholds, as perf/results.md states them.
const (
	targetIdleBytes      = 1536 // server RSS per idle connection
	stretchIdleBytes     = 1024
	targetFanoutCeiling  = 0.8 // of the write(2) ceiling, one frame per write
	targetFanoutBaseline = 2.0 // × the goroutine-per-connection baseline
	targetHighRatePerCPU = 1e6 // deliveries per server core-second
	targetFramesPerWrite = 10
	targetLatencyFactor  = 1.2 // × the ceiling's p99, plus targetLatencySlackUs
	targetLatencySlackUs = 2000
	targetLatency1kUs    = 10000 // p99 with 1,000 subscribers
	targetHandshakePct   = 70    // handshakes/s of TCP connects/s
	stretchHandshakePct  = 85
	targetConnections    = 100000
	targetSimNs          = 100 // CPU ns per subscriber per broadcast, 1M subscribers
	simTargetConns       = 1000000
	latencySubscribers   = 1000
	targetMultiNode      = 0.5 // multi-node deliveries per server core-second over one node's
	multiNodeSubscribers = 10000
	highPublishRate      = 1000 // publishes/s from which a fanout run is "high rate"
	oneFramePerWrite     = 1.5  // frames per write below which a run is "one frame per write"
)

// CheckTargets checks every target a report can speak to. Reports of other
// kinds, or without the run a ratio needs, yield nothing for that target.
func CheckTargets(reps []*Report) []TargetResult {
	var out []TargetResult
	for _, rep := range reps {
		if len(rep.Runs) == 0 {
			continue
		}
		switch rep.Scenario {
		case ScenarioIdle:
			out = append(out, idleTargets(rep)...)
		case ScenarioConnect:
			out = append(out, connectTargets(rep)...)
		case ScenarioFanout:
			out = append(out, fanoutTargets(rep)...)
		case ScenarioSim:
			out = append(out, simTargets(rep)...)
		case ScenarioMultiNode:
			out = append(out, multiNodeTargets(rep)...)
		}
		out = append(out, connectionsTarget(rep)...)
	}
	return out
}

// atMost and atLeast grade v against a target and an optional stretch (0 = none).
func atMost(v, target, stretch float64) TargetStatus {
	switch {
	case stretch > 0 && v <= stretch:
		return TargetStretch
	case v <= target:
		return TargetMet
	}
	return TargetMissed
}

func atLeast(v, target, stretch float64) TargetStatus {
	switch {
	case stretch > 0 && v >= stretch:
		return TargetStretch
	case v >= target:
		return TargetMet
	}
	return TargetMissed
}

func (rep *Report) run(label string) *RunResult {
	for _, r := range rep.Runs {
		if r.Label == label {
			return r
		}
	}
	return nil
}

// source names a report in the table: scenario and its size.
func (rep *Report) source() string {
	switch rep.Scenario {
	case ScenarioSim:
		return fmt.Sprintf("sim %s", count(float64(rep.Options.Sim.Conns)))
	case ScenarioFanout:
		s := fmt.Sprintf("fanout %s subs", count(float64(rep.Options.Conns)))
		if rep.Options.Fanout.Rate > 0 {
			s += fmt.Sprintf(", %g pub/s", rep.Options.Fanout.Rate)
		}
		return s
	}
	return fmt.Sprintf("%s %s", rep.Scenario, count(float64(rep.Options.Conns)))
}

func count(n float64) string {
	if n >= 1e6 && math.Mod(n, 1e6) == 0 {
		return fmt.Sprintf("%gM", n/1e6)
	}
	if n >= 1000 && math.Mod(n, 1000) == 0 {
		return fmt.Sprintf("%gk", n/1000)
	}
	return fmt.Sprintf("%g", n)
}

func idleTargets(rep *Report) []TargetResult {
	r := rep.Runs[0]
	v, ok := r.Metric("rss per extra connection")
	if !ok {
		return nil
	}
	t := TargetResult{Target: "idle memory per connection (RSS slope)", Source: rep.source(), Value: v, Unit: "B",
		Want:   fmt.Sprintf("≤ %d (stretch %d)", targetIdleBytes, stretchIdleBytes),
		Status: atMost(v, targetIdleBytes, stretchIdleBytes)}
	if h, ok := r.Metric("heap per extra connection"); ok {
		t.Note = fmt.Sprintf("Go heap slope %.0f B", h)
	}
	return []TargetResult{t}
}

func connectTargets(rep *Report) []TargetResult {
	r := rep.Runs[0]
	v, ok := r.Metric("handshakes/s of tcp connects/s")
	if !ok {
		return nil
	}
	t := TargetResult{Target: "handshakes/s of TCP connects/s", Source: rep.source(), Value: v, Unit: "%",
		Want:   fmt.Sprintf("≥ %d (stretch %d)", targetHandshakePct, stretchHandshakePct),
		Status: atLeast(v, targetHandshakePct, stretchHandshakePct)}
	if f := rep.run("floor"); f != nil {
		fv, _ := f.Metric("handshakes/s of tcp connects/s")
		a, _ := r.Metric("handshakes/s")
		b, _ := f.Metric("handshakes/s")
		if b > 0 {
			t.Note = fmt.Sprintf("floor responder %.1f%%; handshakes/s %.2f× the floor's", fv, a/b)
		}
	}
	return []TargetResult{t}
}

// perCoreSecond is deliveries per second of server CPU.
func perCoreSecond(r *RunResult) (float64, bool) {
	ns, ok := r.Metric("server cpu per delivery")
	if !ok || ns <= 0 {
		return 0, false
	}
	return 1e9 / ns, true
}

// saturated reports whether run r of rep delivered less than it was
// offered: then its deliveries/s are its capacity.
func (rep *Report) saturated(r *RunResult) bool {
	if r.Label == "ceiling" {
		return rep.Options.Ceiling.Rate <= 0 // back to back
	}
	pubs, ok1 := r.Metric("publishes/s")
	subs, ok2 := r.Metric("subscribers")
	got, ok3 := r.Metric("deliveries/s")
	return ok1 && ok2 && ok3 && got < 0.9*pubs*subs
}

// highRate reports whether rep is a high publish rate run: closed-loop
// publishers or 1,000+ publishes/s.
func (rep *Report) highRate() bool {
	return rep.Options.Fanout.Rate < 0 || rep.Options.Fanout.Rate >= highPublishRate
}

func fanoutTargets(rep *Report) []TargetResult {
	r := rep.Runs[0]
	src := rep.source()
	var out []TargetResult
	fpw, hasFPW := r.Metric("server frames per write")
	own, hasCPU := perCoreSecond(r)
	regime := "one frame per write"
	coalesced := hasFPW && fpw >= oneFramePerWrite
	if coalesced {
		regime = fmt.Sprintf("%.1f frames per write", fpw)
	}
	// Both saturated: deliveries/s are capacities. Otherwise compare what a
	// delivery cost each in server CPU.
	capacity := func(other *RunResult) (float64, string, bool) {
		if rep.saturated(r) && rep.saturated(other) {
			a, ok1 := r.Metric("deliveries/s")
			b, ok2 := other.Metric("deliveries/s")
			return a / b, regime + ", deliveries/s at saturation", ok1 && ok2 && b > 0
		}
		b, ok := perCoreSecond(other)
		return own / b, regime + ", deliveries per server core-second", hasCPU && ok
	}
	// Latency targets hold for paced runs, not for queues at saturation.
	paced := !rep.saturated(r) && !rep.highRate()
	if c := rep.run("ceiling"); c != nil {
		if v, note, ok := capacity(c); ok {
			out = append(out, TargetResult{Target: "fanout vs write(2) ceiling", Source: src, Value: v, Unit: "×",
				Want: fmt.Sprintf("≥ %g", targetFanoutCeiling), Status: atLeast(v, targetFanoutCeiling, 0), Note: note})
		}
		p, ok1 := r.Metric("delivery p99")
		cp, ok2 := c.Metric("delivery p99")
		if ok1 && ok2 && paced && !rep.saturated(c) {
			limit := targetLatencyFactor*cp + targetLatencySlackUs
			out = append(out, TargetResult{Target: "p99 publish-to-receive vs ceiling", Source: src, Value: p / 1000, Unit: "ms",
				Want:   fmt.Sprintf("≤ %.1f (1.2 × ceiling's %.1f + 2)", limit/1000, cp/1000),
				Status: atMost(p, limit, 0)})
		}
	}
	if b := rep.run(rep.Options.BaselineLabel); b != nil && b != r {
		if v, note, ok := capacity(b); ok {
			// At one frame per write no server beats the bare write loop,
			// so the ceiling's own lead over the baseline is the most this
			// host allows: below 2× the target cannot be met here by anyone.
			if cb, ok := ceilingOver(b, rep.run("ceiling")); ok && !coalesced {
				note += fmt.Sprintf("; the ceiling itself %.2f× the baseline", cb)
			}
			out = append(out, TargetResult{Target: "fanout vs goroutine-per-connection baseline", Source: src, Value: v, Unit: "×",
				Want: fmt.Sprintf("≥ %g", targetFanoutBaseline), Status: atLeast(v, targetFanoutBaseline, 0), Note: note})
		}
	}
	if p, ok := r.Metric("delivery p99"); ok && paced && rep.Options.Conns == latencySubscribers {
		t := TargetResult{Target: "p99 publish-to-receive, 1k subscribers", Source: src, Value: p / 1000, Unit: "ms",
			Want: fmt.Sprintf("≤ %d", targetLatency1kUs/1000), Status: atMost(p, targetLatency1kUs, 0)}
		if c := rep.run("ceiling"); c != nil {
			if cp, ok := c.Metric("delivery p99"); ok {
				t.Note = fmt.Sprintf("the ceiling's own p99 %.1f ms", cp/1000)
			}
			if f, ok := cpuFloorP99(rep, r, c); ok {
				t.Note += fmt.Sprintf("; CPU floor %.1f ms", f/1e6)
			}
		}
		out = append(out, t)
	}
	if rep.highRate() && hasCPU && hasFPW {
		out = append(out, TargetResult{Target: "high-rate deliveries per server core-second", Source: src, Value: own, Unit: "1/s",
			Want: fmt.Sprintf("≥ %s", count(targetHighRatePerCPU)), Status: atLeast(own, targetHighRatePerCPU, 0)})
		out = append(out, TargetResult{Target: "high-rate frames per write", Source: src, Value: fpw,
			Want: fmt.Sprintf("≥ %d", targetFramesPerWrite), Status: atLeast(fpw, targetFramesPerWrite, 0)})
	}
	return out
}

// ceilingOver is the ceiling's deliveries per server core-second over the
// baseline's: how far ahead of the baseline one write per frame can be.
func ceilingOver(b, c *RunResult) (float64, bool) {
	if c == nil {
		return 0, false
	}
	cv, ok1 := perCoreSecond(c)
	bv, ok2 := perCoreSecond(b)
	return cv / bv, ok1 && ok2 && bv > 0
}

// cpuFloorP99 estimates, in ns, the least p99 any server could show in a
// paced fan-out run on this host: the 99th delivery in 100 of a publish
// comes after 99% of its writes and reads, which cost at least the
// ceiling's server CPU and the client's CPU per delivery, spread at best
// over every core. An estimate, not a bound: the measured costs per
// delivery carry some work that is not on a publish's path.
func cpuFloorP99(rep *Report, r, c *RunResult) (float64, bool) {
	write, ok1 := c.Metric("server cpu per delivery")
	read, ok2 := r.Metric("client cpu per delivery")
	subs, ok3 := r.Metric("subscribers")
	cpus := rep.Host.CPUs
	if !ok1 || !ok2 || !ok3 || cpus <= 0 {
		return 0, false
	}
	return (write + read) * math.Ceil(0.99*subs) / float64(cpus), true
}

func simTargets(rep *Report) []TargetResult {
	r := rep.Runs[0]
	v, ok := r.Metric("cpu ns per subscriber per broadcast")
	if !ok {
		return nil
	}
	t := TargetResult{Target: "simulated broadcast CPU per subscriber", Source: rep.source(), Value: v, Unit: "ns",
		Want: fmt.Sprintf("≤ %d at %s subscribers", targetSimNs, count(simTargetConns)), Status: atMost(v, targetSimNs, 0)}
	if n, _ := r.Metric("simulated connections"); n < simTargetConns {
		t.Status = TargetMissed
		t.Note = fmt.Sprintf("only %s subscribers simulated", count(n))
	}
	return []TargetResult{t}
}

// multiNodeTargets: fan-out over several nodes on one Redis keeps at least
// half of one node's deliveries per server core-second (each node receives
// a publish once and fans it out itself), at 10,000 subscribers.
func multiNodeTargets(rep *Report) []TargetResult {
	if len(rep.Runs) != 2 {
		return nil
	}
	const name = "fanout deliveries per server core-second"
	multi, okM := rep.Runs[0].Metric(name)
	single, okS := rep.Runs[1].Metric(name)
	if !okM || !okS || single <= 0 {
		return nil
	}
	v := multi / single
	t := TargetResult{Target: "multi-node fan-out vs one node, deliveries per server core-second", Source: rep.source(),
		Value: v, Unit: "×", Want: fmt.Sprintf("≥ %g× at %s subscribers", targetMultiNode, count(multiNodeSubscribers)),
		Status: atLeast(v, targetMultiNode, 0)}
	if n, _ := rep.Runs[0].Metric("fanout subscribers"); n < multiNodeSubscribers {
		t.Status = TargetMissed
		t.Note = fmt.Sprintf("only %s subscribers", count(n))
	}
	return []TargetResult{t}
}

// connectionsTarget speaks only for reports that held 100k connections or
// tried to: smaller runs say nothing about it.
func connectionsTarget(rep *Report) []TargetResult {
	if rep.Options.Conns < targetConnections || (rep.Scenario != ScenarioIdle && rep.Scenario != ScenarioConnect) {
		return nil
	}
	v, ok := rep.Runs[0].Metric("connections")
	if !ok {
		return nil
	}
	return []TargetResult{{Target: "connections held", Source: rep.source(), Value: v,
		Want: fmt.Sprintf("≥ %s", count(targetConnections)), Status: atLeast(v, targetConnections, 0),
		Note: fmt.Sprintf("%d server address(es), %d load-generator processes", len(rep.Runs[0].Targets), rep.Runs[0].Workers)}}
}

// Summarize folds the results of repeated runs (same target, same source)
// into one row each, in first-seen order: the median value, graded as its
// run was (with an even count, the worse of the two middle runs), and every
// run's value in the note.
func Summarize(res []TargetResult) []TargetResult {
	type key struct{ target, source string }
	groups := map[key][]TargetResult{}
	var order []key
	for _, t := range res {
		k := key{t.Target, t.Source}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], t)
	}
	out := make([]TargetResult, 0, len(order))
	for _, k := range order {
		g := groups[k]
		if len(g) == 1 {
			out = append(out, g[0])
			continue
		}
		vals := make([]string, len(g))
		met := 0
		for i, t := range g {
			vals[i] = formatValue(t.Value)
			if t.Status != TargetMissed {
				met++
			}
		}
		// worse first: the lower of a "≥" target, the higher of a "≤" one
		sort.SliceStable(g, func(i, j int) bool {
			if strings.HasPrefix(g[i].Want, "≥") {
				return g[i].Value < g[j].Value
			}
			return g[i].Value > g[j].Value
		})
		m := g[(len(g)-1)/2]
		note := fmt.Sprintf("median of %d: %s; met in %d", len(g), strings.Join(vals, ", "), met)
		if m.Note != "" {
			note += "; median run: " + m.Note
		}
		m.Note = note
		out = append(out, m)
	}
	return out
}

// WriteTargets prints results as a table.
func WriteTargets(w io.Writer, res []TargetResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tfrom\tvalue\twant\tstatus\tnote")
	for _, t := range res {
		v := formatValue(t.Value)
		if t.Unit != "" && t.Unit != "1/s" {
			v += " " + t.Unit
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Target, t.Source, v, t.Want, t.Status, t.Note)
	}
	return tw.Flush()
}

// Missed reports whether any result missed its target.
func Missed(res []TargetResult) bool {
	for _, t := range res {
		if t.Status == TargetMissed {
			return true
		}
	}
	return false
}

// String is the one-line form.
func (t TargetResult) String() string {
	return strings.TrimSpace(fmt.Sprintf("%s (%s): %g %s, want %s: %s", t.Target, t.Source, t.Value, t.Unit, t.Want, t.Status))
}
