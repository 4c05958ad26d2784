package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meshfast/meshfast/coord"
)

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// newFake returns a Memory on a fake clock whose sweeper never ticks by
// itself: tests call m.sweep().
func newFake(t *testing.T) (*Memory, *fakeClock) {
	clk := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	m := New(Options{Now: clk.Now, SweepInterval: time.Hour})
	t.Cleanup(func() { _ = m.Close() })
	return m, clk
}

type collected struct {
	mu sync.Mutex
	ex []coord.Expiry
}

func (c *collected) add(e coord.Expiry) {
	c.mu.Lock()
	c.ex = append(c.ex, e)
	c.mu.Unlock()
}

func (c *collected) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, e := range c.ex {
		out = append(out, fmt.Sprintf("%v %s %s", e.Kind, e.Room, e.ConnID))
	}
	slices.Sort(out)
	return out
}

func TestFakeClockPresence(t *testing.T) {
	m, clk := newFake(t)
	ctx := context.Background()
	var got collected
	defer m.OnPresenceExpiry(got.add)()

	m.JoinPresence(ctx, "r", "a", 30*time.Second)
	m.JoinPresence(ctx, "r", "b", 10*time.Second)
	m.SetPresenceState(ctx, "r", "a", []byte(`{"x":1}`), 5*time.Second)
	m.SetPresenceState(ctx, "r", "b", []byte(`{"y":1}`), 0)

	clk.Advance(5 * time.Second)
	// Lapsed state is invisible before the sweep, and reported by it.
	if s, _ := m.PresenceState(ctx, "r", "a"); s != nil {
		t.Fatalf("lapsed state visible: %s", s)
	}
	m.sweep()
	if g := got.list(); !slices.Equal(g, []string{"state r a"}) {
		t.Fatalf("after 5s: %q", g)
	}

	// Refresh b at 9s: it lives until 19s.
	clk.Advance(4 * time.Second)
	m.RefreshPresence(ctx, []coord.PresenceEntry{{Room: "r", ConnID: "b", TTL: 10 * time.Second}})
	clk.Advance(2 * time.Second) // 11s
	m.sweep()
	if p, _ := m.PresentConnections(ctx, "r"); len(p) != 2 {
		t.Fatalf("present at 11s: %q", p)
	}
	clk.Advance(8 * time.Second) // 19s
	if p, _ := m.PresentConnections(ctx, "r"); !slices.Equal(p, []string{"a"}) {
		t.Fatalf("present at 19s: %q", p)
	}
	m.sweep()
	want := []string{"presence r b", "state r a"}
	if g := got.list(); !slices.Equal(g, want) {
		t.Fatalf("at 19s: %q, want %q", g, want)
	}
	// b's state went silently with it.
	if s, _ := m.PresenceState(ctx, "r", "b"); s != nil {
		t.Fatalf("state of expired presence: %s", s)
	}
	clk.Advance(11 * time.Second) // 30s
	m.sweep()
	if g := got.list(); len(g) != 3 {
		t.Fatalf("at 30s: %q", g)
	}
	// Everything gone: the room state is collected.
	rs := m.roomShard("r")
	rs.mu.RLock()
	n := len(rs.m)
	rs.mu.RUnlock()
	if n != 0 {
		t.Fatalf("room state not collected")
	}
}

func TestFakeClockReviveAndLeaveOfLapsed(t *testing.T) {
	m, clk := newFake(t)
	ctx := context.Background()
	var got collected
	defer m.OnPresenceExpiry(got.add)()

	m.JoinPresence(ctx, "r", "a", time.Second)
	m.JoinPresence(ctx, "r", "b", time.Second)
	m.AddToRoom(ctx, "r", "c")
	m.JoinPresence(ctx, "r", "c", time.Second)
	clk.Advance(2 * time.Second)
	// Lapsed but unreported: a join revives (false), a leave removes (true)
	// and RemoveConnection reports it; then the sweep reports none of them.
	if joined, _ := m.JoinPresence(ctx, "r", "a", time.Minute); joined {
		t.Fatal("revived join reported as new")
	}
	if left, _ := m.LeavePresence(ctx, "r", "b"); !left {
		t.Fatal("leave of lapsed entry reported false")
	}
	if r, _ := m.RemoveConnection(ctx, "c"); !slices.Equal(r.Present, []string{"r"}) {
		t.Fatalf("RemoveConnection of lapsed: %+v", r)
	}
	m.sweep()
	if g := got.list(); len(g) != 0 {
		t.Fatalf("reported: %q", g)
	}
	if p, _ := m.PresentConnections(ctx, "r"); !slices.Equal(p, []string{"a"}) {
		t.Fatalf("present: %q", p)
	}
}

