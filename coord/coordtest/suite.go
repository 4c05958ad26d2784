package coordtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/protocol/jsonx"
)

// Factory returns a coordinator over empty state.
type Factory func(t *testing.T) coord.Coordinator

// ClusterFactory returns n coordinators over one shared, empty state, as n
// nodes of a cluster see it.
type ClusterFactory func(t *testing.T, n int) []coord.Coordinator

// WaitTimeout bounds every eventually-style wait of the suite.
const WaitTimeout = 5 * time.Second

// RunAll runs the whole suite from one constructor: Run, as one node, on
// the first coordinator of newCluster(t, 1), then RunCluster. A backend
// runs it once per deployment it supports (say Redis alone and a Redis
// Cluster, each behind its own ClusterFactory).
func RunAll(t *testing.T, newCluster ClusterFactory) {
	t.Helper()
	t.Run("Node", func(t *testing.T) {
		Run(t, func(t *testing.T) coord.Coordinator {
			cs := newCluster(t, 1)
			if len(cs) != 1 {
				t.Fatalf("factory returned %d coordinators, want 1", len(cs))
			}
			return cs[0]
		})
	})
	t.Run("Cluster", func(t *testing.T) { RunCluster(t, newCluster) })
}

// Run runs the conformance subtests against coordinators from newCoord: the
// Coordinator's, then, if the coordinator implements coord.Admin, Admin's
// (skipped otherwise).
func Run(t *testing.T, newCoord Factory) {
	t.Helper()
	groups := []struct {
		name  string
		tests []test
	}{
		{"Registry", registryTests},
		{"ConnectionMeta", connMetaTests},
		{"Rooms", roomTests},
		{"RoomMeta", roomMetaTests},
		{"Channels", channelTests},
		{"Records", recordTests},
		{"Presence", presenceTests},
		{"Joins", joinTests},
		{"PresenceState", presenceStateTests},
		{"PubSub", pubsubTests},
		{"Lifecycle", lifecycleTests},
	}
	fresh := func(t *testing.T) coord.Coordinator {
		c := newCoord(t)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, fresh(t)) })
			}
		})
	}
	for _, g := range []struct {
		name  string
		tests []adminTest
	}{{"Admin", adminTests}, {"AdminNodes", adminNodeTests}} {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					c := fresh(t)
					tc.run(t, c, admin(t, c))
				})
			}
		})
	}
}

// RunCluster runs the cross-node subtests against coordinators from
// newCluster, Admin's included where the coordinators implement it.
func RunCluster(t *testing.T, newCluster ClusterFactory) {
	t.Helper()
	for _, tc := range slices.Concat(clusterTests, joinClusterTests, adminClusterTests) {
		t.Run(tc.name, func(t *testing.T) {
			cs := newCluster(t, tc.nodes)
			if len(cs) != tc.nodes {
				t.Fatalf("factory returned %d coordinators, want %d", len(cs), tc.nodes)
			}
			for _, c := range cs {
				t.Cleanup(func() { _ = c.Close() })
			}
			tc.run(t, cs)
		})
	}
}

type test struct {
	name string
	run  func(t *testing.T, c coord.Coordinator)
}

type clusterTest struct {
	name  string
	nodes int
	run   func(t *testing.T, cs []coord.Coordinator)
}

// eventually polls cond every few milliseconds until it returns nil, and
// fails the test with its last error after WaitTimeout.
func eventually(t *testing.T, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reached within %v: %v", WaitTimeout, err)
		}
		time.Sleep(3 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func must1[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return v
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

func wantBool(t *testing.T, what string, got, want bool) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// setOf formats a set of strings for messages and comparison.
func setOf(s []string) string {
	c := slices.Clone(s)
	slices.Sort(c)
	return "[" + strings.Join(c, " ") + "]"
}

func sameSet(got []string, want ...string) error {
	if g, w := setOf(got), setOf(want); g != w {
		return fmt.Errorf("got %s, want %s", g, w)
	}
	return nil
}

func wantSet(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if err := sameSet(got, want...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantJSON fails unless got is want, byte for byte: coordinators store
// values and return them as given (a merged metadata value is exactly
// MergeObjects' output), so a backend that re-encodes a value ({"id":1}
// into {"id":1.0}, or reorders members) fails. want "" means got is nil (no
// value). want must itself be valid JSON, so that a mistyped expectation
// fails the test instead of comparing against garbage.
func wantJSON(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	if want == "" {
		if got != nil {
			t.Fatalf("%s = %s, want nil", what, got)
		}
		return
	}
	if !jsonx.Valid([]byte(want)) {
		t.Fatalf("%s: the expected value %s is not valid JSON", what, want)
	}
	if got == nil || string(got) != want {
		t.Fatalf("%s = %s, want %s", what, got, want)
	}
}

// wantSameValue fails unless got is the JSON value want as JavaScript
// compares them (jsonx.Equal: members in any order, numbers by value, but
// never 1 for "1"), for values whose spelling the suite cannot know. want
// must be valid JSON.
func wantSameValue(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	if !jsonx.Valid([]byte(want)) {
		t.Fatalf("%s: the expected value %s is not valid JSON", what, want)
	}
	if eq, err := jsonx.Equal(got, []byte(want)); err != nil || !eq || got == nil {
		t.Fatalf("%s = %s, want %s (%v)", what, got, want, err)
	}
}

// recorder collects messages delivered to a pub/sub handler.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) handler(topic string, payload []byte) {
	r.mu.Lock()
	r.msgs = append(r.msgs, topic+"="+string(payload))
	r.mu.Unlock()
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

func (r *recorder) has(msg string) error {
	if slices.Contains(r.get(), msg) {
		return nil
	}
	return fmt.Errorf("%q not received (got %q)", msg, r.get())
}

// expiries collects expiry reports.
type expiries struct {
	mu  sync.Mutex
	got []coord.Expiry
}

func (e *expiries) handler(x coord.Expiry) {
	e.mu.Lock()
	e.got = append(e.got, x)
	e.mu.Unlock()
}

func (e *expiries) count(kind coord.ExpiryKind, room, conn string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, x := range e.got {
		if x.Kind == kind && x.Room == room && x.ConnID == conn {
			n++
		}
	}
	return n
}

func (e *expiries) wait(t *testing.T, kind coord.ExpiryKind, room, conn string) {
	t.Helper()
	eventually(t, func() error {
		if e.count(kind, room, conn) == 0 {
			return fmt.Errorf("no %v expiry for %s/%s", kind, room, conn)
		}
		return nil
	})
}

func (e *expiries) all() []coord.Expiry {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.got)
}

func bg(t *testing.T) context.Context { return t.Context() }

func b(s string) []byte { return []byte(s) }
