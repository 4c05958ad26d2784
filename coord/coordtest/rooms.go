package coordtest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/meshfast/meshfast/coord"
)

var roomTests = []test{
	{"Membership", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		// C-rooms-1.
		wantBool(t, "first add", must1[bool](t)(c.AddToRoom(ctx, "room1", "conn-a")), true)
		wantBool(t, "second add", must1[bool](t)(c.AddToRoom(ctx, "room1", "conn-a")), false)
		must1[bool](t)(c.AddToRoom(ctx, "room1", "conn-b"))
		must1[bool](t)(c.AddToRoom(ctx, "room2", "conn-a"))
		for _, tc := range []struct {
			room, conn string
			want       bool
		}{
			{"room1", "conn-a", true}, {"room1", "conn-b", true}, {"room2", "conn-a", true},
			{"room2", "conn-b", false}, {"room3", "conn-a", false},
		} {
			got := must1[bool](t)(c.IsInRoom(ctx, tc.room, tc.conn))
			wantBool(t, fmt.Sprintf("IsInRoom(%s, %s)", tc.room, tc.conn), got, tc.want)
		}
		wantSet(t, "members room1", must1[[]string](t)(c.RoomMembers(ctx, "room1")), "conn-a", "conn-b")
		wantSet(t, "members room3", must1[[]string](t)(c.RoomMembers(ctx, "room3")))
		wantSet(t, "rooms of a", must1[[]string](t)(c.ConnectionRooms(ctx, "conn-a")), "room1", "room2")
		wantSet(t, "rooms of x", must1[[]string](t)(c.ConnectionRooms(ctx, "conn-x")))

		wantBool(t, "remove", must1[bool](t)(c.RemoveFromRoom(ctx, "room1", "conn-a")), true)
		wantBool(t, "remove again", must1[bool](t)(c.RemoveFromRoom(ctx, "room1", "conn-a")), false)
		wantBool(t, "remove unknown", must1[bool](t)(c.RemoveFromRoom(ctx, "room9", "conn-z")), false)
		wantBool(t, "IsInRoom after remove", must1[bool](t)(c.IsInRoom(ctx, "room1", "conn-a")), false)
		wantSet(t, "rooms of a after remove", must1[[]string](t)(c.ConnectionRooms(ctx, "conn-a")), "room2")
	}},
	{"MembershipDoesNotNeedRegistration", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		must1[bool](t)(c.AddToRoom(ctx, "room", "conn-remote"))
		wantSet(t, "members", must1[[]string](t)(c.RoomMembers(ctx, "room")), "conn-remote")
		wantSet(t, "rooms", must1[[]string](t)(c.ConnectionRooms(ctx, "conn-remote")), "room")
		_, err := c.ConnectionNode(ctx, "conn-remote")
		wantErr(t, err, coord.ErrNotFound)
	}},
	{"RemoveFromAllRooms", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		for _, r := range []string{"r1", "r2", "r3"} {
			must1[bool](t)(c.AddToRoom(ctx, r, "conn-a"))
		}
		must1[bool](t)(c.AddToRoom(ctx, "r1", "conn-b"))
		must1[bool](t)(c.JoinPresence(ctx, "r1", "conn-a", WaitTimeout))
		rooms := must1[[]string](t)(c.RemoveFromAllRooms(ctx, "conn-a"))
		wantSet(t, "returned rooms", rooms, "r1", "r2", "r3")
		wantSet(t, "rooms of a", must1[[]string](t)(c.ConnectionRooms(ctx, "conn-a")))
		wantSet(t, "r1", must1[[]string](t)(c.RoomMembers(ctx, "r1")), "conn-b")
		wantSet(t, "r2", must1[[]string](t)(c.RoomMembers(ctx, "r2")))
		// Like Mesh, presence is not touched.
		wantSet(t, "presence r1", must1[[]string](t)(c.PresentConnections(ctx, "r1")), "conn-a")
		wantSet(t, "again", must1[[]string](t)(c.RemoveFromAllRooms(ctx, "conn-a")))
	}},
	{"ClearRoom", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		must1[bool](t)(c.AddToRoom(ctx, "doomed", "conn-a"))
		must1[bool](t)(c.AddToRoom(ctx, "doomed", "conn-b"))
		must1[bool](t)(c.AddToRoom(ctx, "kept", "conn-a"))
		must(t, c.SetRoomMetadata(ctx, "doomed", b(`{"topic":"x"}`)))
		must(t, c.SetRoomMetadata(ctx, "kept", b(`{"topic":"y"}`)))
		removed := must1[[]string](t)(c.ClearRoom(ctx, "doomed"))
		wantSet(t, "removed", removed, "conn-a", "conn-b")
		wantSet(t, "members", must1[[]string](t)(c.RoomMembers(ctx, "doomed")))
		wantSet(t, "rooms of a", must1[[]string](t)(c.ConnectionRooms(ctx, "conn-a")), "kept")
		wantSet(t, "rooms of b", must1[[]string](t)(c.ConnectionRooms(ctx, "conn-b")))
		wantJSON(t, "metadata", must1[[]byte](t)(c.RoomMetadata(ctx, "doomed")), "")
		wantJSON(t, "other metadata", must1[[]byte](t)(c.RoomMetadata(ctx, "kept")), `{"topic":"y"}`)
		wantSet(t, "clear unknown", must1[[]string](t)(c.ClearRoom(ctx, "never")))
	}},
	{"ConcurrentSamePair", func(t *testing.T, c coord.Coordinator) {
		// Adds and removes of the same pairs race; whatever wins, the
		// members and the reverse index must agree (atomic per pair).
		ctx := bg(t)
		const conns, rooms, workers, ops = 3, 3, 6, 300
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(w), 7))
				for range ops {
					room, id := fmt.Sprintf("room-%d", r.IntN(rooms)), fmt.Sprintf("conn-%d", r.IntN(conns))
					var err error
					if r.IntN(2) == 0 {
						_, err = c.AddToRoom(ctx, room, id)
					} else {
						_, err = c.RemoveFromRoom(ctx, room, id)
					}
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		for i := range conns {
			id := fmt.Sprintf("conn-%d", i)
			index := must1[[]string](t)(c.ConnectionRooms(ctx, id))
			for j := range rooms {
				room := fmt.Sprintf("room-%d", j)
				member := slices.Contains(must1[[]string](t)(c.RoomMembers(ctx, room)), id)
				if member != slices.Contains(index, room) {
					t.Fatalf("%s in %s's members: %v; %s in %s's rooms: %v", id, room, member, room, id, !member)
				}
			}
		}
	}},
	{"ConcurrentJoinLeave", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		const conns, rooms = 16, 8
		var wg sync.WaitGroup
		for i := range conns {
			wg.Go(func() {
				id := fmt.Sprintf("conn-%d", i)
				for r := range rooms {
					_, _ = c.AddToRoom(ctx, fmt.Sprintf("room-%d", r), id)
				}
				if i%2 == 0 {
					_, _ = c.RemoveFromAllRooms(ctx, id)
				} else {
					_, _ = c.RemoveFromRoom(ctx, "room-0", id)
				}
			})
		}
		wg.Wait()
		for r := range rooms {
			room := fmt.Sprintf("room-%d", r)
			members := must1[[]string](t)(c.RoomMembers(ctx, room))
			for _, id := range members {
				var n int
				fmt.Sscanf(id, "conn-%d", &n)
				if n%2 == 0 || room == "room-0" {
					t.Fatalf("%s still has %s", room, id)
				}
				if !slices.Contains(must1[[]string](t)(c.ConnectionRooms(ctx, id)), room) {
					t.Fatalf("reverse index of %s lacks %s", id, room)
				}
			}
			if r > 0 && len(members) != conns/2 {
				t.Fatalf("%s has %d members, want %d", room, len(members), conns/2)
			}
		}
	}},
}

