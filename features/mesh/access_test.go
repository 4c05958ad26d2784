package mesh

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

const (
	joinForbidden     = `{"error":"not allowed to join this room","code":"EFORBIDDEN","name":"CodeError"}`
	connMetaForbidden = `{"error":"not allowed to read this connection's metadata","code":"EFORBIDDEN","name":"CodeError"}`
	roomMetaForbidden = `{"error":"not allowed to read this room's metadata","code":"EFORBIDDEN","name":"CodeError"}`
)

// call sends one command and checks the reply's payload.
func (w *wire) call(id int, command, payload, want string) {
	w.t.Helper()
	w.expect(fmt.Sprintf(`{"id":%d,"command":%q,"payload":%s}`, id, command, payload),
		fmt.Sprintf(`{"id":%d,"command":%q,"payload":%s}`, id, command, want))
}

// accessServer has alice's and bob's connections (users from Authenticate)
// and the exposures and guards the tests below need.
func accessServer(t *testing.T, private bool) (s *Server, alice, alice2, bob *wire) {
	t.Helper()
	s = startServer(t, Options{Private: private, Authenticate: tokenAuth})
	s.ExposeRoom("lobby", nil)
	// "team:<user>:…" rooms: only their user may join
	s.ExposeRoomPattern(regexp.MustCompile(`^team:`), func(c *Connection, room string) bool {
		return strings.HasPrefix(room, "team:"+c.User()+":")
	})
	s.ExposeChannel("news", nil)
	s.TrackPresence("lobby", PresenceOptions{})
	dial := func(user string) *wire {
		w, _, err := dialWireWith(t, s, "/?token="+user, nil)
		if err != nil {
			t.Fatal(err)
		}
		w.welcome(s)
		return w
	}
	return s, dial("alice"), dial("alice"), dial("bob")
}

