package client

import (
	"encoding/json"
	"slices"
	"testing"
)

// dedupeHarness records GroupID calls and OnUpdate snapshots.
type dedupeHarness struct {
	d       *DedupedPresence
	lookups recorder[string]
	updates recorder[map[string]PresenceGroup]
}

func newDedupe(groupOf func(string) string) *dedupeHarness {
	h := &dedupeHarness{}
	h.d = NewDedupedPresence(DedupedPresenceOptions{
		GroupID: func(id string) (string, error) {
			h.lookups.add(id)
			return groupOf(id), nil
		},
		OnUpdate: h.updates.add,
	})
	return h
}

func (h *dedupeHarness) handle(typ, conn string, ts int64, state string) map[string]PresenceGroup {
	u := PresenceUpdate{Type: typ, ConnectionID: conn, RoomName: "test-room", Timestamp: ts}
	if state != "" {
		u.State = json.RawMessage(state)
	}
	n := h.updates.len()
	h.d.Handle(u)
	got := h.updates.get()
	if len(got) != n+1 {
		panic("OnUpdate not called exactly once")
	}
	return got[n]
}

func same(id string) string { return "group:same" }

func TestDedupeNewGroup(t *testing.T) { // C-cutils-1
	h := newDedupe(func(id string) string { return "group:" + id[:3] })
	m := h.handle("join", "conn123", 1000, "")
	if got := h.lookups.get(); !slices.Equal(got, []string{"conn123"}) {
		t.Fatalf("lookups %v", got)
	}
	g, ok := m["group:con"]
	if len(m) != 1 || !ok || g.Representative != "conn123" || !slices.Equal(g.Members, []string{"conn123"}) {
		t.Fatalf("%+v", m)
	}
}

func TestDedupeSameGroup(t *testing.T) { // C-cutils-2
	h := newDedupe(same)
	h.handle("join", "conn123", 1000, "")
	m := h.handle("join", "conn456", 1001, "")
	if got := h.lookups.get(); !slices.Equal(got, []string{"conn123", "conn456"}) {
		t.Fatalf("lookups %v", got)
	}
	g := m["group:same"]
	if len(m) != 1 || g.Representative != "conn123" || !slices.Equal(g.Members, []string{"conn123", "conn456"}) {
		t.Fatalf("%+v", m)
	}
}

func TestDedupeLastLeaveRemovesGroup(t *testing.T) { // C-cutils-3
	h := newDedupe(same)
	h.handle("join", "conn123", 1000, "")
	if m := h.handle("leave", "conn123", 1001, ""); len(m) != 0 {
		t.Fatalf("%+v", m)
	}
}

func TestDedupeRepresentativeLeaves(t *testing.T) { // C-cutils-4
	h := newDedupe(same)
	h.handle("join", "conn123", 1000, "")
	h.handle("join", "conn456", 1001, "")
	m := h.handle("leave", "conn123", 1002, "")
	g := m["group:same"]
	if len(m) != 1 || g.Representative != "conn456" || !slices.Equal(g.Members, []string{"conn456"}) {
		t.Fatalf("%+v", m)
	}
}

func TestDedupeState(t *testing.T) { // C-cutils-5
	h := newDedupe(same)
	h.handle("join", "conn123", 1000, "")
	m := h.handle("state", "conn123", 1001, `{"status":"typing"}`)
	g := m["group:same"]
	if string(g.State) != `{"status":"typing"}` || g.Timestamp != 1001 {
		t.Fatalf("%+v", g)
	}
}

func TestDedupeOlderStateIgnored(t *testing.T) { // C-cutils-6
	h := newDedupe(same)
	h.handle("join", "conn123", 1000, "")
	h.handle("join", "conn456", 1001, "")
	h.handle("state", "conn123", 1002, `{"status":"typing"}`)
	m := h.handle("state", "conn456", 1001, `{"status":"idle"}`)
	g := m["group:same"]
	if string(g.State) != `{"status":"typing"}` || g.Timestamp != 1002 || g.Representative != "conn123" {
		t.Fatalf("%+v", g)
	}
}

