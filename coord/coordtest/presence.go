package coordtest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/meshfast/meshfast/coord"
)

// Short TTLs: the factory's backend must detect expiry within tens of ms.
const (
	shortTTL = 60 * time.Millisecond
	longTTL  = time.Minute
)

func wantPresent(t *testing.T, c coord.Coordinator, room string, want ...string) {
	t.Helper()
	wantSet(t, "PresentConnections("+room+")", must1[[]string](t)(c.PresentConnections(bg(t), room)), want...)
}

// stateOf returns the state of connID, which must be present, in room, as
// PresenceStates lists it (nil if none).
func stateOf(t *testing.T, c coord.Coordinator, room, connID string) []byte {
	t.Helper()
	if !slices.Contains(must1[[]string](t)(c.PresentConnections(bg(t), room)), connID) {
		t.Fatalf("stateOf(%s, %s): the connection is not present", room, connID)
	}
	return must1[map[string][]byte](t)(c.PresenceStates(bg(t), room))[connID]
}

func eventuallyPresent(t *testing.T, c coord.Coordinator, room string, want ...string) {
	t.Helper()
	eventually(t, func() error {
		return sameSet(must1[[]string](t)(c.PresentConnections(bg(t), room)), want...)
	})
}

var presenceTests = []test{
	{"JoinLeave", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		wantPresent(t, c, "test:room:1")
		wantBool(t, "join", must1[bool](t)(c.JoinPresence(ctx, "test:room:1", "conn-a", longTTL)), true)
		wantBool(t, "join again", must1[bool](t)(c.JoinPresence(ctx, "test:room:1", "conn-a", longTTL)), false)
		must1[bool](t)(c.JoinPresence(ctx, "test:room:1", "conn-b", longTTL))
		wantPresent(t, c, "test:room:1", "conn-a", "conn-b")
		wantPresent(t, c, "test:room:2")
		// Presence does not need membership and does not create it.
		wantSet(t, "members", must1[[]string](t)(c.RoomMembers(ctx, "test:room:1")))
		wantBool(t, "leave", must1[bool](t)(c.LeavePresence(ctx, "test:room:1", "conn-a")), true)
		wantBool(t, "leave again", must1[bool](t)(c.LeavePresence(ctx, "test:room:1", "conn-a")), false)
		wantBool(t, "leave unknown", must1[bool](t)(c.LeavePresence(ctx, "nowhere", "conn-a")), false)
		wantPresent(t, c, "test:room:1", "conn-b")
	}},
	{"TTLExpiry", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		var ex expiries
		defer c.OnPresenceExpiry(ex.handler)()
		must1[bool](t)(c.JoinPresence(ctx, "test:room:ttl", "conn-a", longTTL))
		must1[bool](t)(c.JoinPresence(ctx, "test:room:ttl", "conn-b", longTTL))
		must1[bool](t)(c.AddToRoom(ctx, "test:room:ttl", "conn-a"))
		must(t, c.SetPresenceState(ctx, "test:room:ttl", "conn-a", b(`{"status":"typing"}`), 0))
		wantPresent(t, c, "test:room:ttl", "conn-a", "conn-b")
		// Joining again re-arms the TTL, here to a short one.
		wantBool(t, "rejoin", must1[bool](t)(c.JoinPresence(ctx, "test:room:ttl", "conn-a", shortTTL)), false)

		eventuallyPresent(t, c, "test:room:ttl", "conn-b")
		ex.wait(t, coord.ExpiredPresence, "test:room:ttl", "conn-a")
		e := ex.all()[0]
		if e.At.IsZero() {
			t.Fatalf("expiry without time: %+v", e)
		}
		// Membership stays.
		wantBool(t, "still member", must1[bool](t)(c.IsInRoom(ctx, "test:room:ttl", "conn-a")), true)
		// Sentinel: a later expiry, then check that the first was
		// reported once and that no state expiry was reported.
		must1[bool](t)(c.JoinPresence(ctx, "test:room:ttl", "conn-s", 10*time.Millisecond))
		ex.wait(t, coord.ExpiredPresence, "test:room:ttl", "conn-s")
		if n := ex.count(coord.ExpiredPresence, "test:room:ttl", "conn-a"); n != 1 {
			t.Fatalf("conn-a expiry reported %d times", n)
		}
		if n := ex.count(coord.ExpiredState, "test:room:ttl", "conn-a"); n != 0 {
			t.Fatalf("state expiry reported %d times for a presence expiry", n)
		}
		wantPresent(t, c, "test:room:ttl", "conn-b")
		// The state went with the presence, silently: present again, it
		// has none.
		wantBool(t, "join after expiry", must1[bool](t)(c.JoinPresence(ctx, "test:room:ttl", "conn-a", longTTL)), true)
		wantJSON(t, "state after expiry", stateOf(t, c, "test:room:ttl", "conn-a"), "")
	}},
	{"RefreshKeepsAlive", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		var ex expiries
		defer c.OnPresenceExpiry(ex.handler)()
		// conn-a joins two rooms with a short TTL; only room-x is refreshed
		// (to a long TTL). The sentinel joins last with the same short TTL,
		// so once its expiry is reported, conn-a's join TTL has passed too.
		ttl := joinAndRefresh(t, c,
			[]coord.PresenceEntry{{Room: "room-x", ConnID: "conn-a"}, {Room: "room-y", ConnID: "conn-a"}},
			[]coord.PresenceEntry{{Room: "room-x", ConnID: "conn-a", TTL: longTTL}})
		must1[bool](t)(c.JoinPresence(ctx, "room-s", "conn-s", ttl))
		ex.wait(t, coord.ExpiredPresence, "room-s", "conn-s")
		ex.wait(t, coord.ExpiredPresence, "room-y", "conn-a")
		wantPresent(t, c, "room-x", "conn-a")
		wantPresent(t, c, "room-y")
		// A refresh to a short TTL shortens it.
		must(t, c.RefreshPresence(ctx, []coord.PresenceEntry{{Room: "room-x", ConnID: "conn-a", TTL: shortTTL}}))
		eventuallyPresent(t, c, "room-x")
	}},
	{"RefreshDoesNotCreateOrRevive", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		var ex expiries
		defer c.OnPresenceExpiry(ex.handler)()
		must(t, c.RefreshPresence(ctx, []coord.PresenceEntry{{Room: "room", ConnID: "conn-never", TTL: longTTL}}))
		wantPresent(t, c, "room")
		must1[bool](t)(c.JoinPresence(ctx, "room", "conn-a", 30*time.Millisecond))
		eventuallyPresent(t, c, "room")
		must(t, c.RefreshPresence(ctx, []coord.PresenceEntry{{Room: "room", ConnID: "conn-a", TTL: longTTL}}))
		wantPresent(t, c, "room")
		ex.wait(t, coord.ExpiredPresence, "room", "conn-a")
		wantPresent(t, c, "room")
		must(t, c.RefreshPresence(ctx, nil))
		wantErr(t, c.RefreshPresence(ctx, []coord.PresenceEntry{{Room: "room", ConnID: "conn-a"}}), coord.ErrInvalidArgument)
	}},
	{"RefreshBatch", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		var ex expiries
		defer c.OnPresenceExpiry(ex.handler)()
		const rooms, conns = 10, 100
		var joins, batch []coord.PresenceEntry
		for r := range rooms {
			for i := range conns {
				room, id := fmt.Sprintf("room-%d", r), fmt.Sprintf("conn-%d", i)
				joins = append(joins, coord.PresenceEntry{Room: room, ConnID: id})
				batch = append(batch, coord.PresenceEntry{Room: room, ConnID: id, TTL: longTTL})
			}
		}
		// Not present, not created.
		batch = append(batch, coord.PresenceEntry{Room: "room-0", ConnID: "conn-never", TTL: longTTL})
		ttl := joinAndRefresh(t, c, joins, batch)
		// The sentinel joins after every entry with the same TTL: once it
		// expired, only the refresh can have kept them.
		must1[bool](t)(c.JoinPresence(ctx, "room-s", "conn-s", ttl))
		ex.wait(t, coord.ExpiredPresence, "room-s", "conn-s")
		for r := range rooms {
			if n := len(must1[[]string](t)(c.PresentConnections(ctx, fmt.Sprintf("room-%d", r)))); n != conns {
				t.Fatalf("room-%d has %d present, want %d", r, n, conns)
			}
		}
	}},
	{"RejoinAfterLeave", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		must1[bool](t)(c.JoinPresence(ctx, "room", "conn-a", longTTL))
		must1[bool](t)(c.LeavePresence(ctx, "room", "conn-a"))
		wantBool(t, "rejoin", must1[bool](t)(c.JoinPresence(ctx, "room", "conn-a", longTTL)), true)
		wantPresent(t, c, "room", "conn-a")
	}},
	{"ExpiryHandlers", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		// Without a handler the entry is still removed.
		must1[bool](t)(c.JoinPresence(ctx, "room", "conn-0", 20*time.Millisecond))
		eventuallyPresent(t, c, "room")
		var first, second expiries
		removeFirst := c.OnPresenceExpiry(first.handler)
		defer c.OnPresenceExpiry(second.handler)()
		must1[bool](t)(c.JoinPresence(ctx, "room", "conn-1", 20*time.Millisecond))
		eventually(t, func() error {
			if first.count(coord.ExpiredPresence, "room", "conn-1")+second.count(coord.ExpiredPresence, "room", "conn-1") == 0 {
				return fmt.Errorf("conn-1 expiry not reported")
			}
			return nil
		})
		removeFirst()
		removeFirst() // idempotent
		must1[bool](t)(c.JoinPresence(ctx, "room", "conn-2", 20*time.Millisecond))
		second.wait(t, coord.ExpiredPresence, "room", "conn-2")
		if n := first.count(coord.ExpiredPresence, "room", "conn-2"); n != 0 {
			t.Fatalf("removed handler got %d reports", n)
		}
		if n := first.count(coord.ExpiredPresence, "room", "conn-1") + second.count(coord.ExpiredPresence, "room", "conn-1"); n != 1 {
			t.Fatalf("conn-1 expiry reported %d times, want once", n)
		}
	}},
}

