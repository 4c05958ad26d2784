package bench

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshfast/meshfast/perf"
)

// histOf records n values spread evenly over (0, top].
func histOf(t *testing.T, n int, top time.Duration) *perf.Histogram {
	t.Helper()
	h, err := perf.NewHistogram(perf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		h.Record(top * time.Duration(i) / time.Duration(n))
	}
	return h
}

// svgDoc is what the tests read back from an SVG: every text, and every
// curve's label and points.
type svgDoc struct {
	texts  []string
	curves []svgCurve
}

type svgCurve struct {
	label  string
	points [][2]float64
}

// parseSVG fails the test unless b is well-formed XML with an svg root.
func parseSVG(t *testing.T, b []byte) svgDoc {
	t.Helper()
	var doc svgDoc
	d := xml.NewDecoder(bytes.NewReader(b))
	depth, root := 0, ""
	inText := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, b)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				root = tok.Name.Local
			}
			depth++
			inText = tok.Name.Local == "text"
			if inText {
				doc.texts = append(doc.texts, "")
			}
			if tok.Name.Local != "polyline" {
				continue
			}
			var c svgCurve
			for _, a := range tok.Attr {
				switch a.Name.Local {
				case "data-label":
					c.label = a.Value
				case "points":
					for _, p := range strings.Fields(a.Value) {
						xs, ys, ok := strings.Cut(p, ",")
						x, err1 := strconv.ParseFloat(xs, 64)
						y, err2 := strconv.ParseFloat(ys, 64)
						if !ok || err1 != nil || err2 != nil {
							t.Fatalf("bad point %q", p)
						}
						c.points = append(c.points, [2]float64{x, y})
					}
				}
			}
			doc.curves = append(doc.curves, c)
		case xml.EndElement:
			depth--
			inText = false
		case xml.CharData:
			if inText {
				doc.texts[len(doc.texts)-1] += string(tok)
			}
		}
	}
	if root != "svg" || depth != 0 {
		t.Fatalf("root %q, depth %d at the end", root, depth)
	}
	return doc
}

func (d svgDoc) hasText(s string) bool {
	for _, t := range d.texts {
		if strings.Contains(t, s) {
			return true
		}
	}
	return false
}

// TestReportPlotSVG draws a fanout report with three runs and checks the
// drawing, not its looks: well-formed, one curve per run in the report's
// order, each going up with the percentile and ending at its maximum,
// labelled axes, a legend with the run's figures.
func TestReportPlotSVG(t *testing.T) {
	rep := &Report{
		Scenario: ScenarioFanout,
		Started:  time.Date(2026, 12, 7, 3, 30, 0, 0, time.UTC),
		Host:     Host{CPUs: 2, GoVersion: "go1.26.8", OS: "linux", Arch: "amd64", Kernel: "6.18"},
		Options:  Options{Conns: 1000, Duration: 5 * time.Second, Fanout: FanoutOptions{Rate: 20, Payload: 64}},
		Runs: []*RunResult{
			{Label: "meshfast", Latency: map[string]*perf.Histogram{"delivery": histOf(t, 100_000, 8*time.Millisecond)}},
			{Label: "baseline <goroutines> & co", Latency: map[string]*perf.Histogram{"delivery": histOf(t, 50_000, 18*time.Millisecond)}},
			{Label: "empty", Latency: map[string]*perf.Histogram{"delivery": histOf(t, 0, time.Millisecond)}},
			{Label: "ceiling", Latency: map[string]*perf.Histogram{"delivery": histOf(t, 100_000, 5*time.Millisecond), "sweep": histOf(t, 10, time.Millisecond)}},
		},
	}
	p, err := ReportPlot(rep, "")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := p.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte("NaN")) || bytes.Contains(buf.Bytes(), []byte("Inf")) {
		t.Fatalf("non-finite number in the SVG:\n%s", buf.Bytes())
	}
	doc := parseSVG(t, buf.Bytes())

	wantLabels := []string{"meshfast", "baseline <goroutines> & co", "ceiling"} // the empty run is left out
	if len(doc.curves) != len(wantLabels) {
		t.Fatalf("%d curves, want %d", len(doc.curves), len(wantLabels))
	}
	for i, c := range doc.curves {
		if c.label != wantLabels[i] {
			t.Errorf("curve %d is %q, want %q", i, c.label, wantLabels[i])
		}
		if len(c.points) < 100 {
			t.Fatalf("curve %s has %d points", c.label, len(c.points))
		}
		for j := 1; j < len(c.points); j++ {
			// SVG's y grows downwards: a latency that never falls is a y
			// that never grows.
			if c.points[j][0] < c.points[j-1][0] || c.points[j][1] > c.points[j-1][1]+0.05 {
				t.Fatalf("curve %s goes back at point %d: %v then %v", c.label, j, c.points[j-1], c.points[j])
			}
		}
		if c.points[0][0] != plotLeft {
			t.Errorf("curve %s starts at x %v, not at 0%% (%d)", c.label, c.points[0][0], plotLeft)
		}
		// The y axis reaches 20 ms (the largest maximum, 18 ms, rounded up
		// to a step) at plotTop: each curve ends at its own maximum.
		wantY := plotTop + plotHeight*(1-float64(p.Curves[i].Hist.Max())/float64(20*time.Millisecond))
		if last := c.points[len(c.points)-1][1]; last < wantY-1 || last > wantY+1 {
			t.Errorf("curve %s ends at y %v, want its maximum at %v", c.label, last, wantY)
		}
	}
	// 100,000 samples: the axis reaches 99.999%.
	for _, want := range []string{"percentile", "latency (ms)", "0%", "90%", "99%", "99.9%", "99.99%", "99.999%",
		"fanout: publish-to-receive latency", "1000 subscribers, 20 publishes/s", "2026-12-07 03:30 UTC",
		"meshfast: p50 4 ms, p99 7.92 ms", "(100,000 samples)", "baseline <goroutines> & co: p50 9 ms"} {
		if !doc.hasText(want) {
			t.Errorf("no text %q in %q", want, doc.texts)
		}
	}
	if doc.hasText("99.9999%") {
		t.Error("the axis goes past the samples' reach")
	}
}

