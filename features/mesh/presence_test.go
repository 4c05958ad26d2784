package mesh

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/meshfast/meshfast/internal/testutil"
)

var tsRe = regexp.MustCompile(`"timestamp":\d+`)

// nextEvent returns the next frame with its timestamp replaced by T.
func (w *wire) nextEvent() string {
	w.t.Helper()
	return tsRe.ReplaceAllString(w.next(), `"timestamp":T`)
}

func presenceServer(t *testing.T) *Server {
	s := startServer(t, Options{})
	s.TrackPresencePattern(regexp.MustCompile(`^test:room:.*`), PresenceOptions{})
	return s
}

func TestPresenceSubscribeAndEvents(t *testing.T) {
	t.Parallel()
	s := presenceServer(t)
	a, b := dialWire(t, s), dialWire(t, s)
	a.expect(`{"id":1,"command":"mesh/subscribe-presence","payload":{"roomName":"untracked:room"}}`,
		`{"id":1,"command":"mesh/subscribe-presence","payload":{"success":false,"present":[]}}`)
	a.expect(`{"id":2,"command":"mesh/subscribe-presence","payload":{"roomName":"test:room:1"}}`,
		`{"id":2,"command":"mesh/subscribe-presence","payload":{"success":true,"present":[],"states":{}}}`)
	// join through the server API
	if err := s.AddToRoom(bg(), "test:room:1", b.id); err != nil {
		t.Fatal(err)
	}
	if got := a.nextEvent(); got != `{"command":"mesh/presence-update","payload":{"type":"join","connectionId":"`+b.id+`","roomName":"test:room:1","timestamp":T}}` {
		t.Fatalf("join event %s", got)
	}
	if err := s.RemoveFromRoom(bg(), "test:room:1", b.id); err != nil {
		t.Fatal(err)
	}
	if got := a.nextEvent(); got != `{"command":"mesh/presence-update","payload":{"type":"leave","connectionId":"`+b.id+`","roomName":"test:room:1","timestamp":T}}` {
		t.Fatalf("leave event %s", got)
	}
	// join through the command: the reply lists who is present
	b.expect(`{"id":1,"command":"mesh/join-room","payload":{"roomName":"test:room:1"}}`,
		`{"id":1,"command":"mesh/join-room","payload":{"success":true,"present":["`+b.id+`"]}}`)
	if got := a.nextEvent(); got != `{"command":"mesh/presence-update","payload":{"type":"join","connectionId":"`+b.id+`","roomName":"test:room:1","timestamp":T}}` {
		t.Fatalf("join event %s", got)
	}
	a.expect(`{"id":3,"command":"mesh/unsubscribe-presence","payload":{"roomName":"test:room:1"}}`,
		`{"id":3,"command":"mesh/unsubscribe-presence","payload":true}`)
	b.expect(`{"id":2,"command":"mesh/leave-room","payload":{"roomName":"test:room:1"}}`,
		`{"id":2,"command":"mesh/leave-room","payload":{"success":true}}`)
	a.silent(100 * time.Millisecond)
	a.expect(`{"id":4,"command":"mesh/unsubscribe-presence","payload":{"roomName":"test:room:1"}}`,
		`{"id":4,"command":"mesh/unsubscribe-presence","payload":false}`)
}

func TestPresenceGuardAndInitialList(t *testing.T) {
	t.Parallel()
	s := presenceServer(t)
	a, b := dialWire(t, s), dialWire(t, s)
	s.TrackPresence("guarded:room", PresenceOptions{Guard: func(c *Connection, room string) bool { return c.ID() == a.id }})
	a.expect(`{"id":1,"command":"mesh/subscribe-presence","payload":{"roomName":"guarded:room"}}`,
		`{"id":1,"command":"mesh/subscribe-presence","payload":{"success":true,"present":[],"states":{}}}`)
	b.expect(`{"id":1,"command":"mesh/subscribe-presence","payload":{"roomName":"guarded:room"}}`,
		`{"id":1,"command":"mesh/subscribe-presence","payload":{"success":false,"present":[]}}`)
	_ = s.AddToRoom(bg(), "test:room:initial", a.id)
	_ = s.AddToRoom(bg(), "test:room:initial", b.id)
	present, _ := s.PresentConnections(bg(), "test:room:initial")
	slices.Sort(present)
	want := []string{a.id, b.id}
	slices.Sort(want)
	if !slices.Equal(present, want) {
		t.Fatalf("present %v want %v", present, want)
	}
}