func TestDedupeNewerStateTakesOver(t *testing.T) { // C-cutils-7
	h := newDedupe(same)
	h.handle("join", "conn123", 1000, "")
	h.handle("join", "conn456", 1001, "")
	h.handle("state", "conn123", 1002, `{"status":"typing"}`)
	m := h.handle("state", "conn456", 1003, `{"status":"idle"}`)
	g := m["group:same"]
	if string(g.State) != `{"status":"idle"}` || g.Timestamp != 1003 || g.Representative != "conn456" {
		t.Fatalf("%+v", g)
	}
	// A cleared state is null, and still counts as newest.
	m = h.handle("state", "conn123", 1004, `null`)
	if g := m["group:same"]; string(g.State) != "null" || g.Representative != "conn123" {
		t.Fatalf("%+v", g)
	}
}

// Two states with the same timestamp: the one handled later wins and its
// sender becomes the representative. Settled against Mesh's source, not its
// tests (which have no such case): createDedupedPresenceHandler in
// nvms/prsm packages/mesh/src/client-utils/index.ts takes a state when
// `!group.timestamp || timestamp >= group.timestamp`.
func TestDedupeEqualTimestampLaterWins(t *testing.T) {
	h := newDedupe(same)
	h.handle("join", "conn123", 1000, "")
	h.handle("join", "conn456", 1001, "")
	h.handle("state", "conn123", 1002, `{"status":"typing"}`)
	m := h.handle("state", "conn456", 1002, `{"status":"idle"}`)
	g := m["group:same"]
	if string(g.State) != `{"status":"idle"}` || g.Timestamp != 1002 || g.Representative != "conn456" {
		t.Fatalf("equal timestamps: %+v, want the later state and its sender", g)
	}
	// and back again, still at the same instant
	m = h.handle("state", "conn123", 1002, `{"status":"away"}`)
	if g := m["group:same"]; string(g.State) != `{"status":"away"}` || g.Representative != "conn123" {
		t.Fatalf("equal timestamps again: %+v", g)
	}
}

func TestDedupeFallbacksAndSeed(t *testing.T) {
	h := newDedupe(func(id string) string {
		if id == "anon" {
			return ""
		}
		return "user:" + id[:1]
	})
	// State or leave before any join change nothing.
	if m := h.handle("state", "a1", 5, `{}`); len(m) != 0 {
		t.Fatalf("%+v", m)
	}
	if m := h.handle("leave", "a1", 6, ""); len(m) != 0 {
		t.Fatalf("%+v", m)
	}
	m := h.handle("join", "anon", 7, "")
	if _, ok := m["conn:anon"]; !ok {
		t.Fatalf("no fallback group: %+v", m)
	}
	// GroupID answers are cached while the connection is present.
	h.handle("join", "b1", 8, "")
	n := h.lookups.len()
	h.handle("state", "b1", 9, `{"x":1}`)
	if h.lookups.len() != n {
		t.Fatal("GroupID asked again for a present connection")
	}

	h.d.Seed([]string{"a1", "a2", "b2"}, map[string]json.RawMessage{"a2": json.RawMessage(`{"s":2}`)})
	groups := h.d.Groups()
	if a := groups["user:a"]; !slices.Equal(a.Members, []string{"a1", "a2"}) || a.Representative != "a2" || string(a.State) != `{"s":2}` {
		t.Fatalf("%+v", a)
	}
	if b := groups["user:b"]; !slices.Equal(b.Members, []string{"b1", "b2"}) || string(b.State) != `{"x":1}` {
		t.Fatalf("%+v", b)
	}
	// Snapshots are copies.
	groups["user:a"].Members[0] = "changed"
	if h.d.Groups()["user:a"].Members[0] != "a1" {
		t.Fatal("snapshot aliases internal state")
	}
}
