package mesh

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/coord/memory"
	"github.com/meshfast/meshfast/internal/testutil"
	"github.com/meshfast/meshfast/perf"
)

// A new kind of subscribable thing is one declaration: with it, a
// connection takes and drops it, receives what is published on its
// coordinator topic once the take returns, shares the node's coordinator
// subscription with other connections, and gives it back at close.
func TestOneDeclarationMakesAKind(t *testing.T) {
	t.Parallel()
	var streams int
	stream := newSource("stream", func(name string) string { return "test:stream:" + name },
		func(s *Server, src *source, name string) coord.Handler {
			et := src.routes[0].engineTopic(name)
			return func(_ string, p []byte) { s.deliverFrame(et, p) }
		}, func(*TopicCounts) { streams++ }, "test-s:")
	s := startServer(t, Options{})
	a, b := dialWire(t, s), dialWire(t, s)
	ca, cb := s.Connection(a.id), s.Connection(b.id)
	for _, c := range []*Connection{ca, cb} {
		if err := s.subs.take(bg(), c, stream.routes[0], "x"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.co.Publish(bg(), "test:stream:x", []byte(`{"command":"tick","payload":1}`)); err != nil {
		t.Fatal(err)
	}
	for _, w := range []*wire{a, b} {
		if got := w.next(); got != `{"command":"tick","payload":1}` {
			t.Fatalf("got %s", got)
		}
	}
	refs := func() int {
		s.subs.mu.Lock()
		defer s.subs.mu.Unlock()
		if ns := s.subs.node[subKey{stream, "x"}]; ns != nil {
			return ns.refs
		}
		return 0
	}
	_ = s.LocalTopics()
	if refs() != 2 || streams != 1 {
		t.Fatalf("node references %d, counted %d; want 2 and 1", refs(), streams)
	}
	if !s.subs.drop(bg(), ca, stream, "x") || s.subs.drop(bg(), ca, stream, "x") {
		t.Fatal("drop reported wrongly")
	}
	_ = s.co.Publish(bg(), "test:stream:x", []byte(`{"command":"tick","payload":2}`))
	if got := b.next(); got != `{"command":"tick","payload":2}` {
		t.Fatalf("got %s", got)
	}
	a.silent(30 * time.Millisecond)
	_ = b.c.CloseNow()
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := refs(); n != 0 {
			return fmt.Errorf("%d node references after the last holder closed", n)
		}
		return nil
	})
}

// flakyCoord fails the presence commands' coordinator calls while fail is set.
type flakyCoord struct {
	coord.Coordinator
	fail atomic.Bool
}

var errFlaky = errors.New("flaky: backend unreachable at 10.0.0.7:6379")

func (f *flakyCoord) IsInRoom(ctx context.Context, room, connID string) (bool, error) {
	if f.fail.Load() {
		return false, errFlaky
	}
	return f.Coordinator.IsInRoom(ctx, room, connID)
}

func (f *flakyCoord) PresenceSnapshot(ctx context.Context, room string) (coord.PresenceSnapshot, error) {
	if f.fail.Load() {
		return coord.PresenceSnapshot{}, errFlaky
	}
	return f.Coordinator.PresenceSnapshot(ctx, room)
}

func (f *flakyCoord) SetPresenceState(ctx context.Context, room, connID string, state []byte, expire time.Duration) error {
	if f.fail.Load() {
		return errFlaky
	}
	return f.Coordinator.SetPresenceState(ctx, room, connID, state, expire)
}

// A coordinator error in a presence command is answered as an error (not
// the coordinator's text), logged and counted; it is never a quiet false,
// which means "not allowed" or "not in the room".
func TestPresenceCoordinatorErrors(t *testing.T) {
	t.Parallel()
	mem := memory.New(memory.Options{})
	t.Cleanup(func() { _ = mem.Close() })
	co := &flakyCoord{Coordinator: mem}
	reg := perf.NewMetrics()
	var logs logLines
	s := startServer(t, Options{Coordinator: co, Metrics: reg, Logger: logs.logger()})
	s.TrackPresence("lobby", PresenceOptions{})
	w := dialWire(t, s)
	w.expect(`{"id":1,"command":"mesh/join-room","payload":{"roomName":"lobby"}}`,
		`{"id":1,"command":"mesh/join-room","payload":{"success":true,"present":["`+w.id+`"]}}`)
	co.fail.Store(true)
	const failed = `{"error":"the server could not complete the command","code":"ESERVER","name":"Error"}`
	for i, cmd := range []string{
		`"mesh/subscribe-presence","payload":{"roomName":"lobby"}`,
		`"mesh/publish-presence-state","payload":{"roomName":"lobby","state":{"status":"away"}}`,
		`"mesh/clear-presence-state","payload":{"roomName":"lobby"}`,
	} {
		id := i + 2
		name := cmd[1 : strings.Index(cmd[1:], `"`)+1]
		w.expect(fmt.Sprintf(`{"id":%d,"command":%s}`, id, cmd),
			fmt.Sprintf(`{"id":%d,"command":"%s","payload":%s}`, id, name, failed))
	}
	if n := reg.Counter("mesh_coord_errors_total", "").Load(); n != 3 {
		t.Fatalf("mesh_coord_errors_total %d, want 3", n)
	}
	if n := logs.count(errFlaky.Error()); n != 3 {
		t.Fatalf("%d errors logged with their detail, want 3", n)
	}
	co.fail.Store(false)
	w.expect(`{"id":9,"command":"mesh/publish-presence-state","payload":{"roomName":"lobby","state":{"status":"away"}}}`,
		`{"id":9,"command":"mesh/publish-presence-state","payload":true}`)
}