func TestPresenceDisconnectAndExpiry(t *testing.T) {
	t.Parallel()
	s := presenceServer(t)
	s.TrackPresence("test:room:ttl", PresenceOptions{TTL: 150 * time.Millisecond})
	watcher, quiet, leaver := dialWire(t, s), dialWire(t, s), dialWire(t, s)
	watcher.expect(`{"id":1,"command":"mesh/subscribe-presence","payload":{"roomName":"test:room:ttl"}}`,
		`{"id":1,"command":"mesh/subscribe-presence","payload":{"success":true,"present":[],"states":{}}}`)
	// a connection whose pongs never come expires
	_ = s.AddToRoom(bg(), "test:room:ttl", quiet.id)
	if got := watcher.nextEvent(); got != `{"command":"mesh/presence-update","payload":{"type":"join","connectionId":"`+quiet.id+`","roomName":"test:room:ttl","timestamp":T}}` {
		t.Fatalf("join %s", got)
	}
	if got := watcher.nextEvent(); got != `{"command":"mesh/presence-update","payload":{"type":"leave","connectionId":"`+quiet.id+`","roomName":"test:room:ttl","timestamp":T}}` {
		t.Fatalf("expiry leave %s", got)
	}
	if p, _ := s.PresentConnections(bg(), "test:room:ttl"); len(p) != 0 {
		t.Fatalf("still present after expiry: %v", p)
	}
	// a disconnect is a leave
	_ = s.AddToRoom(bg(), "test:room:ttl", leaver.id)
	watcher.nextEvent()
	leaver.c.CloseNow()
	if got := watcher.nextEvent(); got != `{"command":"mesh/presence-update","payload":{"type":"leave","connectionId":"`+leaver.id+`","roomName":"test:room:ttl","timestamp":T}}` {
		t.Fatalf("disconnect leave %s", got)
	}
}

func TestPresencePongRefreshesTTL(t *testing.T) {
	t.Parallel()
	s := presenceServer(t)
	s.TrackPresence("test:room:ttl", PresenceOptions{TTL: 200 * time.Millisecond})
	w := dialWire(t, s)
	_ = s.AddToRoom(bg(), "test:room:ttl", w.id)
	// pongs every 50 ms keep it present well past the TTL
	deadline := time.Now().Add(600 * time.Millisecond)
	for time.Now().Before(deadline) {
		w.send(`{"id":1,"command":"pong","payload":{}}`)
		time.Sleep(50 * time.Millisecond)
		if p, _ := s.PresentConnections(bg(), "test:room:ttl"); !slices.Contains(p, w.id) {
			t.Fatalf("expired despite pongs")
		}
	}
	// and once they stop, it expires
	testutil.Eventually(t, 5*time.Second, func() error {
		if p, _ := s.PresentConnections(bg(), "test:room:ttl"); slices.Contains(p, w.id) {
			return errors.New("still present")
		}
		return nil
	})
}

