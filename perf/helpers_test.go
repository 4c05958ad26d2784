package perf

import (
	"bufio"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaks a goroutine (CoarseClock is
// the only code here that starts one).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// promSample is one parsed sample line.
type promSample struct {
	name   string            // full sample name, e.g. x_sum
	labels map[string]string // decoded label values
	value  float64
}

// parseProm checks text against the 0.0.4 text format as meshfast emits it
// and returns the samples keyed by their canonical "name{a=x,b=y}" form
// (labels sorted, values unescaped). Every line must be a # HELP or # TYPE
// comment, or `name{labels} value`; each family has one HELP then one TYPE
// before its samples, and a sample must belong to the current family
// (summaries add _sum and _count).
func parseProm(t *testing.T, text string) map[string]promSample {
	t.Helper()
	if text != "" && !strings.HasSuffix(text, "\n") {
		t.Fatalf("output does not end in a newline")
	}
	out := make(map[string]promSample)
	seenFamily := make(map[string]bool)
	var family, typ string
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("line %d %q: %s", ln, line, fmt.Sprintf(format, args...))
		}
		if strings.HasPrefix(line, "#") {
			f := strings.SplitN(line, " ", 4)
			if len(f) < 3 || (f[1] != "HELP" && f[1] != "TYPE") {
				fail("comment is neither HELP nor TYPE")
			}
			if !validMetricName(f[2]) {
				fail("bad metric name")
			}
			switch f[1] {
			case "HELP":
				if seenFamily[f[2]] {
					fail("family repeated")
				}
				seenFamily[f[2]] = true
				family, typ = f[2], ""
			case "TYPE":
				if f[2] != family || typ != "" || len(f) != 4 {
					fail("TYPE does not follow its HELP")
				}
				switch f[3] {
				case "counter", "gauge", "summary", "histogram", "untyped":
				default:
					fail("unknown type")
				}
				typ = f[3]
			}
			continue
		}
		name, labels, value := parsePromSample(t, line, ln)
		if typ == "" {
			fail("sample before TYPE")
		}
		base := name
		if typ == "summary" {
			base = strings.TrimSuffix(strings.TrimSuffix(name, "_sum"), "_count")
			_, hasQ := labels["quantile"]
			if (name == family) != hasQ {
				fail("summary quantile label misplaced")
			}
		}
		if base != family {
			fail("sample outside its family %q", family)
		}
		key := canonicalKey(name, labels)
		if _, dup := out[key]; dup {
			fail("duplicate sample")
		}
		out[key] = promSample{name: name, labels: labels, value: value}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// parsePromSample splits `name{a="x",b="y"} value`, unescaping values.
func parsePromSample(t *testing.T, line string, ln int) (string, map[string]string, float64) {
	t.Helper()
	i := 0
	for i < len(line) && line[i] != '{' && line[i] != ' ' {
		i++
	}
	name := line[:i]
	if !validMetricName(name) {
		t.Fatalf("line %d %q: bad sample name", ln, line)
	}
	labels := map[string]string{}
	if i < len(line) && line[i] == '{' {
		i++
		for {
			j := strings.IndexByte(line[i:], '=')
			if j < 0 {
				t.Fatalf("line %d %q: label without =", ln, line)
			}
			lname := line[i : i+j]
			if !validLabelName(lname) && lname != "quantile" {
				t.Fatalf("line %d %q: bad label name %q", ln, line, lname)
			}
			i += j + 1
			if i >= len(line) || line[i] != '"' {
				t.Fatalf("line %d %q: unquoted label value", ln, line)
			}
			i++
			var v strings.Builder
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] != '\\' {
					v.WriteByte(line[i])
					continue
				}
				i++
				switch {
				case i >= len(line):
					t.Fatalf("line %d %q: dangling escape", ln, line)
				case line[i] == 'n':
					v.WriteByte('\n')
				case line[i] == '\\' || line[i] == '"':
					v.WriteByte(line[i])
				default:
					t.Fatalf("line %d %q: bad escape", ln, line)
				}
			}
			if i >= len(line) {
				t.Fatalf("line %d %q: unterminated label value", ln, line)
			}
			if _, dup := labels[lname]; dup {
				t.Fatalf("line %d %q: duplicate label", ln, line)
			}
			labels[lname] = v.String()
			i++ // closing quote
			if i < len(line) && line[i] == ',' {
				i++
				continue
			}
			if i >= len(line) || line[i] != '}' {
				t.Fatalf("line %d %q: labels not closed", ln, line)
			}
			i++
			break
		}
	}
	if i >= len(line) || line[i] != ' ' {
		t.Fatalf("line %d %q: no space before value", ln, line)
	}
	v, err := strconv.ParseFloat(line[i+1:], 64)
	if err != nil {
		t.Fatalf("line %d %q: value: %v", ln, line, err)
	}
	return name, labels, v
}

func canonicalKey(name string, labels map[string]string) string {
	if len(labels) == 0 {
		return name
	}
	keys := make([]string, 0, len(labels))
	for k, v := range labels {
		keys = append(keys, k+"="+v)
	}
	// Sorting "k=v" strings orders by label name because names cannot
	// contain '='.
	slices.Sort(keys)
	return name + "{" + strings.Join(keys, ",") + "}"
}

// checkNear fails unless got is within HDR precision of want: 0.1% for the
// default 3 digits, plus the 512ns unit the default 1µs Lowest implies.
func checkNear(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	tol := time.Duration(math.Ceil(float64(want)*0.001)) + time.Microsecond
	if d := got - want; d > tol || d < -tol {
		t.Errorf("%s = %v, want %v ±%v", what, got, want, tol)
	}
}

func mustTracker(t testing.TB, o Options) *Tracker {
	t.Helper()
	tr, err := NewTracker(o)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func mustHistogram(t testing.TB) *Histogram {
	t.Helper()
	h, err := NewHistogram(Options{})
	if err != nil {
		t.Fatal(err)
	}
	return h
}