func TestSweepSkipsShardsWithNothingDue(t *testing.T) {
	m, clk := newFake(t)
	ctx := context.Background()
	m.JoinPresence(ctx, "r", "a", time.Minute)
	rs := m.roomShard("r")
	rs.mu.RLock()
	next := rs.next
	rs.mu.RUnlock()
	if next != int64(time.Minute) {
		t.Fatalf("next = %d", next)
	}
	clk.Advance(time.Second)
	m.sweep()
	rs.mu.RLock()
	if rs.next != next {
		t.Fatalf("shard swept early: next %d -> %d", next, rs.next)
	}
	rs.mu.RUnlock()
	for i := range m.rooms {
		if s := &m.rooms[i]; s != rs && s.next != 1<<63-1 {
			t.Fatalf("shard %d armed", i)
		}
	}
}

func TestNodesFakeClock(t *testing.T) {
	m, clk := newFake(t)
	ctx := context.Background()
	m.RegisterNode(ctx, "n1", 10*time.Second)
	clk.Advance(9 * time.Second)
	if live, _ := m.LiveNodes(ctx); !slices.Equal(live, []string{"n1"}) {
		t.Fatalf("live: %q", live)
	}
	clk.Advance(time.Second)
	if dead, _ := m.DeadNodes(ctx); !slices.Equal(dead, []string{"n1"}) {
		t.Fatalf("dead: %q", dead)
	}
}

func TestRegistrationOrder(t *testing.T) {
	m, _ := newFake(t)
	ctx := context.Background()
	ids := []string{"conn-z", "conn-a", "conn-m", "conn-b"}
	for _, id := range ids {
		m.RegisterConnection(ctx, id, "n")
		m.SetConnectionMetadata(ctx, id, []byte(`{"id":"`+id+`"}`))
	}
	if got, _ := m.Connections(ctx); !slices.Equal(got, ids) {
		t.Fatalf("Connections = %q", got)
	}
	if got, _ := m.NodeConnections(ctx, "n"); !slices.Equal(got, ids) {
		t.Fatalf("NodeConnections = %q", got)
	}
	all, _ := m.AllConnectionMetadata(ctx)
	for i, md := range all {
		if md.ConnID != ids[i] {
			t.Fatalf("AllConnectionMetadata[%d] = %s", i, md.ConnID)
		}
	}
}

func TestStateIsCollected(t *testing.T) {
	m, _ := newFake(t)
	ctx := context.Background()
	m.RegisterConnection(ctx, "c", "n")
	m.SetConnectionMetadata(ctx, "c", []byte(`{}`))
	m.AddToRoom(ctx, "r", "c")
	m.SetRoomMetadata(ctx, "r", []byte(`{}`))
	m.JoinPresence(ctx, "r", "c", time.Minute)
	m.RemoveConnection(ctx, "c")
	m.ClearRoom(ctx, "r")
	for i := range m.conns {
		if len(m.conns[i].m) != 0 {
			t.Fatal("connection state left")
		}
	}
	for i := range m.rooms {
		if len(m.rooms[i].m) != 0 {
			t.Fatal("room state left")
		}
	}
	if len(m.nodes) != 0 {
		t.Fatal("node state left")
	}
}

func TestPublishBlocksOnFullQueueUntilContextDone(t *testing.T) {
	m := New(Options{QueueSize: 1})
	defer m.Close()
	ctx := context.Background()
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	m.Subscribe(ctx, "t", func(string, []byte) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release // a misbehaving, blocking handler
	})
	m.Publish(ctx, "t", []byte("1"))
	<-entered
	m.Publish(ctx, "t", []byte("2")) // fills the queue
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := m.Publish(cctx, "t", []byte("3")); err != context.DeadlineExceeded {
		t.Fatalf("Publish on full queue = %v", err)
	}
	close(release)
}
