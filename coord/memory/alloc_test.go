//go:build !race

package memory_test

import (
	"context"
	"testing"
	"time"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/coord/memory"
)

// The per-message and per-pong paths must not allocate beyond the one copy
// of a delivered payload, nor a connection's open and close beyond its state.
func TestAllocs(t *testing.T) {
	m := memory.New(memory.Options{})
	defer m.Close()
	ctx := context.Background()
	payload := []byte(`{"command":"x","payload":1}`)
	if n := testing.AllocsPerRun(1000, func() { _ = m.Publish(ctx, "nobody", payload) }); n != 0 {
		t.Errorf("Publish without subscribers: %v allocs, want 0", n)
	}
	done := make(chan struct{}, 2000)
	if _, err := m.Subscribe(ctx, "t", func(string, []byte) { done <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = m.Publish(ctx, "t", payload); <-done }); n > 1 {
		t.Errorf("Publish to a subscribed topic: %v allocs, want ≤ 1 (the payload copy)", n)
	}
	batch := []coord.PresenceEntry{{Room: "r1", ConnID: "c", TTL: time.Minute}, {Room: "r2", ConnID: "c", TTL: time.Minute}}
	for _, e := range batch {
		if _, err := m.JoinPresence(ctx, e.Room, e.ConnID, e.TTL); err != nil {
			t.Fatal(err)
		}
	}
	if n := testing.AllocsPerRun(1000, func() { _ = m.RefreshPresence(ctx, batch) }); n != 0 {
		t.Errorf("RefreshPresence: %v allocs, want 0", n)
	}
	// A record write compares the values in place (jsonx.Equal): a changed
	// value costs its stored copy and record, an equal one nothing.
	vals := [][]byte{[]byte(`{"count":1,"name":"a"}`), []byte(`{"count":2,"name":"a"}`)}
	i := 0
	if n := testing.AllocsPerRun(1000, func() { _, _ = m.SetRecord(ctx, "rec", vals[i&1]); i++ }); n > 2 {
		t.Errorf("SetRecord, changed: %v allocs, want ≤ 2", n)
	}
	same := []byte(` { "name" : "a", "count" : 2.0 } `)
	if _, err := m.SetRecord(ctx, "rec", vals[1]); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { _, _ = m.SetRecord(ctx, "rec", same) }); n != 0 {
		t.Errorf("SetRecord, equal: %v allocs, want 0", n)
	}
	// A connection's open and close cost its connState, nothing per node.
	if err := m.RegisterNode(ctx, "node", time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() {
		_ = m.RegisterConnection(ctx, "conn", "node")
		_ = m.UnregisterConnection(ctx, "conn")
	}); n > 1 {
		t.Errorf("RegisterConnection + UnregisterConnection: %v allocs, want ≤ 1", n)
	}
}