var roomMetaTests = []test{
	{"SetUpdateAllClear", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		// C-rooms-2.
		must(t, c.SetRoomMetadata(ctx, "meta-room-1", b(`{"topic":"General","owner":"userA"}`)))
		wantJSON(t, "get", must1[[]byte](t)(c.RoomMetadata(ctx, "meta-room-1")), `{"topic":"General","owner":"userA"}`)
		merged := must1[[]byte](t)(c.UpdateRoomMetadata(ctx, "meta-room-1", b(`{"topic":"Updated Topic","settings":{"max":10}}`)))
		// Key order of {...current, ...partial}.
		if string(merged) != `{"topic":"Updated Topic","owner":"userA","settings":{"max":10}}` {
			t.Fatalf("merged = %s", merged)
		}
		wantJSON(t, "after update", must1[[]byte](t)(c.RoomMetadata(ctx, "meta-room-1")), string(merged))
		must(t, c.SetRoomMetadata(ctx, "meta-room-2", b(`{"topic":"Gaming","private":true}`)))
		wantJSON(t, "room 2", must1[[]byte](t)(c.RoomMetadata(ctx, "meta-room-2")), `{"topic":"Gaming","private":true}`)
		wantJSON(t, "unknown", must1[[]byte](t)(c.RoomMetadata(ctx, "non-existent-room")), "")

		all := must1[map[string][]byte](t)(c.AllRoomMetadata(ctx))
		if len(all) != 2 {
			t.Fatalf("AllRoomMetadata has %d rooms", len(all))
		}
		wantJSON(t, "all 1", all["meta-room-1"], string(merged))
		wantJSON(t, "all 2", all["meta-room-2"], `{"topic":"Gaming","private":true}`)

		// Rooms may have metadata without members; ClearRoom deletes it.
		wantSet(t, "members", must1[[]string](t)(c.RoomMembers(ctx, "meta-room-1")))
		must1[[]string](t)(c.ClearRoom(ctx, "meta-room-1"))
		wantJSON(t, "after clear", must1[[]byte](t)(c.RoomMetadata(ctx, "meta-room-1")), "")
		if all := must1[map[string][]byte](t)(c.AllRoomMetadata(ctx)); len(all) != 1 {
			t.Fatalf("AllRoomMetadata after clear has %d rooms", len(all))
		}

		// Replacing replaces.
		must(t, c.SetRoomMetadata(ctx, "meta-room-2", b(`{"other":1}`)))
		wantJSON(t, "replaced", must1[[]byte](t)(c.RoomMetadata(ctx, "meta-room-2")), `{"other":1}`)
	}},
	{"UpdateEdgeCases", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		// No current metadata counts as {}.
		got := must1[[]byte](t)(c.UpdateRoomMetadata(ctx, "fresh", b(`{"a":1}`)))
		wantJSON(t, "fresh", got, `{"a":1}`)
		wantJSON(t, "stored", must1[[]byte](t)(c.RoomMetadata(ctx, "fresh")), `{"a":1}`)
		// Shallow: nested objects are replaced, not merged.
		must(t, c.SetRoomMetadata(ctx, "shallow", b(`{"s":{"x":1,"y":2},"k":true}`)))
		got = must1[[]byte](t)(c.UpdateRoomMetadata(ctx, "shallow", b(`{"s":{"x":3}}`)))
		wantJSON(t, "shallow", got, `{"s":{"x":3},"k":true}`)
		// A non-object current value is replaced.
		must(t, c.SetRoomMetadata(ctx, "scalar", b(`"just a string"`)))
		got = must1[[]byte](t)(c.UpdateRoomMetadata(ctx, "scalar", b(`{"a":1}`)))
		wantJSON(t, "scalar", got, `{"a":1}`)
		// The partial value must be an object.
		_, err := c.UpdateRoomMetadata(ctx, "fresh", b(`[1,2]`))
		wantErr(t, err, coord.ErrNotObject)
		_, err = c.UpdateRoomMetadata(ctx, "fresh", b(`{"a":`))
		wantErr(t, err, coord.ErrInvalidJSON)
		wantJSON(t, "unchanged", must1[[]byte](t)(c.RoomMetadata(ctx, "fresh")), `{"a":1}`)
	}},
	{"ConcurrentUpdates", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		const n = 24
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, err := c.UpdateRoomMetadata(ctx, "busy", []byte(fmt.Sprintf(`{"k%d":%d}`, i, i)))
				if err != nil {
					t.Errorf("update %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		want := "{"
		for i := range n {
			if i > 0 {
				want += ","
			}
			want += fmt.Sprintf(`"k%d":%d`, i, i)
		}
		// The merges ran in any order: the members' order is not known.
		wantSameValue(t, "every merge kept", must1[[]byte](t)(c.RoomMetadata(ctx, "busy")), want+"}")
	}},
}

var channelTests = []test{
	{"HistoryKeepsExactlyN", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		for i := 1; i <= 5; i++ {
			must(t, c.PublishToChannel(ctx, "test:channel", []byte(fmt.Sprintf("m%d", i)), 3))
		}
		wantHistory(t, c, "test:channel", 10, "m5", "m4", "m3")
		wantHistory(t, c, "test:channel", 2, "m5", "m4")
		wantHistory(t, c, "test:channel", 0)
		wantHistory(t, c, "test:channel", -1)
		wantHistory(t, c, "never", 5)

		// history 0 stores nothing and keeps what is there.
		must(t, c.PublishToChannel(ctx, "test:channel", b("m6"), 0))
		wantHistory(t, c, "test:channel", 10, "m5", "m4", "m3")
		// Each publish trims to its own N.
		must(t, c.PublishToChannel(ctx, "test:channel", b("m7"), 2))
		wantHistory(t, c, "test:channel", 10, "m7", "m5")
		must(t, c.PublishToChannel(ctx, "test:channel", b("m8"), 5))
		wantHistory(t, c, "test:channel", 10, "m8", "m7", "m5")
	}},
	{"HistoryLimit", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		// C-subscription-10.
		for i := 1; i <= 5; i++ {
			must(t, c.PublishToChannel(ctx, "test:channel", []byte(fmt.Sprintf("History message %d", i)), 10))
		}
		wantHistory(t, c, "test:channel", 3, "History message 5", "History message 4", "History message 3")
	}},
	{"PublishDelivers", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		var r1, r2 recorder
		must1[coord.Subscription](t)(c.Subscribe(ctx, "test:channel", r1.handler))
		must1[coord.Subscription](t)(c.Subscribe(ctx, "test:channel2", r2.handler))
		msg := b("Hello, Redis!")
		must(t, c.PublishToChannel(ctx, "test:channel", msg, 0))
		copy(msg, "XXXXX") // the caller may reuse its buffer
		must(t, c.PublishToChannel(ctx, "test:channel2", b("Message for channel 2"), 1))
		eventually(t, func() error { return r1.has("test:channel=Hello, Redis!") })
		eventually(t, func() error { return r2.has("test:channel2=Message for channel 2") })
		if got := r1.get(); len(got) != 1 {
			t.Fatalf("channel 1 got %q", got)
		}
	}},
}

func wantHistory(t *testing.T, c coord.Coordinator, channel string, limit int, want ...string) {
	t.Helper()
	got := must1[[][]byte](t)(c.ChannelHistory(bg(t), channel, limit))
	gs := make([]string, len(got))
	for i, g := range got {
		gs[i] = string(g)
	}
	if !slices.Equal(gs, want) {
		t.Fatalf("ChannelHistory(%s, %d) = %q, want %q", channel, limit, gs, want)
	}
}