var presenceStateTests = []test{
	{"PublishClearGet", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		const room = "test:room:states"
		must1[bool](t)(c.JoinPresence(ctx, room, "conn-1", longTTL))
		must1[bool](t)(c.JoinPresence(ctx, room, "conn-2", longTTL))
		snap := must1[coord.PresenceSnapshot](t)(c.PresenceSnapshot(ctx, room))
		if snap.States == nil || len(snap.States) != 0 {
			t.Fatalf("empty states = %#v, want {}", snap.States)
		}
		must(t, c.SetPresenceState(ctx, room, "conn-2", b(`{"status":"typing"}`), 0))
		wantJSON(t, "get", stateOf(t, c, room, "conn-2"), `{"status":"typing"}`)
		// Overwrite: the newest wins (C-pstate-6).
		must(t, c.SetPresenceState(ctx, room, "conn-2", b(`{"status":"idle"}`), 0))
		must(t, c.SetPresenceState(ctx, room, "conn-1", b(`{"status":"online","activity":"coding"}`), 0))
		// A state of a connection that is not present is stored but not
		// listed (PresenceStatesOfAbsent checks it is there, see below).
		must(t, c.SetPresenceState(ctx, room, "conn-absent", b(`{"status":"ghost"}`), 0))
		states := must1[map[string][]byte](t)(c.PresenceStates(ctx, room))
		if len(states) != 2 {
			t.Fatalf("states = %q", states)
		}
		wantJSON(t, "states 1", states["conn-1"], `{"status":"online","activity":"coding"}`)
		wantJSON(t, "states 2", states["conn-2"], `{"status":"idle"}`)
		snap = must1[coord.PresenceSnapshot](t)(c.PresenceSnapshot(ctx, room))
		wantSet(t, "snapshot present", snap.Present, "conn-1", "conn-2")
		if len(snap.States) != 2 {
			t.Fatalf("snapshot states = %q", snap.States)
		}

		wantBool(t, "clear", must1[bool](t)(c.ClearPresenceState(ctx, room, "conn-2")), true)
		wantBool(t, "clear again", must1[bool](t)(c.ClearPresenceState(ctx, room, "conn-2")), false)
		wantJSON(t, "cleared", stateOf(t, c, room, "conn-2"), "")
		wantPresent(t, c, room, "conn-1", "conn-2")
		// The absent connection's state is listed once it is present.
		must1[bool](t)(c.JoinPresence(ctx, room, "conn-absent", longTTL))
		wantJSON(t, "absent, then present", stateOf(t, c, room, "conn-absent"), `{"status":"ghost"}`)
		wantErr(t, c.SetPresenceState(ctx, room, "conn-1", nil, 0), coord.ErrInvalidArgument)
	}},
	{"LeaveClearsState", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		// C-pstate-4.
		const room = "test:room:leave-clear"
		must1[bool](t)(c.JoinPresence(ctx, room, "conn-2", longTTL))
		must(t, c.SetPresenceState(ctx, room, "conn-2", b(`{"status":"typing"}`), 0))
		must1[bool](t)(c.LeavePresence(ctx, room, "conn-2"))
		must1[bool](t)(c.JoinPresence(ctx, room, "conn-2", longTTL))
		if s := must1[map[string][]byte](t)(c.PresenceStates(ctx, room)); len(s) != 0 {
			t.Fatalf("states after rejoin = %q", s)
		}
	}},
	{"RoomIsolation", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		// C-pstate-10.
		r1, r2 := "test:room:isolation-1", "test:room:isolation-2"
		must1[bool](t)(c.JoinPresence(ctx, r1, "conn-1", longTTL))
		must1[bool](t)(c.JoinPresence(ctx, r2, "conn-1", longTTL))
		must(t, c.SetPresenceState(ctx, r1, "conn-1", b(`{"status":"typing","room":"room1"}`), 0))
		must(t, c.SetPresenceState(ctx, r2, "conn-1", b(`{"status":"away","room":"room2"}`), 0))
		must(t, c.SetPresenceState(ctx, r1, "conn-1", b(`{"status":"idle","room":"room1-updated"}`), 0))
		wantJSON(t, "room 1", must1[map[string][]byte](t)(c.PresenceStates(ctx, r1))["conn-1"], `{"status":"idle","room":"room1-updated"}`)
		wantJSON(t, "room 2", must1[map[string][]byte](t)(c.PresenceStates(ctx, r2))["conn-1"], `{"status":"away","room":"room2"}`)
	}},
	{"ExpireAfter", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		// C-pstate-2: the expiry is reported (→ a null state event).
		const room = "test:room:state-ttl"
		var ex expiries
		defer c.OnPresenceExpiry(ex.handler)()
		must1[bool](t)(c.JoinPresence(ctx, room, "conn-2", longTTL))
		must(t, c.SetPresenceState(ctx, room, "conn-2", b(`{"status":"typing"}`), longTTL))
		wantJSON(t, "before", stateOf(t, c, room, "conn-2"), `{"status":"typing"}`)
		must(t, c.SetPresenceState(ctx, room, "conn-2", b(`{"status":"typing"}`), shortTTL))
		ex.wait(t, coord.ExpiredState, room, "conn-2")
		wantJSON(t, "after", stateOf(t, c, room, "conn-2"), "")
		if s := must1[map[string][]byte](t)(c.PresenceStates(ctx, room)); len(s) != 0 {
			t.Fatalf("states after expiry = %q", s)
		}
		// Presence itself stays.
		wantPresent(t, c, room, "conn-2")
		if n := ex.count(coord.ExpiredPresence, room, "conn-2"); n != 0 {
			t.Fatalf("presence expiry reported for a state expiry")
		}
		// A state set again without expireAfter loses the expiry. (The
		// sentinel's state is set after it with a longer expiry.)
		must(t, c.SetPresenceState(ctx, room, "conn-2", b(`{"status":"away"}`), longTTL))
		must(t, c.SetPresenceState(ctx, room, "conn-2", b(`{"status":"here"}`), 0))
		must1[bool](t)(c.JoinPresence(ctx, room, "conn-s", longTTL))
		must(t, c.SetPresenceState(ctx, room, "conn-s", b(`{}`), shortTTL))
		ex.wait(t, coord.ExpiredState, room, "conn-s")
		wantJSON(t, "persistent state", stateOf(t, c, room, "conn-2"), `{"status":"here"}`)
		if n := ex.count(coord.ExpiredState, room, "conn-2"); n != 1 {
			t.Fatalf("conn-2 state expiry reported %d times, want 1", n)
		}
	}},
	{"IndependentExpiry", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		// C-pstate-9.
		const room = "test:room:multiple-ttl"
		must1[bool](t)(c.JoinPresence(ctx, room, "conn-1", longTTL))
		must1[bool](t)(c.JoinPresence(ctx, room, "conn-2", longTTL))
		must(t, c.SetPresenceState(ctx, room, "conn-2", b(`{"status":"typing"}`), longTTL))
		must(t, c.SetPresenceState(ctx, room, "conn-1", b(`{"status":"away"}`), longTTL))
		if s := must1[map[string][]byte](t)(c.PresenceStates(ctx, room)); len(s) != 2 {
			t.Fatalf("states = %q", s)
		}
		must(t, c.SetPresenceState(ctx, room, "conn-2", b(`{"status":"typing"}`), shortTTL))
		eventually(t, func() error {
			s := must1[map[string][]byte](t)(c.PresenceStates(ctx, room))
			if _, ok := s["conn-2"]; ok {
				return fmt.Errorf("conn-2 state still there")
			}
			if _, ok := s["conn-1"]; !ok {
				t.Fatalf("conn-1 state expired with conn-2's")
			}
			return nil
		})
		must(t, c.SetPresenceState(ctx, room, "conn-1", b(`{"status":"away"}`), shortTTL))
		eventually(t, func() error {
			if s := must1[map[string][]byte](t)(c.PresenceStates(ctx, room)); len(s) != 0 {
				return fmt.Errorf("states = %q", s)
			}
			return nil
		})
	}},
	{"SnapshotConsistent", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		// C-pstate-3 shape.
		const room = "test:room:initial-states"
		must1[bool](t)(c.JoinPresence(ctx, room, "conn-1", longTTL))
		must1[bool](t)(c.JoinPresence(ctx, room, "conn-2", longTTL))
		must1[bool](t)(c.JoinPresence(ctx, room, "conn-3", longTTL))
		must(t, c.SetPresenceState(ctx, room, "conn-1", b(`{"status":"online","activity":"coding"}`), 0))
		must(t, c.SetPresenceState(ctx, room, "conn-2", b(`{"status":"away"}`), 0))
		snap := must1[coord.PresenceSnapshot](t)(c.PresenceSnapshot(ctx, room))
		wantSet(t, "present", snap.Present, "conn-1", "conn-2", "conn-3")
		ids := make([]string, 0, len(snap.States))
		for id := range snap.States {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"conn-1", "conn-2"}) {
			t.Fatalf("states keys = %q", ids)
		}
	}},
}

// joinAndRefresh joins every entry of joins with a short TTL, then refreshes
// refresh in one batch, and returns the join TTL. The refresh must come
// before the join TTL lapses: an entry present after the refresh proves
// that it did (a lapsed entry is not revived). On a machine too loaded for
// that, it retries with a doubled TTL.
func joinAndRefresh(t *testing.T, c coord.Coordinator, joins, refresh []coord.PresenceEntry) time.Duration {
	t.Helper()
	ctx := bg(t)
	for ttl := shortTTL; ttl <= WaitTimeout; ttl *= 2 {
		for _, e := range joins {
			must1[bool](t)(c.JoinPresence(ctx, e.Room, e.ConnID, ttl))
		}
		must(t, c.RefreshPresence(ctx, refresh))
		ok := true
		for _, e := range joins {
			present := must1[[]string](t)(c.PresentConnections(ctx, e.Room))
			if !slices.Contains(present, e.ConnID) {
				ok = false
				break
			}
		}
		if ok {
			return ttl
		}
		t.Logf("joins lapsed before the refresh with a %v TTL; retrying", ttl)
	}
	t.Fatalf("could not refresh before the TTL lapsed")
	return 0
}
