package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/meshfast/meshfast/bench"
)

// TestHelpListsEveryScenarioAndFlag: -h names every scenario of package
// bench and every flag of each; SCENARIO -h lists every flag the scenario
// takes.
func TestHelpListsEveryScenarioAndFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &out, &errOut); code != 0 {
		t.Fatalf("-h: exit %d: %s", code, errOut.String())
	}
	overview := out.String()
	for _, name := range bench.Scenarios {
		sc, ok := findScenario(name)
		if !ok {
			t.Fatalf("scenario %s of package bench has no command-line entry", name)
		}
		if !strings.Contains(overview, "\n"+name+": ") {
			t.Errorf("-h does not list scenario %s", name)
		}
		fs := sc.flagSet(new(cli))
		var help bytes.Buffer
		if code := run(context.Background(), []string{name, "-h"}, &help, &errOut); code != 0 {
			t.Fatalf("%s -h: exit %d", name, code)
		}
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(overview, "  -"+f.Name+" ") && !strings.Contains(overview, "  -"+f.Name+"\n") {
				t.Errorf("-h lacks %s's flag -%s", name, f.Name)
			}
			if !strings.Contains(help.String(), "  -"+f.Name) {
				t.Errorf("%s -h lacks -%s", name, f.Name)
			}
		})
	}
	if !strings.Contains(overview, "-svg file") || !strings.Contains(overview, "plot [flags]") {
		t.Error("-h does not show how to draw an SVG")
	}
}

// TestScriptFlagsParse parses every meshfast-bench command line in
// perf/scripts (and the README's), so that no scenario refuses a flag a
// script passes it.
func TestScriptFlagsParse(t *testing.T) {
	files, _ := filepath.Glob("../../perf/scripts/*.sh")
	files = append(files, "../../README.md", "../../perf/results.md")
	line := regexp.MustCompile("(?:meshfast-bench|\\$MFB\"?|mfb)\\s+(" + strings.Join(bench.Scenarios, "|") + ")\\s+([^\n|>&`]*(?:\\\\\n[^\n|>&`]*)*)")
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range line.FindAllStringSubmatch(string(b), -1) {
			sc, _ := findScenario(m[1])
			fs := sc.flagSet(new(cli))
			words := strings.Fields(strings.ReplaceAll(m[2], "\\\n", " "))
			// Values are often shell variables, so only the flag names are
			// checked: a word starting with - is a flag unless the flag
			// before it takes a value.
			for i := 0; i < len(words); i++ {
				w := words[i]
				if !strings.HasPrefix(w, "-") {
					continue
				}
				name, _, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
				if name == "h" || name == "help" {
					continue // the flag package's own
				}
				fl := fs.Lookup(name)
				if fl == nil {
					t.Errorf("%s: meshfast-bench %s does not take -%s: %s", f, m[1], name, strings.TrimSpace(m[0]))
					continue
				}
				if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); !hasValue && !(ok && b.IsBoolFlag()) {
					i++ // its value
				}
			}
			n++
		}
	}
	if n < 10 {
		t.Fatalf("found only %d command lines in the scripts: the pattern is stale", n)
	}
}

// TestBadUsage: an unknown subcommand or a flag the scenario does not take
// is a usage error (status 2) that names it.
func TestBadUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nosuch"}, `unknown subcommand "nosuch"`},
		{[]string{"connect", "-rate", "5"}, "-rate"},
		{[]string{"sim", "-addr", "127.0.0.1:1"}, "-addr"},
		{[]string{"fanout", "extra"}, `unexpected argument "extra"`},
		{nil, "usage:"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), tc.args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 naming %s", tc.args, code, errOut.String(), tc.want)
		}
	}
}

// TestPlotCommand draws a report written by a real (tiny, in-process)
// fanout run, and refuses a report without latency.
func TestPlotCommand(t *testing.T) {
	dir := t.TempDir()
	rep := filepath.Join(dir, "ceiling.json")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"ceiling", "-conns", "20", "-rounds", "20", "-in-process", "-duration", "2s", "-progress", "-1s", "-out", rep}, &out, &errOut); code != 0 {
		t.Fatalf("ceiling run: exit %d: %s", code, errOut.String())
	}
	svg := filepath.Join(dir, "c.svg")
	if code := run(context.Background(), []string{"plot", "-o", svg, "-title", "a & b", rep}, &out, &errOut); code != 0 {
		t.Fatalf("plot: exit %d: %s", code, errOut.String())
	}
	b, err := os.ReadFile(svg)
	if err != nil || !bytes.Contains(b, []byte(`class="curve" data-label="ceiling"`)) || !bytes.Contains(b, []byte("a &amp; b")) {
		t.Fatalf("plot wrote %v:\n%s", err, b)
	}
	errOut.Reset()
	if code := run(context.Background(), []string{"plot", "-metric", "nosuch", rep}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "nosuch") {
		t.Fatalf("plot of a missing histogram: exit %d, %s", code, errOut.String())
	}
}
