package coordtest

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/meshfast/meshfast/coord"
)

func wantJoin(t *testing.T, what string, got coord.RoomJoin, added, fresh bool, present ...string) {
	t.Helper()
	if got.Added != added || got.Fresh != fresh {
		t.Fatalf("%s: Added %v Fresh %v, want %v %v", what, got.Added, got.Fresh, added, fresh)
	}
	if present == nil {
		if got.Present != nil {
			t.Fatalf("%s: Present %q, want nil (untracked)", what, got.Present)
		}
		return
	}
	wantSet(t, what+": present", got.Present, present...)
}

// untracked is wantJoin's present list of an untracked join: none (nil).
var untracked []string

// sentinel publishes a last message on topic and waits for it, so that
// whatever r lacks then was never published.
func sentinel(t *testing.T, c coord.Coordinator, topic string, r *recorder) {
	t.Helper()
	must(t, c.Publish(bg(t), topic, b("sentinel")))
	eventually(t, func() error { return r.has(topic + "=sentinel") })
}

var joinTests = []test{
	{"Untracked", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		wantJoin(t, "join", must1[coord.RoomJoin](t)(c.JoinRoom(ctx, "plain", "conn-a", 0, b(`{"e":1}`))), true, false, untracked...)
		wantJoin(t, "join again", must1[coord.RoomJoin](t)(c.JoinRoom(ctx, "plain", "conn-a", 0, nil)), false, false, untracked...)
		wantBool(t, "IsInRoom", must1[bool](t)(c.IsInRoom(ctx, "plain", "conn-a")), true)
		wantSet(t, "rooms of a", must1[[]string](t)(c.ConnectionRooms(ctx, "conn-a")), "plain")
		wantPresent(t, c, "plain")
	}},
	{"Tracked", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		topic := coord.PresenceTopic("lobby")
		var events recorder
		must1[coord.Subscription](t)(c.Subscribe(ctx, topic, events.handler))
		wantJoin(t, "a joins", must1[coord.RoomJoin](t)(c.JoinRoom(ctx, "lobby", "conn-a", longTTL, b(`{"join":"a"}`))), true, true, "conn-a")
		eventually(t, func() error { return events.has(topic + `={"join":"a"}`) })
		ev := b(`{"join":"b"}`)
		wantJoin(t, "b joins", must1[coord.RoomJoin](t)(c.JoinRoom(ctx, "lobby", "conn-b", longTTL, ev)), true, true, "conn-a", "conn-b")
		copy(ev, `{"XXXX":"b"}`) // the event was copied before JoinRoom returned
		// Joining again: a member and present already, no event.
		wantJoin(t, "a again", must1[coord.RoomJoin](t)(c.JoinRoom(ctx, "lobby", "conn-a", longTTL, b(`{"join":"a2"}`))), false, false, "conn-a", "conn-b")
		// Present already (JoinPresence alone), not a member yet.
		must1[bool](t)(c.JoinPresence(ctx, "lobby", "conn-c", longTTL))
		wantJoin(t, "c joins", must1[coord.RoomJoin](t)(c.JoinRoom(ctx, "lobby", "conn-c", longTTL, b(`{"join":"c"}`))), true, false, "conn-a", "conn-b", "conn-c")
		// Fresh without an event to publish.
		wantJoin(t, "d joins", must1[coord.RoomJoin](t)(c.JoinRoom(ctx, "lobby", "conn-d", longTTL, nil)), true, true, "conn-a", "conn-b", "conn-c", "conn-d")
		sentinel(t, c, topic, &events)
		if got, want := events.get(), []string{topic + `={"join":"a"}`, topic + `={"join":"b"}`, topic + "=sentinel"}; !slices.Equal(got, want) {
			t.Fatalf("events %q, want %q", got, want)
		}
		wantSet(t, "members", must1[[]string](t)(c.RoomMembers(ctx, "lobby")), "conn-a", "conn-b", "conn-c", "conn-d")
		wantPresent(t, c, "lobby", "conn-a", "conn-b", "conn-c", "conn-d")
		// The disconnect cleanup finds what JoinRoom wrote.
		removed := must1[coord.RemovedConnection](t)(c.RemoveConnection(ctx, "conn-a"))
		wantSet(t, "removed rooms", removed.Rooms, "lobby")
		wantSet(t, "removed presence", removed.Present, "lobby")
	}},
	{"TTL", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		var ex expiries
		defer c.OnPresenceExpiry(ex.handler)()
		wantJoin(t, "join", must1[coord.RoomJoin](t)(c.JoinRoom(ctx, "brief", "conn-a", shortTTL, nil)), true, true, "conn-a")
		ex.wait(t, coord.ExpiredPresence, "brief", "conn-a")
		wantPresent(t, c, "brief")
		wantBool(t, "still a member", must1[bool](t)(c.IsInRoom(ctx, "brief", "conn-a")), true)
		// Joining after the lapse is fresh again.
		wantJoin(t, "rejoin", must1[coord.RoomJoin](t)(c.JoinRoom(ctx, "brief", "conn-a", longTTL, nil)), false, true, "conn-a")
	}},
	{"InvalidArguments", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		_, err := c.JoinRoom(ctx, "", "conn-a", 0, nil)
		wantErr(t, err, coord.ErrInvalidArgument)
		_, err = c.JoinRoom(ctx, "room", "", longTTL, nil)
		wantErr(t, err, coord.ErrInvalidArgument)
		_, err = c.JoinRoom(ctx, "room", "conn-a", -1, nil)
		wantErr(t, err, coord.ErrInvalidArgument)
		wantSet(t, "members", must1[[]string](t)(c.RoomMembers(ctx, "room")))
	}},
	{"Storm", func(t *testing.T, c coord.Coordinator) {
		joinStorm(t, []coord.Coordinator{c})
	}},
}

