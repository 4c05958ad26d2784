package bench

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/meshfast/meshfast/perf"
)

// Plot is a latency distribution drawing: one percentile curve per
// histogram, drawn as HdrHistogram's own plots are, latency against
// percentile on a log scale of 1/(1-q), so that 90%, 99%, 99.9% ... are
// evenly spaced and the tail gets as much room as the body.
type Plot struct {
	Title string
	// Subtitle is drawn under the title, up to two lines split at "\n".
	Subtitle string
	Curves   []Curve
}

// Curve is one histogram of a Plot.
type Curve struct {
	Label string
	Hist  *perf.Histogram
}

// PlotMetric is the latency histogram a scenario's plot shows by default:
// what the scenario is about, per delivery, round trip or handshake.
func PlotMetric(scenario string) (string, bool) {
	switch scenario {
	case ScenarioFanout, ScenarioCeiling:
		return "delivery", true
	case ScenarioRPC:
		return "rtt", true
	case ScenarioConnect:
		return "handshake", true
	}
	return "", false
}

// latencyNames say what each histogram of a report measures.
var latencyNames = map[string]string{
	"delivery":    "publish-to-receive latency",
	"rtt":         "command round trip",
	"handshake":   "WebSocket handshake time",
	"tcp_connect": "TCP connect time",
	"sweep":       "time to write one frame to every socket",
}

// ReportPlot is the Plot of metric (PlotMetric's when empty) for every run
// of rep that recorded it, in the report's order: for a fanout run with a
// baseline and the ceiling, the server under test, the
// goroutine-per-connection baseline and the bare write(2) loop, all of the
// same invocation.
func ReportPlot(rep *Report, metric string) (Plot, error) {
	if metric == "" {
		var ok bool
		if metric, ok = PlotMetric(rep.Scenario); !ok {
			return Plot{}, fmt.Errorf("%w: scenario %s has no latency to plot", ErrInvalidOptions, rep.Scenario)
		}
	}
	p := Plot{Title: rep.Scenario + ": " + metric}
	if name, ok := latencyNames[metric]; ok {
		p.Title = rep.Scenario + ": " + name + ", by percentile"
	}
	p.Subtitle = reportSubtitle(rep)
	for _, r := range rep.Runs {
		if h := r.Latency[metric]; h != nil && h.Count() > 0 {
			p.Curves = append(p.Curves, Curve{Label: r.Label, Hist: h})
		}
	}
	if len(p.Curves) == 0 {
		return p, fmt.Errorf("%w: no run of the %s report recorded %q", ErrInvalidOptions, rep.Scenario, metric)
	}
	return p, nil
}

// reportSubtitle says what was run, when and where.
func reportSubtitle(rep *Report) string {
	o := rep.Options
	var what string
	switch rep.Scenario {
	case ScenarioFanout:
		rate := fmt.Sprintf("%g publishes/s", o.Fanout.Rate)
		if o.Fanout.Rate < 0 {
			rate = fmt.Sprintf("closed loop, %d publishers", o.Fanout.Publishers)
		}
		what = fmt.Sprintf("%d subscribers, %s, %d-byte messages, %s", o.Conns, rate, o.Fanout.Payload, o.Duration)
	case ScenarioRPC:
		what = fmt.Sprintf("%d clients, %d in flight each, %s", o.Conns, o.RPC.Depth, o.Duration)
	default:
		what = fmt.Sprintf("%d connections", o.Conns)
	}
	host := fmt.Sprintf("%d CPUs, %s/%s", rep.Host.CPUs, rep.Host.OS, rep.Host.Arch)
	if rep.Host.Kernel != "" {
		host += " " + rep.Host.Kernel
	}
	return fmt.Sprintf("%s\n%s UTC; %s, %s", what, rep.Started.UTC().Format("2006-01-02 15:04"), host, rep.Host.GoVersion)
}

