package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshfast/meshfast/bench/baseline"
	"github.com/meshfast/meshfast/engine"
)

// TestMain lets the test binary serve as a worker process, as
// cmd/meshfast-bench does, so subprocess workers can be tested.
func TestMain(m *testing.M) {
	if IsWorker() {
		if err := ServeWorker(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
	)
}

// startEngine serves engine.Echo on "/" on a free loopback port.
func startEngine(t testing.TB) *engine.Engine {
	t.Helper()
	e := engine.New(engine.Options{Addr: "127.0.0.1:0"})
	e.Handle("/", engine.Echo{})
	e.HandleHTTP("/health", e.HealthHandler(nil))
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	return e
}

// startBaseline serves the baseline server on a free loopback port.
func startBaseline(t testing.TB) *baseline.Server {
	t.Helper()
	s := baseline.New(baseline.Options{})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

// quick returns small, fast, quiet options for an end-to-end test.
func quick(scenario string, targets ...string) Options {
	return Options{
		Scenario: scenario, Targets: targets, Conns: 100, InProcess: true, SourceIPs: 2,
		Duration: 500 * time.Millisecond, Timeout: 10 * time.Second, Progress: -1, Stdout: io.Discard,
		Idle:    IdleOptions{Settle: 50 * time.Millisecond},
		Fanout:  FanoutOptions{Drain: 2 * time.Second},
		Ceiling: CeilingOptions{Rounds: 20},
	}
}

// metric fails the test unless run has the named metric.
func metric(t *testing.T, r *RunResult, name string) float64 {
	t.Helper()
	v, ok := r.Metric(name)
	if !ok {
		t.Fatalf("%s: no metric %q in %+v", r.Label, name, r.Metrics)
	}
	return v
}

// run is Run that fails the test on error.
func run(t *testing.T, o Options) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// sink collects parsed messages for parser tests.
type sink struct {
	msgs []string
	fail error // returned from onMessage when set
}

func (s *sink) onMessage(op byte, p []byte) error {
	s.msgs = append(s.msgs, fmt.Sprintf("%x:%s", op, p))
	return s.fail
}