func TestReportPlotErrors(t *testing.T) {
	rep := &Report{Scenario: ScenarioIdle, Runs: []*RunResult{{Label: "x"}}}
	if _, err := ReportPlot(rep, ""); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("idle: %v", err)
	}
	rep.Scenario = ScenarioRPC
	if _, err := ReportPlot(rep, ""); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("no histogram: %v", err)
	}
	if err := (Plot{}).WriteSVG(io.Discard); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("empty plot: %v", err)
	}
	o := Options{Scenario: ScenarioSim, SVG: "x.svg"}
	if err := o.Validate(); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("sim with -svg: %v", err)
	}
}

// TestPlotMicroseconds: sub-millisecond distributions are drawn in µs.
func TestPlotMicroseconds(t *testing.T) {
	p := Plot{Title: "rtt", Curves: []Curve{{Label: "a", Hist: histOf(t, 10, 300*time.Microsecond)}}}
	var buf bytes.Buffer
	if err := p.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	doc := parseSVG(t, buf.Bytes())
	if !doc.hasText("latency (µs)") || !doc.hasText("99%") || doc.hasText("99.9%") {
		t.Fatalf("texts %q", doc.texts)
	}
}

func TestPercentileLabelAndNiceStep(t *testing.T) {
	for k, want := range []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"} {
		if got := percentileLabel(k); got != want {
			t.Errorf("percentileLabel(%d) = %q, want %q", k, got, want)
		}
	}
	for v, want := range map[float64]float64{0.7: 1, 1: 1, 1.2: 2, 3: 5, 7: 10, 0.013: 0.02, 4000: 5000, 0: 1} {
		if got := niceStep(v); got != want {
			t.Errorf("niceStep(%v) = %v, want %v", v, got, want)
		}
	}
}

// TestFanoutWritesSVG runs a small fanout against the baseline with the
// ceiling and checks that Options.SVG draws both runs.
func TestFanoutWritesSVG(t *testing.T) {
	b := startBaseline(t)
	o := quick(ScenarioFanout, b.Addr().String())
	o.Conns, o.Fanout.Rate, o.Fanout.Messages, o.Fanout.Ceiling = 20, 400, 50, true
	o.Duration = 1500 * time.Millisecond
	o.SVG = filepath.Join(t.TempDir(), "fanout.svg")
	rep := run(t, o)
	b2, err := os.ReadFile(o.SVG)
	if err != nil {
		t.Fatal(err)
	}
	doc := parseSVG(t, b2)
	if len(doc.curves) != 2 || doc.curves[0].label != rep.Runs[0].Label || doc.curves[1].label != "ceiling" {
		t.Fatalf("curves %+v", doc.curves)
	}
}
