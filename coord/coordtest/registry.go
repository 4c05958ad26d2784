package coordtest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/meshfast/meshfast/coord"
)

var registryTests = []test{
	{"RegisterAndLookup", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		must(t, c.RegisterConnection(ctx, "conn-1", "node-a"))
		must(t, c.RegisterConnection(ctx, "conn-2", "node-a"))
		must(t, c.RegisterConnection(ctx, "conn-3", "node-b"))
		if n := must1[string](t)(c.ConnectionNode(ctx, "conn-3")); n != "node-b" {
			t.Fatalf("ConnectionNode(conn-3) = %q, want node-b", n)
		}
		_, err := c.ConnectionNode(ctx, "conn-unknown")
		wantErr(t, err, coord.ErrNotFound)
		nodes := must1[[]string](t)(c.ConnectionNodes(ctx, []string{"conn-2", "conn-x", "conn-3"}))
		if !slices.Equal(nodes, []string{"node-a", "", "node-b"}) {
			t.Fatalf("ConnectionNodes = %q", nodes)
		}
		if n := must1[[]string](t)(c.ConnectionNodes(ctx, nil)); len(n) != 0 {
			t.Fatalf("ConnectionNodes(nil) = %q", n)
		}

		// Registering again moves the connection.
		must(t, c.RegisterConnection(ctx, "conn-2", "node-b"))
		if n := must1[string](t)(c.ConnectionNode(ctx, "conn-2")); n != "node-b" {
			t.Fatalf("ConnectionNode(conn-2) after the move = %q, want node-b", n)
		}
	}},
	{"EmptyIDs", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		wantErr(t, c.RegisterConnection(ctx, "", "node-a"), coord.ErrInvalidArgument)
		wantErr(t, c.RegisterConnection(ctx, "conn-1", ""), coord.ErrInvalidArgument)
		_, err := c.AddToRoom(ctx, "", "conn-1")
		wantErr(t, err, coord.ErrInvalidArgument)
		_, err = c.AddToRoom(ctx, "room", "")
		wantErr(t, err, coord.ErrInvalidArgument)
		wantErr(t, c.SetConnectionMetadata(ctx, "conn-1", nil), coord.ErrInvalidArgument)
		wantErr(t, c.SetRoomMetadata(ctx, "room", nil), coord.ErrInvalidArgument)
		_, err = c.JoinPresence(ctx, "room", "conn-1", 0)
		wantErr(t, err, coord.ErrInvalidArgument)
		wantErr(t, c.RegisterNode(ctx, "node-a", 0), coord.ErrInvalidArgument)
	}},
	{"RemoveConnection", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		must(t, c.RegisterConnection(ctx, "conn-1", "node-a"))
		must(t, c.RegisterConnection(ctx, "conn-2", "node-a"))
		must(t, c.SetConnectionMetadata(ctx, "conn-1", b(`{"name":"A"}`)))
		for _, r := range []string{"room-1", "room-2"} {
			must1[bool](t)(c.AddToRoom(ctx, r, "conn-1"))
			must1[bool](t)(c.AddToRoom(ctx, r, "conn-2"))
		}
		must1[bool](t)(c.JoinPresence(ctx, "room-1", "conn-1", time.Minute))
		must1[bool](t)(c.JoinPresence(ctx, "room-1", "conn-2", time.Minute))
		must(t, c.SetPresenceState(ctx, "room-1", "conn-1", b(`{"status":"typing"}`), 0))
		must(t, c.SetPresenceState(ctx, "room-1", "conn-2", b(`{"status":"idle"}`), 0))
		must(t, c.SetRoomMetadata(ctx, "room-1", b(`{"topic":"x"}`)))

		r := must1[coord.RemovedConnection](t)(c.RemoveConnection(ctx, "conn-1"))
		if r.ConnID != "conn-1" || r.Node != "node-a" {
			t.Fatalf("RemoveConnection = %+v", r)
		}
		wantSet(t, "Rooms", r.Rooms, "room-1", "room-2")
		wantSet(t, "Present", r.Present, "room-1")

		_, err := c.ConnectionNode(ctx, "conn-1")
		wantErr(t, err, coord.ErrNotFound)
		wantJSON(t, "metadata", must1[[]byte](t)(c.ConnectionMetadata(ctx, "conn-1")), "")
		wantSet(t, "ConnectionRooms", must1[[]string](t)(c.ConnectionRooms(ctx, "conn-1")))
		wantSet(t, "room-1 members", must1[[]string](t)(c.RoomMembers(ctx, "room-1")), "conn-2")
		wantSet(t, "present", must1[[]string](t)(c.PresentConnections(ctx, "room-1")), "conn-2")
		if n := must1[string](t)(c.ConnectionNode(ctx, "conn-2")); n != "node-a" {
			t.Fatalf("ConnectionNode(conn-2) = %q, want node-a", n)
		}
		// Other connections and room metadata are untouched.
		wantJSON(t, "room metadata", must1[[]byte](t)(c.RoomMetadata(ctx, "room-1")), `{"topic":"x"}`)
		wantJSON(t, "conn-2 state", stateOf(t, c, "room-1", "conn-2"), `{"status":"idle"}`)

		r = must1[coord.RemovedConnection](t)(c.RemoveConnection(ctx, "conn-1"))
		if r.ConnID != "conn-1" || r.Node != "" || len(r.Rooms) != 0 || len(r.Present) != 0 {
			t.Fatalf("second RemoveConnection = %+v", r)
		}
		// The state went with the presence: present again, it has none.
		must1[bool](t)(c.JoinPresence(ctx, "room-1", "conn-1", time.Minute))
		wantJSON(t, "state", stateOf(t, c, "room-1", "conn-1"), "")
	}},
}