// Options.Private closes each of Mesh's open doors; what it does not cover
// stays as it was.
func TestPrivateClosesTheDoors(t *testing.T) {
	t.Parallel()
	s, alice, alice2, bob := accessServer(t, true)
	if err := s.SetRoomMetadata(bg(), "lobby", map[string]int{"topic": 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRoomMetadata(bg(), "secret", map[string]int{"code": 7}); err != nil {
		t.Fatal(err)
	}
	aliceMeta := `{"metadata":{"cookie":"","local":true,"origin":"","path":"/","user":"alice"}}`

	// joins: only exposed rooms, and only as their guard allows
	bob.call(1, "mesh/join-room", `{"roomName":"secret"}`, joinForbidden)
	bob.call(2, "mesh/join-room", `{"roomName":"lobby"}`, `{"success":true,"present":["`+bob.id+`"]}`)
	bob.call(3, "mesh/join-room", `{"roomName":"team:alice:1"}`, joinForbidden)
	alice.call(1, "mesh/join-room", `{"roomName":"team:alice:1"}`, `{"success":true,"present":[]}`)
	bob.call(4, "mesh/leave-room", `{"roomName":"secret"}`, `{"success":true}`) // leaving is never refused
	// the server itself may still put anyone anywhere
	if err := s.AddToRoom(bg(), "secret", bob.id); err != nil {
		t.Fatal(err)
	}

	// connection metadata: one's own only
	alice.call(2, "mesh/get-my-connection-metadata", `{}`, aliceMeta)
	alice.call(3, "mesh/get-connection-metadata", `{"connectionId":"`+alice.id+`"}`, aliceMeta)
	bob.call(5, "mesh/get-connection-metadata", `{"connectionId":"`+alice.id+`"}`, connMetaForbidden)
	alice2.call(1, "mesh/get-connection-metadata", `{"connectionId":"`+alice.id+`"}`, connMetaForbidden)
	bob.call(6, "mesh/get-connection-metadata", `{"connectionId":"conn-nobody"}`, connMetaForbidden) // existence not told
	// ... unless a guard allows more: a user's own other connections
	s.GuardConnectionMetadata(func(c *Connection, id string) bool {
		other := s.Connection(id)
		return other != nil && other.User() == c.User()
	})
	alice2.call(2, "mesh/get-connection-metadata", `{"connectionId":"`+alice.id+`"}`, aliceMeta)
	bob.call(7, "mesh/get-connection-metadata", `{"connectionId":"`+alice.id+`"}`, connMetaForbidden)

	// room metadata: members only
	bob.call(8, "mesh/get-room-metadata", `{"roomName":"lobby"}`, `{"metadata":{"topic":1}}`)
	bob.call(9, "mesh/get-room-metadata", `{"roomName":"secret"}`, `{"metadata":{"code":7}}`) // added by the server
	alice.call(4, "mesh/get-room-metadata", `{"roomName":"lobby"}`, roomMetaForbidden)
	alice.call(5, "mesh/get-room-metadata", `{"roomName":"nowhere"}`, roomMetaForbidden)
	// ... unless a guard allows more
	s.GuardRoomMetadata(func(c *Connection, room string) bool { return room == "lobby" })
	alice.call(6, "mesh/get-room-metadata", `{"roomName":"lobby"}`, `{"metadata":{"topic":1}}`)
	alice.call(7, "mesh/get-room-metadata", `{"roomName":"secret"}`, roomMetaForbidden)

	// what Private does not change: channels and presence need their
	// exposure, with or without it
	alice.call(8, "mesh/subscribe-channel", `{"channel":"news"}`, `{"success":true,"history":[]}`)
	alice.call(9, "mesh/subscribe-channel", `{"channel":"gossip"}`, `{"success":false,"history":[]}`)
	alice.call(10, "mesh/subscribe-presence", `{"roomName":"lobby"}`, `{"success":true,"present":["`+bob.id+`"],"states":{}}`)
	alice.call(11, "mesh/subscribe-presence", `{"roomName":"secret"}`, `{"success":false,"present":[]}`)
}

// Without Options.Private the doors are open, as in Mesh, and a guard, once
// set, decides for what it covers.
func TestOpenDoorsAndTheirGuards(t *testing.T) {
	t.Parallel()
	s, alice, _, bob := accessServer(t, false)
	if err := s.SetRoomMetadata(bg(), "secret", map[string]int{"code": 7}); err != nil {
		t.Fatal(err)
	}
	aliceMeta := `{"metadata":{"cookie":"","local":true,"origin":"","path":"/","user":"alice"}}`

	bob.call(1, "mesh/join-room", `{"roomName":"anything"}`, `{"success":true,"present":[]}`)
	bob.call(2, "mesh/join-room", `{"roomName":"team:alice:1"}`, joinForbidden) // an exposure's guard applies
	bob.call(3, "mesh/get-connection-metadata", `{"connectionId":"`+alice.id+`"}`, aliceMeta)
	bob.call(4, "mesh/get-room-metadata", `{"roomName":"secret"}`, `{"metadata":{"code":7}}`)

	s.GuardConnectionMetadata(func(c *Connection, id string) bool { return false })
	s.GuardRoomMetadata(func(c *Connection, room string) bool { return false })
	bob.call(5, "mesh/get-connection-metadata", `{"connectionId":"`+alice.id+`"}`, connMetaForbidden)
	bob.call(6, "mesh/get-my-connection-metadata", `{}`, strings.ReplaceAll(aliceMeta, "alice", "bob"))
	bob.call(7, "mesh/get-room-metadata", `{"roomName":"secret"}`, roomMetaForbidden)
	bob.call(8, "mesh/get-room-metadata", `{"roomName":"anything"}`, `{"metadata":null}`) // a member
	// a panicking guard refuses
	s.GuardRoomMetadata(func(c *Connection, room string) bool { panic("guard bug") })
	bob.call(9, "mesh/get-room-metadata", `{"roomName":"secret"}`, roomMetaForbidden)
	// removing the guards opens the doors again
	s.GuardConnectionMetadata(nil)
	s.GuardRoomMetadata(nil)
	bob.call(10, "mesh/get-connection-metadata", `{"connectionId":"`+alice.id+`"}`, aliceMeta)
	bob.call(11, "mesh/get-room-metadata", `{"roomName":"secret"}`, `{"metadata":{"code":7}}`)
}