// joinStorm joins 300 connections, through the given nodes in turn, to 6
// rooms at once (two untracked), and checks every outcome and that each
// fresh join published its event exactly once, to a subscriber on every
// node.
func joinStorm(t *testing.T, cs []coord.Coordinator) {
	ctx := bg(t)
	const conns, rooms = 300, 6
	room := func(i int) string { return fmt.Sprintf("storm-%d", i%rooms) }
	tracked := func(i int) bool { return i%rooms >= 2 }
	events := make([]recorder, len(cs))
	for k, c := range cs {
		for r := range rooms {
			must1[coord.Subscription](t)(c.Subscribe(ctx, coord.PresenceTopic(room(r)), events[k].handler))
		}
	}
	results := make([]coord.RoomJoin, conns)
	errs := make([]error, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			ttl := longTTL
			if !tracked(i) {
				ttl = 0
			}
			results[i], errs[i] = cs[i%len(cs)].JoinRoom(ctx, room(i), fmt.Sprintf("conn-%d", i), ttl, fmt.Appendf(nil, "join-%d", i))
		})
	}
	wg.Wait()
	members := make(map[string][]string)
	for i := range conns {
		id := fmt.Sprintf("conn-%d", i)
		if errs[i] != nil {
			t.Fatalf("join %d: %v", i, errs[i])
		}
		r := results[i]
		if !r.Added || r.Fresh != tracked(i) {
			t.Fatalf("join %d: %+v", i, r)
		}
		if tracked(i) != (r.Present != nil) || (tracked(i) && !slices.Contains(r.Present, id)) {
			t.Fatalf("join %d: present %q does not hold the joiner", i, r.Present)
		}
		members[room(i)] = append(members[room(i)], id)
	}
	for r := range rooms {
		wantSet(t, "members of "+room(r), must1[[]string](t)(cs[0].RoomMembers(ctx, room(r))), members[room(r)]...)
		if tracked(r) {
			wantPresent(t, cs[len(cs)-1], room(r), members[room(r)]...)
		} else {
			wantPresent(t, cs[len(cs)-1], room(r))
		}
	}
	for k, c := range cs {
		for r := range rooms {
			sentinel(t, c, coord.PresenceTopic(room(r)), &events[k])
		}
	}
	for k := range cs {
		got := events[k].get()
		for i := range conns {
			msg := coord.PresenceTopic(room(i)) + "=" + fmt.Sprintf("join-%d", i)
			n := 0
			for _, m := range got {
				if m == msg {
					n++
				}
			}
			if want := map[bool]int{true: 1, false: 0}[tracked(i)]; n != want {
				t.Fatalf("node %d got %d join events of conn-%d, want %d", k, n, i, want)
			}
		}
	}
}

var joinClusterTests = []clusterTest{
	{"JoinRoomAcrossNodes", 2, func(t *testing.T, cs []coord.Coordinator) {
		ctx := bg(t)
		topic := coord.PresenceTopic("lobby")
		var onA recorder
		must1[coord.Subscription](t)(cs[0].Subscribe(ctx, topic, onA.handler))
		wantJoin(t, "b1 joins on b", must1[coord.RoomJoin](t)(cs[1].JoinRoom(ctx, "lobby", "conn-b1", longTTL, b(`{"join":"b1"}`))), true, true, "conn-b1")
		eventually(t, func() error { return onA.has(topic + `={"join":"b1"}`) })
		wantJoin(t, "a1 joins on a", must1[coord.RoomJoin](t)(cs[0].JoinRoom(ctx, "lobby", "conn-a1", longTTL, nil)), true, true, "conn-a1", "conn-b1")
		wantSet(t, "members seen by b", must1[[]string](t)(cs[1].RoomMembers(ctx, "lobby")), "conn-a1", "conn-b1")
	}},
	{"JoinStormAcrossNodes", 3, func(t *testing.T, cs []coord.Coordinator) {
		joinStorm(t, cs)
	}},
}
