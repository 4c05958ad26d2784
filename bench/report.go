package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meshfast/meshfast/perf"
)

// Report is the result of one Run: one RunResult per server measured
// (Targets, then BaselineTargets, then the ceiling), and the ratios of the
// first run's metrics to each other run's.
type Report struct {
	Scenario string       `json:"scenario"`
	Started  time.Time    `json:"started"`
	Command  []string     `json:"command"`
	Host     Host         `json:"host"`
	Options  Options      `json:"options"`
	Runs     []*RunResult `json:"runs"`
	Ratios   []Ratio      `json:"ratios,omitempty"`
}

// Host describes the machine the run used.
type Host struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	Kernel    string `json:"kernel,omitempty"`
}

// RunResult is one server's figures.
type RunResult struct {
	Label   string                     `json:"label"`
	Targets []string                   `json:"targets,omitempty"`
	Workers int                        `json:"workers"`
	Metrics []Metric                   `json:"metrics"`
	Counts  map[string]uint64          `json:"counts,omitempty"`
	Latency map[string]*perf.Histogram `json:"latency,omitempty"`
	Memory  []MemorySample             `json:"memory,omitempty"`
}

// Metric is one named figure of a run.
type Metric struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"`
}

// Ratio is Of's value of a metric divided by Over's, from the same run.
type Ratio struct {
	Metric string  `json:"metric"`
	Of     string  `json:"of"`
	Over   string  `json:"over"`
	Value  float64 `json:"value"`
}

func (r *RunResult) add(name string, v float64, unit string) {
	r.Metrics = append(r.Metrics, Metric{name, v, unit})
}

// addLatency adds p50/p99/p999/max rows for histogram name, in µs.
func (r *RunResult) addLatency(name string) {
	h := r.Latency[name]
	if h == nil || h.Count() == 0 {
		return
	}
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	r.add(name+" p50", us(h.Quantile(0.50)), "µs")
	r.add(name+" p90", us(h.Quantile(0.90)), "µs")
	r.add(name+" p99", us(h.Quantile(0.99)), "µs")
	r.add(name+" p99.9", us(h.Quantile(0.999)), "µs")
	r.add(name+" max", us(h.Max()), "µs")
}

// addCPU adds the server's CPU time per unit of work (in µs, or ns when
// per is "ns") and its share of one core over wall, when measured.
func (r *RunResult) addCPU(who string, cpu, wall time.Duration, ok bool, work uint64, what, unit string) {
	if !ok || work == 0 {
		return
	}
	div := 1e3
	if unit == "ns" {
		div = 1
	}
	r.add(who+" cpu per "+what, float64(cpu.Nanoseconds())/div/float64(work), unit)
	if wall > 0 && who == "server" {
		r.add("server cpu", 100*cpu.Seconds()/wall.Seconds(), "% of a core")
	}
}

// clientCPU sums the workers' CPU time over a phase; it is only
// meaningful when each worker is its own process.
func clientCPU(o Options, evs []event) (time.Duration, bool) {
	var t time.Duration
	for _, e := range evs {
		t += e.CPU
	}
	return t, !o.InProcess && t > 0
}

// Metric returns the value of the named metric and whether it exists.
func (r *RunResult) Metric(name string) (float64, bool) {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m.Value, true
		}
	}
	return 0, false
}

func newReport(o Options) *Report {
	rep := &Report{Scenario: o.Scenario, Started: time.Now(), Command: os.Args, Options: o,
		Host: Host{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		rep.Host.Kernel = strings.TrimSpace(string(b))
	}
	return rep
}

// computeRatios divides the first run's metrics by each other run's.
func (rep *Report) computeRatios() {
	if len(rep.Runs) < 2 {
		return
	}
	a := rep.Runs[0]
	for _, b := range rep.Runs[1:] {
		for _, m := range a.Metrics {
			if v, ok := b.Metric(m.Name); ok && v != 0 {
				rep.Ratios = append(rep.Ratios, Ratio{Metric: m.Name, Of: a.Label, Over: b.Label, Value: m.Value / v})
			}
		}
	}
}

// WriteTable prints the report as an aligned table: a row per metric, a
// column per run, then a column per ratio.
func (rep *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario %s\t", rep.Scenario)
	for _, r := range rep.Runs {
		fmt.Fprintf(tw, "%s\t", r.Label)
	}
	for _, r := range rep.runsAfterFirst() {
		fmt.Fprintf(tw, "%s/%s\t", rep.Runs[0].Label, r.Label)
	}
	fmt.Fprintln(tw, "unit\t")
	var names []string
	units := map[string]string{}
	for _, r := range rep.Runs {
		for _, m := range r.Metrics {
			if _, ok := units[m.Name]; !ok {
				names = append(names, m.Name)
				units[m.Name] = m.Unit
			}
		}
	}
	for _, n := range names {
		fmt.Fprintf(tw, "%s\t", n)
		for _, r := range rep.Runs {
			if v, ok := r.Metric(n); ok {
				fmt.Fprintf(tw, "%s\t", formatValue(v))
			} else {
				fmt.Fprint(tw, "-\t")
			}
		}
		for _, r := range rep.runsAfterFirst() {
			fmt.Fprintf(tw, "%s\t", rep.ratio(n, r.Label))
		}
		fmt.Fprintf(tw, "%s\t\n", units[n])
	}
	return tw.Flush()
}

func (rep *Report) runsAfterFirst() []*RunResult {
	if len(rep.Runs) < 2 {
		return nil
	}
	return rep.Runs[1:]
}

func (rep *Report) ratio(metric, over string) string {
	for _, r := range rep.Ratios {
		if r.Metric == metric && r.Over == over {
			return fmt.Sprintf("%.3f", r.Value)
		}
	}
	return "-"
}

func formatValue(v float64) string {
	switch {
	case v == float64(int64(v)) && v < 1e15 && v > -1e15:
		return fmt.Sprintf("%d", int64(v))
	case v >= 100 || v <= -100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// WriteJSON writes the report, histograms included (mergeable HDR form), to path.
func (rep *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// span is the wall time covered by a phase's events: earliest start to
// latest end.
func span(evs []event) time.Duration { return spanUntil(evs, 0) }

// spanUntil is span with its end no earlier than end (UnixNano), when the
// server, not the client, finished the phase.
func spanUntil(evs []event, end int64) time.Duration {
	lo, hi := int64(0), end
	for i, e := range evs {
		if i == 0 || e.Start < lo {
			lo = e.Start
		}
		if e.End > hi {
			hi = e.End
		}
	}
	if hi <= lo {
		return 0
	}
	return time.Duration(hi - lo)
}

// sumCounts adds up one counter over phase events.
func sumCounts(evs []event, c counter) uint64 {
	var n uint64
	for _, e := range evs {
		n += e.Counts[c]
	}
	return n
}

// perSecond is n over d, zero for an empty span.
func perSecond(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// collect folds worker results (counts and histograms) into r.
func (r *RunResult) collect(results []event) (counts, error) {
	var total counts
	r.Latency = map[string]*perf.Histogram{}
	for _, e := range results {
		total.add(e.Counts)
		if err := mergeHists(r.Latency, e.Hists); err != nil {
			return total, err
		}
	}
	r.Counts = total.named()
	return total, nil
}