// WritePlot writes rep's plot of PlotMetric's histogram to path as SVG.
func (rep *Report) WritePlot(path string) error {
	p, err := ReportPlot(rep, "")
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := p.WriteSVG(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Plot geometry, in SVG user units.
const (
	plotWidth   = 900
	plotLeft    = 80  // room for the latency tick labels
	plotRight   = 50  // margin right of the plot area, room for the last tick label
	plotTop     = 86  // title and two subtitle lines
	plotHeight  = 340 // plot area
	plotLegendY = plotTop + plotHeight + 60
	plotLegendH = 22 // per legend line
	plotSamples = 400
	maxDecades  = 6 // 99.9999%: past it a run of this tool has too few samples
)

// curveColors are told apart by people with the common colour
// deficiencies (Okabe and Ito's palette), first the server under test.
var curveColors = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"}

// WriteSVG draws p as a standalone SVG document. It needs no fonts or
// scripts beyond what every browser and image viewer has.
func (p Plot) WriteSVG(w io.Writer) error {
	if len(p.Curves) == 0 {
		return fmt.Errorf("%w: nothing to plot", ErrInvalidOptions)
	}
	var maxCount int64
	var maxV time.Duration
	for _, c := range p.Curves {
		maxCount = max(maxCount, c.Hist.Count())
		maxV = max(maxV, c.Hist.Max())
	}
	// The x axis reaches the decade where the largest run runs out of
	// samples (1/(1-q) = count), at least 99% and at most maxDecades.
	decades := int(math.Ceil(math.Log10(float64(max(maxCount, 2)))))
	decades = min(max(decades, 2), maxDecades)
	unit, div := "ms", float64(time.Millisecond)
	if maxV < time.Millisecond {
		unit, div = "µs", float64(time.Microsecond)
	}
	step := niceStep(float64(maxV) / div / 5)
	yMax := step * math.Max(1, math.Ceil(float64(maxV)/div/step))

	plotW := float64(plotWidth - plotLeft - plotRight)
	x := func(lx float64) float64 { return plotLeft + plotW*lx/float64(decades) }
	y := func(v float64) float64 { return plotTop + plotHeight*(1-v/yMax) }
	height := plotLegendY + plotLegendH*len(p.Curves) + 10

	b := bufio.NewWriter(w)
	fmt.Fprintf(b, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="13">
<rect width="100%%" height="100%%" fill="#ffffff"/>
<text x="%d" y="28" font-size="17" font-weight="bold">%s</text>
`, plotWidth, height, plotWidth, height, plotLeft, esc(p.Title))
	for i, line := range strings.SplitN(p.Subtitle, "\n", 2) {
		fmt.Fprintf(b, `<text x="%d" y="%d" fill="#555555">%s</text>`+"\n", plotLeft, 50+18*i, esc(strings.ReplaceAll(line, "\n", " ")))
	}

	// Grid and tick labels: a vertical line per decade, a horizontal one per
	// latency step.
	b.WriteString(`<g class="grid" stroke="#dddddd" stroke-width="1">` + "\n")
	for k := 0; k <= decades; k++ {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>`+"\n", x(float64(k)), plotTop, x(float64(k)), plotTop+plotHeight)
	}
	yTicks := int(math.Round(yMax / step))
	for i := 0; i <= yTicks; i++ {
		v := float64(i) * step
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`+"\n", plotLeft, y(v), plotWidth-plotRight, y(v))
	}
	b.WriteString("</g>\n")
	b.WriteString(`<g class="xticks" text-anchor="middle">` + "\n")
	for k := 0; k <= decades; k++ {
		fmt.Fprintf(b, `<text x="%.1f" y="%d">%s</text>`+"\n", x(float64(k)), plotTop+plotHeight+18, percentileLabel(k))
	}
	b.WriteString("</g>\n")
	b.WriteString(`<g class="yticks" text-anchor="end">` + "\n")
	for i := 0; i <= yTicks; i++ {
		v := float64(i) * step
		fmt.Fprintf(b, `<text x="%d" y="%.1f">%s</text>`+"\n", plotLeft-8, y(v)+4, strconv.FormatFloat(v, 'g', 6, 64))
	}
	b.WriteString("</g>\n")
	fmt.Fprintf(b, `<text class="xlabel" x="%.1f" y="%d" text-anchor="middle">percentile (log scale of 1/(1-q))</text>`+"\n",
		x(float64(decades)/2), plotTop+plotHeight+40)
	fmt.Fprintf(b, `<text class="ylabel" x="20" y="%d" text-anchor="middle" transform="rotate(-90 20 %d)">latency (%s)</text>`+"\n",
		plotTop+plotHeight/2, plotTop+plotHeight/2, unit)
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="none" stroke="#888888"/>`+"\n", plotLeft, plotTop, plotW, plotHeight)

	// The curves: the value at q for 1/(1-q) evenly spaced in log10, up to
	// where this histogram runs out of samples, then its maximum there.
	for i, c := range p.Curves {
		color := curveColors[i%len(curveColors)]
		end := math.Min(float64(decades), math.Log10(float64(max(c.Hist.Count(), 1))))
		fmt.Fprintf(b, `<polyline class="curve" data-label="%s" fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round" points="`, esc(c.Label), color)
		for s := 0; s <= plotSamples; s++ {
			lx := end * float64(s) / plotSamples
			v := float64(c.Hist.Quantile(1-math.Pow(10, -lx))) / div
			if s == plotSamples {
				v = float64(c.Hist.Max()) / div
			}
			if s > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(b, "%.1f,%.1f", x(lx), y(v))
		}
		b.WriteString("\"/>\n")

		ly := plotLegendY + plotLegendH*i
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", plotLeft, ly-4, plotLeft+28, ly-4, color)
		fmt.Fprintf(b, `<text class="legend" x="%d" y="%d">%s</text>`+"\n", plotLeft+36, ly, esc(legend(c, unit, div)))
	}
	b.WriteString("</svg>\n")
	return b.Flush()
}

// legend is a curve's label and the figures people look for.
func legend(c Curve, unit string, div float64) string {
	f := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/div, 'g', 3, 64) + " " + unit
	}
	h := c.Hist
	return fmt.Sprintf("%s: p50 %s, p99 %s, p99.9 %s, max %s (%s samples)",
		c.Label, f(h.Quantile(0.5)), f(h.Quantile(0.99)), f(h.Quantile(0.999)), f(h.Max()), thousands(h.Count()))
}

// percentileLabel names decade k of the x axis: 0%, 90%, 99%, 99.9% ...
func percentileLabel(k int) string {
	switch k {
	case 0:
		return "0%"
	case 1:
		return "90%"
	case 2:
		return "99%"
	}
	return "99." + strings.Repeat("9", k-2) + "%"
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// thousands writes n with comma separators.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")

func esc(s string) string { return xmlEscaper.Replace(s) }
