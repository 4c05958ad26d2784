package coordtest

import (
	"fmt"
	"testing"
	"time"

	"github.com/meshfast/meshfast/coord"
)

// Tests of coord.Admin, run against every backend that implements it and
// skipped for the others.

type adminTest struct {
	name string
	run  func(t *testing.T, c coord.Coordinator, a coord.Admin)
}

// admin returns c's Admin part, or skips the test when c has none.
func admin(t *testing.T, c coord.Coordinator) coord.Admin {
	t.Helper()
	a, ok := c.(coord.Admin)
	if !ok {
		t.Skipf("%T does not implement coord.Admin", c)
	}
	return a
}

var adminTests = []adminTest{
	{"Registry", func(t *testing.T, c coord.Coordinator, a coord.Admin) {
		ctx := bg(t)
		must(t, c.RegisterConnection(ctx, "conn-1", "node-a"))
		must(t, c.RegisterConnection(ctx, "conn-2", "node-a"))
		must(t, c.RegisterConnection(ctx, "conn-3", "node-b"))
		wantSet(t, "Connections", must1[[]string](t)(a.Connections(ctx)), "conn-1", "conn-2", "conn-3")
		wantSet(t, "NodeConnections(a)", must1[[]string](t)(a.NodeConnections(ctx, "node-a")), "conn-1", "conn-2")
		wantSet(t, "NodeConnections(none)", must1[[]string](t)(a.NodeConnections(ctx, "node-none")))

		// Registering again moves the connection.
		must(t, c.RegisterConnection(ctx, "conn-2", "node-b"))
		wantSet(t, "NodeConnections(a) after move", must1[[]string](t)(a.NodeConnections(ctx, "node-a")), "conn-1")
		wantSet(t, "NodeConnections(b) after move", must1[[]string](t)(a.NodeConnections(ctx, "node-b")), "conn-2", "conn-3")

		// Unregistering removes the registry entry only.
		must1[bool](t)(c.AddToRoom(ctx, "room", "conn-1"))
		must(t, a.UnregisterConnection(ctx, "conn-1"))
		must(t, a.UnregisterConnection(ctx, "conn-1"))
		must(t, a.UnregisterConnection(ctx, "conn-never"))
		_, err := c.ConnectionNode(ctx, "conn-1")
		wantErr(t, err, coord.ErrNotFound)
		wantSet(t, "Connections after unregister", must1[[]string](t)(a.Connections(ctx)), "conn-2", "conn-3")
		wantSet(t, "NodeConnections(a) after unregister", must1[[]string](t)(a.NodeConnections(ctx, "node-a")))
		wantSet(t, "rooms after unregister", must1[[]string](t)(c.ConnectionRooms(ctx, "conn-1")), "room")

		// RemoveConnection takes it out of its node's connections.
		must1[coord.RemovedConnection](t)(c.RemoveConnection(ctx, "conn-3"))
		wantSet(t, "NodeConnections(b) after RemoveConnection", must1[[]string](t)(a.NodeConnections(ctx, "node-b")), "conn-2")
		// A connection in a room is not registered by it.
		must1[bool](t)(c.AddToRoom(ctx, "room", "conn-remote"))
		wantSet(t, "Connections", must1[[]string](t)(a.Connections(ctx)), "conn-2")
	}},
	{"ConnectionsMetadata", func(t *testing.T, c coord.Coordinator, a coord.Admin) {
		ctx := bg(t)
		must(t, c.SetConnectionMetadata(ctx, "conn-a", b(`{"name":"Client A","id":1}`)))
		must(t, c.SetConnectionMetadata(ctx, "conn-b", b(`{"user":"test-user","permissions":["read","write"]}`)))
		many := must1[[][]byte](t)(a.ConnectionsMetadata(ctx, []string{"conn-b", "conn-x", "conn-a"}))
		if len(many) != 3 {
			t.Fatalf("ConnectionsMetadata len = %d", len(many))
		}
		wantJSON(t, "many[0]", many[0], `{"user":"test-user","permissions":["read","write"]}`)
		wantJSON(t, "many[1]", many[1], "")
		wantJSON(t, "many[2]", many[2], `{"name":"Client A","id":1}`)
		if none := must1[[][]byte](t)(a.ConnectionsMetadata(ctx, nil)); len(none) != 0 {
			t.Fatalf("ConnectionsMetadata(nil) = %q", none)
		}
	}},
	{"Rooms", func(t *testing.T, c coord.Coordinator, a coord.Admin) {
		ctx := bg(t)
		wantSet(t, "Rooms of nothing", must1[[]string](t)(a.Rooms(ctx)))
		must1[bool](t)(c.AddToRoom(ctx, "room1", "conn-a"))
		must1[bool](t)(c.AddToRoom(ctx, "room1", "conn-b"))
		must1[bool](t)(c.AddToRoom(ctx, "room2", "conn-a"))
		must1[bool](t)(c.AddToRoom(ctx, "room3", "conn-a"))
		must(t, c.SetRoomMetadata(ctx, "meta-only", b(`{"k":1}`)))
		wantSet(t, "Rooms", must1[[]string](t)(a.Rooms(ctx)), "room1", "room2", "room3")
		// Last member leaving: the room is no longer listed.
		must1[bool](t)(c.RemoveFromRoom(ctx, "room2", "conn-a"))
		must1[[]string](t)(c.ClearRoom(ctx, "room3"))
		wantSet(t, "Rooms after", must1[[]string](t)(a.Rooms(ctx)), "room1")
	}},
	{"PresenceState", func(t *testing.T, c coord.Coordinator, a coord.Admin) {
		ctx := bg(t)
		const room = "test:room:states"
		must1[bool](t)(c.JoinPresence(ctx, room, "conn-1", longTTL))
		must(t, c.SetPresenceState(ctx, room, "conn-1", b(`{"status":"typing"}`), 0))
		wantJSON(t, "present", must1[[]byte](t)(a.PresenceState(ctx, room, "conn-1")), `{"status":"typing"}`)
		// A state of a connection that is not present is stored.
		must(t, c.SetPresenceState(ctx, room, "conn-absent", b(`{"status":"ghost"}`), 0))
		wantJSON(t, "absent", must1[[]byte](t)(a.PresenceState(ctx, room, "conn-absent")), `{"status":"ghost"}`)
		wantJSON(t, "none", must1[[]byte](t)(a.PresenceState(ctx, room, "conn-none")), "")
		wantBool(t, "clear", must1[bool](t)(c.ClearPresenceState(ctx, room, "conn-absent")), true)
		wantJSON(t, "cleared", must1[[]byte](t)(a.PresenceState(ctx, room, "conn-absent")), "")
		// Leaving takes the state.
		must1[bool](t)(c.LeavePresence(ctx, room, "conn-1"))
		wantJSON(t, "after leave", must1[[]byte](t)(a.PresenceState(ctx, room, "conn-1")), "")
		// So does an expiry of the presence.
		var ex expiries
		defer c.OnPresenceExpiry(ex.handler)()
		must1[bool](t)(c.JoinPresence(ctx, room, "conn-2", shortTTL))
		must(t, c.SetPresenceState(ctx, room, "conn-2", b(`{"status":"idle"}`), 0))
		ex.wait(t, coord.ExpiredPresence, room, "conn-2")
		wantJSON(t, "after expiry", must1[[]byte](t)(a.PresenceState(ctx, room, "conn-2")), "")
	}},
	{"DeleteRecord", func(t *testing.T, c coord.Coordinator, a coord.Admin) {
		ctx := bg(t)
		wantBool(t, "delete missing", must1[bool](t)(a.DeleteRecord(ctx, "r")), false)
		must1[coord.RecordUpdate](t)(c.SetRecord(ctx, "r", b(`{"a":1}`)))
		must1[coord.RecordUpdate](t)(c.SetRecord(ctx, "r", b(`{"a":2}`)))
		wantBool(t, "delete", must1[bool](t)(a.DeleteRecord(ctx, "r")), true)
		wantRecord(t, c, "r", "", 0)
		wantUpdate(t, must1[coord.RecordUpdate](t)(c.SetRecord(ctx, "r", b(`{"a":2}`))), true, 1, "")
	}},
}

