package memory

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"
	"unsafe"

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

// newFake returns a Memory on a fake clock whose sweeper never sweeps by
// itself after its first (empty) sweep: tests call m.sweep(). It returns
// once that first sweep is done and the sweeper asleep, so that it cannot
// run after the test has advanced the clock.
func newFake(t *testing.T) (*Memory, *fakeClock) {
	clk := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	m := New(Options{Now: clk.Now, SweepInterval: time.Hour})
	t.Cleanup(func() { _ = m.Close() })
	deadline := time.Now().Add(5 * time.Second)
	for m.sweeps.Load() == 0 || m.sleepUntil.Load() != math.MaxInt64 {
		if time.Now().After(deadline) {
			t.Fatal("the sweeper never finished its first sweep")
		}
		time.Sleep(time.Millisecond)
	}
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

// The sweeper sleeps while nothing can expire and wakes when the earliest
// deadline is due, including one armed after it went to sleep for a later
// one. A ticker at SweepInterval would sweep some fifty times here.
func TestSweeperSleepsUntilDue(t *testing.T) {
	m := New(Options{SweepInterval: time.Millisecond})
	defer m.Close()
	ctx := context.Background()
	got := make(chan coord.Expiry, 4)
	defer m.OnPresenceExpiry(func(e coord.Expiry) { got <- e })()

	// An absence can only be watched for: 50 ms with nothing to expire.
	time.Sleep(50 * time.Millisecond)
	if n := m.sweeps.Load(); n > 1 {
		t.Fatalf("%d sweeps with nothing to expire, want only the first", n)
	}
	if _, err := m.JoinPresence(ctx, "r", "late", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := m.JoinPresence(ctx, "r", "soon", 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.ConnID != "soon" || e.Kind != coord.ExpiredPresence {
			t.Fatalf("expired %v %s, want presence of soon", e.Kind, e.ConnID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a deadline armed while the sweeper slept for a later one was not swept")
	}
	if n := m.sweeps.Load(); n > 4 {
		t.Fatalf("%d sweeps for one 30 ms deadline, want it swept when due", n)
	}
	if ids, _ := m.PresentConnections(ctx, "r"); !slices.Equal(ids, []string{"late"}) {
		t.Fatalf("present %v, want [late]", ids)
	}
}

// A deadline armed while the sweeper works out when to wake next (it may
// have scanned the entry's shard already) wakes it to plan again: here the
// planning window is held open by hand, with the sweeper asleep and nothing
// else to expire, so an arm that did not wake it would never be swept.
func TestArmWhilePlanningWakes(t *testing.T) {
	m := New(Options{SweepInterval: time.Millisecond})
	defer m.Close()
	got := make(chan coord.Expiry, 1)
	defer m.OnPresenceExpiry(func(e coord.Expiry) { got <- e })()
	deadline := time.Now().Add(5 * time.Second)
	for m.sleepUntil.Load() != math.MaxInt64 { // asleep, nothing pending
		if time.Now().After(deadline) {
			t.Fatal("the sweeper never went to sleep")
		}
		time.Sleep(time.Millisecond)
	}
	m.sleepUntil.Store(math.MinInt64) // as while it plans
	if _, err := m.JoinPresence(context.Background(), "r", "soon", 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.ConnID != "soon" {
			t.Fatalf("expired %s", e.ConnID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a deadline armed while the sweeper planned was never swept")
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
	wantNoState(t, m)
}

// wantNoState fails unless m holds no connection, room or node state.
func wantNoState(t *testing.T, m *Memory) {
	t.Helper()
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
	m.nodesMu.Lock()
	defer m.nodesMu.Unlock()
	if len(m.nodes) != 0 {
		t.Fatal("node state left")
	}
}

// connStateOf returns a copy of id's state, and whether there is one.
func connStateOf(m *Memory, id string) (connState, bool) {
	cs := m.connShard(id)
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	if c := cs.m[id]; c != nil {
		return *c, true
	}
	return connState{}, false
}

// Rooms and metadata live apart from the connState; once the connection has
// neither, that part goes, and the connState too when it is unregistered.
func TestConnExtraIsCollected(t *testing.T) {
	m, _ := newFake(t)
	ctx := context.Background()

	// Registered: rooms joined then left leave a bare connState.
	m.RegisterConnection(ctx, "c", "n")
	if c, _ := connStateOf(m, "c"); c.x != nil {
		t.Fatal("extra allocated by registration")
	}
	m.AddToRoom(ctx, "r1", "c")
	m.AddToRoom(ctx, "r2", "c")
	m.RemoveFromRoom(ctx, "r1", "c")
	if c, _ := connStateOf(m, "c"); c.x == nil {
		t.Fatal("extra dropped while still in a room")
	}
	m.RemoveFromAllRooms(ctx, "c")
	if c, ok := connStateOf(m, "c"); !ok || c.x != nil || c.node != "n" {
		t.Fatalf("after leaving every room: %+v, %v", c, ok)
	}

	// Metadata outlives the rooms, and keeps the state of an unregistered
	// connection.
	m.SetConnectionMetadata(ctx, "c", []byte(`{"a":1}`))
	m.AddToRoom(ctx, "r1", "c")
	m.UnregisterConnection(ctx, "c")
	m.ClearRoom(ctx, "r1")
	if c, ok := connStateOf(m, "c"); !ok || c.x == nil || c.x.meta == nil || len(c.x.rooms) != 0 {
		t.Fatalf("metadata lost with the rooms: %+v, %v", c, ok)
	}
	if md, _ := m.ConnectionMetadata(ctx, "c"); string(md) != `{"a":1}` {
		t.Fatalf("metadata = %s", md)
	}
	m.RemoveConnection(ctx, "c")
	wantNoState(t, m)

	// Never registered: a room alone keeps the state, leaving it deletes it.
	m.AddToRoom(ctx, "r", "u")
	if c, ok := connStateOf(m, "u"); !ok || c.x == nil {
		t.Fatalf("member without state: %+v, %v", c, ok)
	}
	m.RemoveFromRoom(ctx, "r", "u")
	wantNoState(t, m)
}

// An idle connection's state must stay in the 32-byte size class: one more
// field puts every connection in the 48-byte class.
func TestConnStateSize(t *testing.T) {
	if n := unsafe.Sizeof(connState{}); n > 32 {
		t.Fatalf("connState is %d bytes, want ≤ 32", n)
	}
}

// wantNodeCounts fails unless every node's count is the number of
// connections registered to it, and nodes are kept exactly while registered
// or owning a connection.
func wantNodeCounts(t *testing.T, m *Memory) {
	t.Helper()
	owned := make(map[string]int)
	for i := range m.conns {
		cs := &m.conns[i]
		cs.mu.RLock()
		for _, c := range cs.m {
			if c.node != "" {
				owned[c.node]++
			}
		}
		cs.mu.RUnlock()
	}
	m.nodesMu.Lock()
	defer m.nodesMu.Unlock()
	for id, n := range m.nodes {
		if n.conns != owned[id] {
			t.Errorf("node %s counts %d connections, owns %d", id, n.conns, owned[id])
		}
		if !n.registered && n.conns == 0 {
			t.Errorf("node %s kept without registration or connection", id)
		}
	}
	for id := range owned {
		if m.nodes[id] == nil {
			t.Errorf("node %s owns connections but has no state", id)
		}
	}
}

func TestNodeConnectionsSharedCoordinator(t *testing.T) {
	m, _ := newFake(t)
	ctx := context.Background()
	nodeConns := func(node string) []string {
		t.Helper()
		ids, err := m.NodeConnections(ctx, node)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	for i := range 40 {
		m.RegisterConnection(ctx, fmt.Sprintf("c%02d", i), []string{"a", "b"}[i%2])
	}
	var wantA, wantB []string
	for i := range 40 {
		if i%2 == 0 {
			wantA = append(wantA, fmt.Sprintf("c%02d", i))
		} else {
			wantB = append(wantB, fmt.Sprintf("c%02d", i))
		}
	}
	if g := nodeConns("a"); !slices.Equal(g, wantA) {
		t.Fatalf("a = %q", g)
	}
	if g := nodeConns("b"); !slices.Equal(g, wantB) {
		t.Fatalf("b = %q", g)
	}
	if g := nodeConns("none"); g == nil || len(g) != 0 {
		t.Fatalf("unknown node = %#v, want empty", g)
	}
	wantNodeCounts(t, m)

	// Registering again to the same node keeps the place; moving to another
	// node, or unregistering and registering again, goes last.
	m.RegisterConnection(ctx, "c00", "a")
	m.RegisterConnection(ctx, "c02", "b")
	m.UnregisterConnection(ctx, "c04")
	m.RegisterConnection(ctx, "c04", "a")
	m.UnregisterConnection(ctx, "c01")
	wantA = append(slices.Delete(slices.Clone(wantA), 1, 3), "c04")
	wantB = append(wantB[1:], "c02")
	if g := nodeConns("a"); !slices.Equal(g, wantA) {
		t.Fatalf("a after moves = %q, want %q", g, wantA)
	}
	if g := nodeConns("b"); !slices.Equal(g, wantB) {
		t.Fatalf("b after moves = %q, want %q", g, wantB)
	}
	// Membership or metadata alone does not make a connection a node's.
	m.AddToRoom(ctx, "r", "c01")
	m.SetConnectionMetadata(ctx, "c01", []byte(`{}`))
	if g := nodeConns("b"); slices.Contains(g, "c01") {
		t.Fatalf("unregistered c01 listed: %q", g)
	}
	wantNodeCounts(t, m)
}

func TestNodeCountDeadAndRemove(t *testing.T) {
	m, _ := newFake(t)
	ctx := context.Background()
	dead := func() []string {
		t.Helper()
		ids, _ := m.DeadNodes(ctx)
		slices.Sort(ids)
		return ids
	}
	m.RegisterNode(ctx, "a", time.Minute)
	m.RegisterNode(ctx, "b", time.Minute)
	m.RegisterConnection(ctx, "c1", "a")
	m.RegisterConnection(ctx, "c2", "a")
	m.RegisterConnection(ctx, "c3", "b")
	m.RegisterConnection(ctx, "c1", "a") // again: counted once

	// Unregistered with connections: dead until the last one goes, then
	// forgotten.
	m.UnregisterNode(ctx, "a")
	if g := dead(); !slices.Equal(g, []string{"a"}) {
		t.Fatalf("dead = %q", g)
	}
	m.UnregisterConnection(ctx, "c1")
	if g := dead(); !slices.Equal(g, []string{"a"}) {
		t.Fatalf("dead with c2 left = %q", g)
	}
	m.RegisterConnection(ctx, "c2", "b") // moved away: a owns nothing
	if g := dead(); len(g) != 0 {
		t.Fatalf("dead after the move = %q", g)
	}
	wantNodeCounts(t, m)
	m.nodesMu.Lock()
	_, kept := m.nodes["a"]
	m.nodesMu.Unlock()
	if kept {
		t.Fatal("unregistered node without connections kept")
	}

	// RemoveNode removes what the node owns, leaves what moved away, and
	// forgets the node.
	m.RegisterConnection(ctx, "c4", "ghost")
	if g := dead(); !slices.Equal(g, []string{"ghost"}) {
		t.Fatalf("dead = %q", g)
	}
	removed, _ := m.RemoveNode(ctx, "b")
	var ids []string
	for _, r := range removed {
		ids = append(ids, r.ConnID)
	}
	if !slices.Equal(ids, []string{"c3", "c2"}) {
		t.Fatalf("RemoveNode(b) removed %q", ids)
	}
	removed, _ = m.RemoveNode(ctx, "ghost")
	if len(removed) != 1 || removed[0].ConnID != "c4" || removed[0].Node != "ghost" {
		t.Fatalf("RemoveNode(ghost) = %+v", removed)
	}
	if g := dead(); len(g) != 0 {
		t.Fatalf("dead after RemoveNode = %q", g)
	}
	wantNoState(t, m)
}

// The node counts stay exact under concurrent registrations, moves,
// unregistrations and removals (run with -race).
func TestNodeCountsConcurrent(t *testing.T) {
	m, _ := newFake(t)
	ctx := context.Background()
	nodes := []string{"a", "b", "c"}
	m.RegisterNode(ctx, "a", time.Minute)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				id := fmt.Sprintf("c%d", (i*7+g)%50)
				switch i % 5 {
				case 0, 1:
					m.RegisterConnection(ctx, id, nodes[(i+g)%3])
				case 2:
					m.UnregisterConnection(ctx, id)
				case 3:
					m.RemoveConnection(ctx, id)
				case 4:
					if i%100 == 4 {
						m.RemoveNode(ctx, nodes[g%3])
						m.RegisterNode(ctx, "a", time.Minute)
					} else {
						m.NodeConnections(ctx, nodes[g%3])
					}
				}
			}
		})
	}
	wg.Wait()
	wantNodeCounts(t, m)
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