// A Mesh id names one connection of one server: only the spelling the
// server made finds it, another server's ids find nothing, and a closed
// connection is not found.
func TestConnectionIDs(t *testing.T) {
	t.Parallel()
	co := memory.New(memory.Options{})
	t.Cleanup(func() { _ = co.Close() })
	sa := startServer(t, Options{Coordinator: co})
	sb := startServer(t, Options{Coordinator: co})
	w := dialWire(t, sa)
	c := sa.Connection(w.id)
	if c == nil || c.ID() != w.id || !strings.HasPrefix(w.id, "conn-") {
		t.Fatalf("Connection(%q) = %v", w.id, c)
	}
	if sb.Connection(w.id) != nil {
		t.Fatal("another server found the connection")
	}
	eid, ok := sa.engineID(w.id)
	if !ok || eid != c.c.ID() {
		t.Fatalf("engineID(%q) = %d %v, want %d", w.id, eid, ok, c.c.ID())
	}
	digits := w.id[len(sa.idPrefix):]
	for _, bad := range []string{
		"", "conn-", sa.idPrefix, sa.idPrefix + "0" + digits, sa.idPrefix + strings.ToUpper(digits),
		sa.idPrefix + digits + " ", sa.idPrefix + "-1", sa.idPrefix + "3w5e11264sgsg", // 2^64
		sb.idPrefix + digits, strings.ToUpper(w.id),
	} {
		if sa.Connection(bad) != nil {
			t.Fatalf("Connection(%q) found a connection", bad)
		}
	}
	_ = w.c.CloseNow()
	testutil.Eventually(t, 5*time.Second, func() error {
		if sa.Connection(w.id) != nil {
			return errors.New("a closed connection is still found")
		}
		return nil
	})
}

// Room changes made on another node for one connection take effect in the
// order they were made.
func TestRemoteRoomChangesInOrder(t *testing.T) {
	t.Parallel()
	co := memory.New(memory.Options{})
	t.Cleanup(func() { _ = co.Close() })
	sa := startServer(t, Options{Coordinator: co})
	sb := startServer(t, Options{Coordinator: co})
	wb := dialWire(t, sb)
	const rooms = 200 // unordered, some leave overtakes its join in most runs
	for i := range rooms {
		room := fmt.Sprint("far", i)
		if err := sa.AddToRoom(bg(), room, wb.id); err != nil {
			t.Fatal(err)
		}
		if err := sa.RemoveFromRoom(bg(), room, wb.id); err != nil {
			t.Fatal(err)
		}
	}
	if err := sa.AddToRoom(bg(), "last", wb.id); err != nil {
		t.Fatal(err)
	}
	// The last change is applied after all the others.
	testutil.Eventually(t, 5*time.Second, func() error {
		if c := sb.Connection(wb.id); c == nil || sb.subs.holds(c, roomSource, "last") == nil {
			return errors.New("the last join is not applied yet")
		}
		return nil
	})
	c := sb.Connection(wb.id)
	for i := range rooms {
		if r := sb.subs.holds(c, roomSource, fmt.Sprint("far", i)); r != nil {
			t.Fatalf("room far%d: joined then left on another node, but the connection still receives it", i)
		}
	}
	if n := sb.LocalTopics().Rooms; n != 1 {
		t.Fatalf("node B subscribed to %d rooms, want 1", n)
	}
}

// Finding a connection by its Mesh id allocates nothing (it is on the
// path of every targeted send and every exclusion).
func TestConnectionLookupAllocs(t *testing.T) {
	if raceEnabled() {
		t.Skip("allocation counts are meaningless under -race")
	}
	sim, s := simServer(t, 1, Options{})
	c := sim.Open(handlerOf(s)).Conn().Value().(*Connection)
	if n := testing.AllocsPerRun(100, func() {
		if s.Connection(c.id) != c {
			t.Fatal("not found")
		}
	}); n != 0 {
		t.Fatalf("Connection allocates %.0f times", n)
	}
}