var adminNodeTests = []adminTest{
	{"HeartbeatAndDeath", func(t *testing.T, c coord.Coordinator, a coord.Admin) {
		ctx := bg(t)
		must(t, c.RegisterNode(ctx, "node-a", time.Minute))
		must(t, c.RegisterNode(ctx, "node-b", time.Minute))
		wantSet(t, "LiveNodes", must1[[]string](t)(a.LiveNodes(ctx)), "node-a", "node-b")
		wantSet(t, "DeadNodes", must1[[]string](t)(a.DeadNodes(ctx)))
		// A heartbeat re-arms the TTL, here to a short one.
		must(t, c.RegisterNode(ctx, "node-a", 50*time.Millisecond))
		eventually(t, func() error {
			dead := must1[[]string](t)(a.DeadNodes(ctx))
			if err := sameSet(dead, "node-a"); err != nil {
				return fmt.Errorf("DeadNodes: %v", err)
			}
			return sameSet(must1[[]string](t)(a.LiveNodes(ctx)), "node-b")
		})
		// A heartbeat revives it.
		must(t, c.RegisterNode(ctx, "node-a", time.Minute))
		wantSet(t, "LiveNodes after heartbeat", must1[[]string](t)(a.LiveNodes(ctx)), "node-a", "node-b")
		wantSet(t, "DeadNodes after heartbeat", must1[[]string](t)(a.DeadNodes(ctx)))

		// Graceful stop without connections: neither live nor dead.
		must(t, c.UnregisterNode(ctx, "node-a"))
		wantSet(t, "LiveNodes after unregister", must1[[]string](t)(a.LiveNodes(ctx)), "node-b")
		wantSet(t, "DeadNodes after unregister", must1[[]string](t)(a.DeadNodes(ctx)))
	}},
	{"HeartbeatKeepsAlive", func(t *testing.T, c coord.Coordinator, a coord.Admin) {
		ctx := bg(t)
		must(t, c.RegisterNode(ctx, "node-a", 50*time.Millisecond))
		must(t, c.RegisterNode(ctx, "node-a", time.Minute))
		// The sentinel registers after with the short TTL: once it is dead,
		// node-a would be too without the heartbeat.
		must(t, c.RegisterNode(ctx, "node-s", 50*time.Millisecond))
		eventually(t, func() error { return sameSet(must1[[]string](t)(a.DeadNodes(ctx)), "node-s") })
		wantSet(t, "LiveNodes", must1[[]string](t)(a.LiveNodes(ctx)), "node-a")
	}},
	{"OwnerWithoutHeartbeatIsDead", func(t *testing.T, c coord.Coordinator, a coord.Admin) {
		ctx := bg(t)
		must(t, c.RegisterConnection(ctx, "conn-1", "node-ghost"))
		wantSet(t, "DeadNodes", must1[[]string](t)(a.DeadNodes(ctx)), "node-ghost")
	}},
	{"RemoveNode", func(t *testing.T, c coord.Coordinator, a coord.Admin) {
		ctx := bg(t)
		must(t, c.RegisterNode(ctx, "node-dead", 40*time.Millisecond))
		must(t, c.RegisterNode(ctx, "node-live", time.Minute))
		must(t, c.RegisterConnection(ctx, "conn-d1", "node-dead"))
		must(t, c.RegisterConnection(ctx, "conn-d2", "node-dead"))
		must(t, c.RegisterConnection(ctx, "conn-l1", "node-live"))
		for _, id := range []string{"conn-d1", "conn-d2", "conn-l1"} {
			must1[bool](t)(c.AddToRoom(ctx, "lobby", id))
			must(t, c.SetConnectionMetadata(ctx, id, b(`{"id":"`+id+`"}`)))
		}
		must1[bool](t)(c.JoinPresence(ctx, "lobby", "conn-d1", time.Minute))
		must1[bool](t)(c.JoinPresence(ctx, "lobby", "conn-l1", time.Minute))
		eventually(t, func() error {
			return sameSet(must1[[]string](t)(a.DeadNodes(ctx)), "node-dead")
		})

		removed := must1[[]coord.RemovedConnection](t)(a.RemoveNode(ctx, "node-dead"))
		var ids []string
		for _, r := range removed {
			ids = append(ids, r.ConnID)
			if r.Node != "node-dead" {
				t.Fatalf("removed %+v", r)
			}
			wantSet(t, r.ConnID+" rooms", r.Rooms, "lobby")
			if r.ConnID == "conn-d1" {
				wantSet(t, "conn-d1 present", r.Present, "lobby")
			} else {
				wantSet(t, r.ConnID+" present", r.Present)
			}
		}
		wantSet(t, "removed", ids, "conn-d1", "conn-d2")
		wantSet(t, "DeadNodes after", must1[[]string](t)(a.DeadNodes(ctx)))
		wantSet(t, "LiveNodes after", must1[[]string](t)(a.LiveNodes(ctx)), "node-live")
		wantSet(t, "Connections", must1[[]string](t)(a.Connections(ctx)), "conn-l1")
		wantSet(t, "lobby", must1[[]string](t)(c.RoomMembers(ctx, "lobby")), "conn-l1")
		wantSet(t, "present", must1[[]string](t)(c.PresentConnections(ctx, "lobby")), "conn-l1")
		wantJSON(t, "d1 meta", must1[[]byte](t)(c.ConnectionMetadata(ctx, "conn-d1")), "")
		wantJSON(t, "l1 meta", must1[[]byte](t)(c.ConnectionMetadata(ctx, "conn-l1")), `{"id":"conn-l1"}`)
	}},
}

