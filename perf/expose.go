package perf

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// summaryQuantiles are the quantiles every summary exports, with their label
// text precomputed so a scrape formats no floats for them.
var summaryQuantiles = [...]struct {
	q     float64
	label string
}{
	{0.5, `quantile="0.5"`},
	{0.9, `quantile="0.9"`},
	{0.99, `quantile="0.99"`},
	{0.999, `quantile="0.999"`},
}

// WritePrometheus appends every registered metric to dst in the Prometheus
// text exposition format 0.0.4 and returns the extended slice. Families are
// sorted by name and series by labels, so output is deterministic. Trackers
// are exported as summaries in seconds; an empty tracker exports NaN
// quantiles, as Prometheus client libraries do.
//
// Pass a reused buffer (dst[:0]) to avoid growing a new one per scrape.
// Safe from any goroutine; concurrent writes are serialized.
func (m *Metrics) WritePrometheus(dst []byte) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runHooksLocked()
	for _, f := range m.families {
		dst = append(dst, "# HELP "...)
		dst = append(dst, f.name...)
		dst = append(dst, ' ')
		dst = appendHelp(dst, f.help)
		dst = append(dst, "\n# TYPE "...)
		dst = append(dst, f.name...)
		dst = append(dst, ' ')
		dst = append(dst, f.kind.String()...)
		dst = append(dst, '\n')
		for _, s := range f.series {
			if s.tracker != nil {
				dst = m.appendSummaryLocked(dst, f.name, s)
				continue
			}
			dst = appendSeriesName(dst, f.name, "", s.labels, "")
			dst = append(dst, ' ')
			dst = appendValue(dst, s)
			dst = append(dst, '\n')
		}
	}
	return dst
}

// appendSummaryLocked writes the quantile, _sum and _count lines of one
// tracker. m.mu is held on entry; it guards s.snapshot, which is reused so a
// scrape does not allocate a 144 KiB histogram per tracker.
func (m *Metrics) appendSummaryLocked(dst []byte, name string, s *series) []byte {
	h := s.tracker.SnapshotInto(s.snapshot)
	s.snapshot = h
	n := h.Count()
	for _, q := range summaryQuantiles {
		dst = appendSeriesName(dst, name, "", s.labels, q.label)
		dst = append(dst, ' ')
		if n == 0 {
			dst = append(dst, "NaN"...)
		} else {
			dst = appendFloat(dst, h.Quantile(q.q).Seconds())
		}
		dst = append(dst, '\n')
	}
	dst = appendSeriesName(dst, name, "_sum", s.labels, "")
	dst = append(dst, ' ')
	dst = appendFloat(dst, h.Sum().Seconds())
	dst = append(dst, '\n')
	dst = appendSeriesName(dst, name, "_count", s.labels, "")
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, '\n')
}

// WriteJSON appends a compact JSON object for health endpoints and returns
// the extended slice:
//
//	{"counters":{"name":1,"name{kind=x}":2},"gauges":{"conns":3},
//	 "trackers":{"lat_seconds":{"count":9,"p50_us":12.3,"p99_us":80.1,"max_us":95}}}
//
// Keys are the metric name plus its labels as {a=x,b=y}; order matches
// WritePrometheus. Non-finite gauge values are written as null. Safe from
// any goroutine.
func (m *Metrics) WriteJSON(dst []byte) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runHooksLocked()
	for i, k := range [...]kind{kindCounter, kindGauge, kindSummary} {
		if i > 0 {
			dst = append(dst, ',')
		} else {
			dst = append(dst, '{')
		}
		switch k {
		case kindCounter:
			dst = append(dst, `"counters":{`...)
		case kindGauge:
			dst = append(dst, `"gauges":{`...)
		default:
			dst = append(dst, `"trackers":{`...)
		}
		first := true
		for _, f := range m.families {
			if f.kind != k {
				continue
			}
			for _, s := range f.series {
				if !first {
					dst = append(dst, ',')
				}
				first = false
				dst = appendJSONKey(dst, f.name, s.key)
				dst = append(dst, ':')
				if k != kindSummary {
					dst = appendJSONValue(dst, s)
					continue
				}
				h := s.tracker.SnapshotInto(s.snapshot)
				s.snapshot = h
				dst = append(dst, `{"count":`...)
				dst = strconv.AppendInt(dst, h.Count(), 10)
				dst = append(dst, `,"p50_us":`...)
				dst = appendFloat(dst, micros(h.Quantile(0.5).Nanoseconds()))
				dst = append(dst, `,"p99_us":`...)
				dst = appendFloat(dst, micros(h.Quantile(0.99).Nanoseconds()))
				dst = append(dst, `,"max_us":`...)
				dst = appendFloat(dst, micros(h.Max().Nanoseconds()))
				dst = append(dst, '}')
			}
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

func (m *Metrics) runHooksLocked() {
	for _, h := range m.hooks {
		h()
	}
}

func micros(ns int64) float64 { return float64(ns) / 1e3 }

// appendSeriesName writes name+suffix{labels,extra}, omitting empty braces.
func appendSeriesName(dst []byte, name, suffix, labels, extra string) []byte {
	dst = append(dst, name...)
	dst = append(dst, suffix...)
	if labels == "" && extra == "" {
		return dst
	}
	dst = append(dst, '{')
	dst = append(dst, labels...)
	if labels != "" && extra != "" {
		dst = append(dst, ',')
	}
	dst = append(dst, extra...)
	return append(dst, '}')
}

// appendValue writes a counter or gauge series' current value.
func appendValue(dst []byte, s *series) []byte {
	switch {
	case s.counter != nil:
		return strconv.AppendUint(dst, s.counter.Load(), 10)
	case s.sharded != nil:
		return strconv.AppendUint(dst, s.sharded.Load(), 10)
	case s.cfunc != nil:
		return strconv.AppendUint(dst, s.cfunc(), 10)
	case s.gauge != nil:
		return strconv.AppendInt(dst, s.gauge.Load(), 10)
	default:
		return appendFloat(dst, s.gfunc())
	}
}

// appendJSONValue is appendValue with JSON's lack of NaN and Inf.
func appendJSONValue(dst []byte, s *series) []byte {
	if s.gfunc == nil {
		return appendValue(dst, s)
	}
	v := s.gfunc()
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(dst, "null"...)
	}
	return appendFloat(dst, v)
}

// appendFloat uses the shortest exact form. strconv spells non-finite values
// NaN, +Inf and -Inf, exactly as the exposition format wants them.
func appendFloat(dst []byte, v float64) []byte {
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}

// appendHelp escapes backslash and newline, the only escapes HELP text has.
func appendHelp(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			dst = append(dst, `\\`...)
		case '\n':
			dst = append(dst, `\n`...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendLabelValue escapes backslash, double quote and newline.
func appendLabelValue(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			dst = append(dst, `\\`...)
		case '"':
			dst = append(dst, `\"`...)
		case '\n':
			dst = append(dst, `\n`...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendJSONKey writes "name" or "name{key}" as a JSON string.
func appendJSONKey(dst []byte, name, key string) []byte {
	dst = append(dst, '"')
	dst = appendJSONString(dst, name)
	if key != "" {
		dst = append(dst, '{')
		dst = appendJSONString(dst, key)
		dst = append(dst, '}')
	}
	return append(dst, '"')
}

// appendJSONString escapes s for the inside of a JSON string. Label values
// are arbitrary, so control characters and invalid UTF-8 must be handled;
// strconv.Quote's \x escapes are not JSON.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}