var connMetaTests = []test{
	{"SetGetReplace", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		must(t, c.RegisterConnection(ctx, "conn-a", "node-1"))
		must(t, c.RegisterConnection(ctx, "conn-b", "node-1"))
		wantJSON(t, "none yet", must1[[]byte](t)(c.ConnectionMetadata(ctx, "conn-a")), "")
		metaA := b(`{"name":"Client A","id":1}`)
		must(t, c.SetConnectionMetadata(ctx, "conn-a", metaA))
		metaA[2] = 'X' // the caller may reuse its buffer
		must(t, c.SetConnectionMetadata(ctx, "conn-b", b(`{"name":"Client B","id":2}`)))
		wantJSON(t, "a", must1[[]byte](t)(c.ConnectionMetadata(ctx, "conn-a")), `{"name":"Client A","id":1}`)
		must(t, c.SetConnectionMetadata(ctx, "conn-b", b(`{"user":"test-user","permissions":["read","write"]}`)))
		wantJSON(t, "b replaced", must1[[]byte](t)(c.ConnectionMetadata(ctx, "conn-b")), `{"user":"test-user","permissions":["read","write"]}`)

		// Metadata does not disturb routing (Mesh's bug).
		if n := must1[string](t)(c.ConnectionNode(ctx, "conn-a")); n != "node-1" {
			t.Fatalf("ConnectionNode after metadata = %q", n)
		}
	}},
	{"AllAndRoom", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		must(t, c.RegisterConnection(ctx, "conn-a", "node-1"))
		must(t, c.RegisterConnection(ctx, "conn-b", "node-1"))
		must(t, c.RegisterConnection(ctx, "conn-c", "node-2")) // no metadata
		must(t, c.SetConnectionMetadata(ctx, "conn-a", b(`{"name":"Client A","id":1}`)))
		must(t, c.SetConnectionMetadata(ctx, "conn-b", b(`{"name":"Client B","id":2}`)))
		must(t, c.SetConnectionMetadata(ctx, "conn-unregistered", b(`{"x":1}`)))
		all := must1[[]coord.ConnMetadata](t)(c.AllConnectionMetadata(ctx))
		got := map[string]string{}
		for _, m := range all {
			got[m.ConnID] = string(m.Metadata)
		}
		if len(all) != 3 || len(got) != 3 {
			t.Fatalf("AllConnectionMetadata = %v", got)
		}
		wantJSON(t, "all a", []byte(got["conn-a"]), `{"name":"Client A","id":1}`)
		wantJSON(t, "all b", []byte(got["conn-b"]), `{"name":"Client B","id":2}`)
		if got["conn-c"] != "" {
			t.Fatalf("all c = %q, want no metadata", got["conn-c"])
		}

		if r := must1[[]coord.ConnMetadata](t)(c.RoomConnectionMetadata(ctx, "non-existent-room")); len(r) != 0 {
			t.Fatalf("RoomConnectionMetadata(unknown) = %v", r)
		}
		must1[bool](t)(c.AddToRoom(ctx, "room-a", "conn-a"))
		must1[bool](t)(c.AddToRoom(ctx, "room-b", "conn-b"))
		must1[bool](t)(c.AddToRoom(ctx, "room-b", "conn-c"))
		ra := must1[[]coord.ConnMetadata](t)(c.RoomConnectionMetadata(ctx, "room-a"))
		if len(ra) != 1 || ra[0].ConnID != "conn-a" {
			t.Fatalf("room-a = %v", ra)
		}
		wantJSON(t, "room-a meta", ra[0].Metadata, `{"name":"Client A","id":1}`)
		rb := must1[[]coord.ConnMetadata](t)(c.RoomConnectionMetadata(ctx, "room-b"))
		if len(rb) != 2 {
			t.Fatalf("room-b = %v", rb)
		}
		for _, m := range rb {
			switch m.ConnID {
			case "conn-b":
				wantJSON(t, "room-b b", m.Metadata, `{"name":"Client B","id":2}`)
			case "conn-c":
				wantJSON(t, "room-b c", m.Metadata, "")
			default:
				t.Fatalf("room-b has %q", m.ConnID)
			}
		}
	}},
}

var lifecycleTests = []test{
	{"CanceledContext", func(t *testing.T, c coord.Coordinator) {
		ctx, cancel := context.WithCancel(bg(t))
		cancel()
		_, err := c.AddToRoom(ctx, "room", "conn-1")
		wantErr(t, err, context.Canceled)
		wantErr(t, c.Publish(ctx, "topic", b("x")), context.Canceled)
		_, err = c.Record(ctx, "rec")
		wantErr(t, err, context.Canceled)
		wantErr(t, c.RefreshPresence(ctx, []coord.PresenceEntry{{Room: "r", ConnID: "c", TTL: time.Second}}), context.Canceled)
		_, err = c.JoinRoom(ctx, "room", "conn-1", time.Second, nil)
		wantErr(t, err, context.Canceled)
	}},
	{"Close", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		must(t, c.RegisterConnection(ctx, "conn-1", "node-a"))
		must(t, c.Close())
		must(t, c.Close())
		wantErr(t, c.RegisterConnection(ctx, "conn-2", "node-a"), coord.ErrClosed)
		wantErr(t, c.Publish(ctx, "topic", b("x")), coord.ErrClosed)
		_, err := c.Subscribe(ctx, "topic", func(string, []byte) {})
		wantErr(t, err, coord.ErrClosed)
		_, err = c.Record(ctx, "rec")
		wantErr(t, err, coord.ErrClosed)
		_, err = c.JoinRoom(ctx, "room", "conn-1", time.Second, nil)
		wantErr(t, err, coord.ErrClosed)
		c.OnReconnect(func() {})() // no I/O, after Close too
	}},
}