func TestPresenceState(t *testing.T) {
	t.Parallel()
	s := presenceServer(t)
	a, b := dialWire(t, s), dialWire(t, s)
	room := "test:room:states"
	a.expect(`{"id":1,"command":"mesh/subscribe-presence","payload":{"roomName":"`+room+`"}}`,
		`{"id":1,"command":"mesh/subscribe-presence","payload":{"success":true,"present":[],"states":{}}}`)
	// not in the room yet, untracked room, falsy state: refused
	b.expect(`{"id":1,"command":"mesh/publish-presence-state","payload":{"roomName":"`+room+`","state":{"status":"typing"}}}`,
		`{"id":1,"command":"mesh/publish-presence-state","payload":false}`)
	b.expect(`{"id":2,"command":"mesh/join-room","payload":{"roomName":"untracked:room"}}`,
		`{"id":2,"command":"mesh/join-room","payload":{"success":true,"present":[]}}`)
	b.expect(`{"id":3,"command":"mesh/publish-presence-state","payload":{"roomName":"untracked:room","state":{"status":"typing"}}}`,
		`{"id":3,"command":"mesh/publish-presence-state","payload":false}`)
	b.send(`{"id":4,"command":"mesh/join-room","payload":{"roomName":"` + room + `"}}`)
	b.next()
	a.nextEvent() // join
	b.expect(`{"id":5,"command":"mesh/publish-presence-state","payload":{"roomName":"`+room+`"}}`,
		`{"id":5,"command":"mesh/publish-presence-state","payload":false}`)
	b.expect(`{"id":6,"command":"mesh/publish-presence-state","payload":{"roomName":"`+room+`","state":{"status":"typing"}}}`,
		`{"id":6,"command":"mesh/publish-presence-state","payload":true}`)
	if got := a.nextEvent(); got != `{"command":"mesh/presence-update","payload":{"type":"state","connectionId":"`+b.id+`","roomName":"`+room+`","state":{"status":"typing"},"timestamp":T}}` {
		t.Fatalf("state event %s", got)
	}
	b.expect(`{"id":7,"command":"mesh/publish-presence-state","payload":{"roomName":"`+room+`","state":{"status":"idle"}}}`,
		`{"id":7,"command":"mesh/publish-presence-state","payload":true}`)
	a.nextEvent()
	states, _ := s.PresenceStates(bg(), room)
	if string(states[b.id]) != `{"status":"idle"}` {
		t.Fatalf("newest state should win: %s", states[b.id])
	}
	// a newcomer sees present and states in its subscribe reply
	c := dialWire(t, s)
	c.send(`{"id":1,"command":"mesh/subscribe-presence","payload":{"roomName":"` + room + `"}}`)
	if got := c.next(); got != `{"id":1,"command":"mesh/subscribe-presence","payload":{"success":true,"present":["`+b.id+`"],"states":{"`+b.id+`":{"status":"idle"}}}}` {
		t.Fatalf("subscribe with states %s", got)
	}
	b.expect(`{"id":8,"command":"mesh/clear-presence-state","payload":{"roomName":"`+room+`"}}`,
		`{"id":8,"command":"mesh/clear-presence-state","payload":true}`)
	if got := a.nextEvent(); got != `{"command":"mesh/presence-update","payload":{"type":"state","connectionId":"`+b.id+`","roomName":"`+room+`","state":null,"timestamp":T}}` {
		t.Fatalf("clear event %s", got)
	}
	// expireAfter pushes a null state when it lapses
	b.expect(`{"id":9,"command":"mesh/publish-presence-state","payload":{"roomName":"`+room+`","state":{"status":"typing"},"expireAfter":100}}`,
		`{"id":9,"command":"mesh/publish-presence-state","payload":true}`)
	a.nextEvent()
	if got := a.nextEvent(); got != `{"command":"mesh/presence-update","payload":{"type":"state","connectionId":"`+b.id+`","roomName":"`+room+`","state":null,"timestamp":T}}` {
		t.Fatalf("expiry event %s", got)
	}
	// leaving deletes the state with a leave event only
	b.expect(`{"id":10,"command":"mesh/publish-presence-state","payload":{"roomName":"`+room+`","state":{"status":"typing"}}}`,
		`{"id":10,"command":"mesh/publish-presence-state","payload":true}`)
	a.nextEvent()
	b.send(`{"id":11,"command":"mesh/leave-room","payload":{"roomName":"` + room + `"}}`)
	b.next()
	if got := a.nextEvent(); got != `{"command":"mesh/presence-update","payload":{"type":"leave","connectionId":"`+b.id+`","roomName":"`+room+`","timestamp":T}}` {
		t.Fatalf("leave %s", got)
	}
	a.silent(100 * time.Millisecond)
	if st, _ := s.PresenceStates(bg(), room); len(st) != 0 {
		t.Fatalf("state survived leave: %v", st)
	}
}

func TestPresenceStateIsolationAndDisconnect(t *testing.T) {
	t.Parallel()
	s := presenceServer(t)
	a := dialWire(t, s)
	for i, room := range []string{"test:room:isolation-1", "test:room:isolation-2"} {
		a.send(fmt.Sprintf(`{"id":%d,"command":"mesh/join-room","payload":{"roomName":%q}}`, i+1, room))
		a.next()
		a.expect(fmt.Sprintf(`{"id":%d,"command":"mesh/publish-presence-state","payload":{"roomName":%q,"state":{"room":%q}}}`, 10+i, room, room),
			fmt.Sprintf(`{"id":%d,"command":"mesh/publish-presence-state","payload":true}`, 10+i))
	}
	a.expect(`{"id":20,"command":"mesh/publish-presence-state","payload":{"roomName":"test:room:isolation-1","state":{"room":"updated"}}}`,
		`{"id":20,"command":"mesh/publish-presence-state","payload":true}`)
	s1, _ := s.PresenceStates(bg(), "test:room:isolation-1")
	s2, _ := s.PresenceStates(bg(), "test:room:isolation-2")
	if string(s1[a.id]) != `{"room":"updated"}` || string(s2[a.id]) != `{"room":"test:room:isolation-2"}` {
		t.Fatalf("states %s %s", s1[a.id], s2[a.id])
	}
	a.c.CloseNow()
	testutil.Eventually(t, 5*time.Second, func() error {
		if st, _ := s.PresenceStates(bg(), "test:room:isolation-1"); len(st) != 0 {
			return fmt.Errorf("states after disconnect: %v", st)
		}
		return nil
	})
}