var adminClusterTests = []clusterTest{
	{"RemoveDeadNode", 2, func(t *testing.T, cs []coord.Coordinator) {
		ctx := bg(t)
		a0, a1 := admin(t, cs[0]), admin(t, cs[1])
		must(t, cs[0].RegisterNode(ctx, "node-a", 40*time.Millisecond))
		must(t, cs[1].RegisterNode(ctx, "node-b", longTTL))
		must(t, cs[0].RegisterConnection(ctx, "conn-a", "node-a"))
		must1[bool](t)(cs[0].AddToRoom(ctx, "lobby", "conn-a"))
		must1[bool](t)(cs[0].JoinPresence(ctx, "lobby", "conn-a", longTTL))
		eventually(t, func() error { return sameSet(must1[[]string](t)(a1.DeadNodes(ctx)), "node-a") })
		removed := must1[[]coord.RemovedConnection](t)(a1.RemoveNode(ctx, "node-a"))
		if len(removed) != 1 || removed[0].ConnID != "conn-a" {
			t.Fatalf("removed = %+v", removed)
		}
		wantSet(t, "present", removed[0].Present, "lobby")
		wantSet(t, "dead", must1[[]string](t)(a0.DeadNodes(ctx)))
		wantPresent(t, cs[0], "lobby")
	}},
}
