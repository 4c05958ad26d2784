package mesh

import (
	"fmt"
	"strings"
	"testing"

	"github.com/meshfast/meshfast/coord/memory"
)

// Error replies carry a stable code and a text for the client, never a
// decoder's or a coordinator's message; the detail is logged, once per
// error.
func TestErrorRepliesLeakNothing(t *testing.T) {
	t.Parallel()
	var logs logLines
	s := startServer(t, Options{Logf: logs.add})
	s.TrackPresence("tracked", PresenceOptions{})
	s.Expose("bind", func(c *Context) (any, error) {
		var v struct{ N int }
		if err := c.Bind(&v); err != nil {
			return nil, err
		}
		return v.N, nil
	})
	s.Expose("nil-map", func(c *Context) (any, error) {
		var m map[string]int
		m["x"]++ // a runtime error
		return nil, nil
	})
	w := dialWire(t, s)
	const (
		badRoom   = `{"error":"Invalid payload: expected {\"roomName\": string}","code":"EINVALID","name":"CodeError"}`
		emptyRoom = `{"error":"Invalid payload: \"roomName\" is empty","code":"EINVALID","name":"CodeError"}`
		badConn   = `{"error":"Invalid payload: expected {\"connectionId\": string}","code":"EINVALID","name":"CodeError"}`
		emptyConn = `{"error":"Invalid payload: \"connectionId\" is empty","code":"EINVALID","name":"CodeError"}`
		badRecord = `{"error":"Invalid payload: expected {\"recordId\": string, \"newValue\": any}","code":"ESERVER","name":"Error"}`
	)
	deep := strings.Repeat("[", 9000) + strings.Repeat("]", 9000)
	id := 0
	expect := func(command, payload, want string) {
		t.Helper()
		id++
		w.expect(fmt.Sprintf(`{"id":%d,"command":%q,"payload":%s}`, id, command, payload),
			fmt.Sprintf(`{"id":%d,"command":%q,"payload":%s}`, id, command, want))
	}
	// Mesh's own answers to a payload that does not fit, where it has one
	for _, p := range []string{`"x"`, `[1]`, `{"channel":5}`, `{"channel":` + deep + `}`} {
		expect("mesh/subscribe-channel", p, `{"success":false,"history":[]}`)
		expect("mesh/unsubscribe-channel", p, `false`)
	}
	for _, p := range []string{`"x"`, `{"recordId":5}`, `{"recordId":` + deep + `}`} {
		expect("mesh/subscribe-record", p, `{"success":false}`)
		expect("mesh/unsubscribe-record", p, `false`)
		expect("mesh/publish-record-update", p, badRecord)
	}
	for _, p := range []string{`"x"`, `{"roomName":5}`, `{"roomName":` + deep + `}`} {
		expect("mesh/subscribe-presence", p, `{"success":false,"present":[]}`)
		expect("mesh/unsubscribe-presence", p, `false`)
		expect("mesh/publish-presence-state", p, `false`)
		expect("mesh/clear-presence-state", p, `false`)
	}
	expect("mesh/get-my-connection-metadata", `"ignored, as in Mesh"`, `{"metadata":null}`)
	// meshfast's EINVALID, naming the field, where Mesh would send the
	// parser's or the coordinator's message
	for _, cmd := range []string{"mesh/join-room", "mesh/leave-room", "mesh/get-room-metadata"} {
		for _, p := range []string{`"lobby"`, `[1]`, `{"roomName":5}`, `{"roomName":{"a":1}}`, `{"roomName":` + deep + `}`} {
			expect(cmd, p, badRoom)
		}
		expect(cmd, `{"roomName":""}`, emptyRoom)
		expect(cmd, `{}`, emptyRoom)
		expect(cmd, `null`, emptyRoom)
	}
	for _, p := range []string{`"conn-1"`, `{"connectionId":5}`, `{"connectionId":` + deep + `}`} {
		expect("mesh/get-connection-metadata", p, badConn)
	}
	expect("mesh/get-connection-metadata", `{"connectionId":""}`, emptyConn)
	// an application's handler returning Bind's error
	expect("bind", `{"N":"seven"}`, `{"error":"Invalid payload","code":"EINVALID","name":"CodeError"}`)
	expect("bind", `{"N":7}`, `7`)
	// a bug in a handler
	expect("nil-map", `{}`, `{"error":"internal server error","code":"ESERVER","name":"Error"}`)
	// Mesh's own error for an unknown command, unchanged
	expect("no-such-command", `{}`, `{"error":"Command \"no-such-command\" not found","code":"ENOTFOUND","name":"CommandError"}`)

	// the detail is in the log, once per error, bounded
	logs.expect(t, "bind: Invalid payload: ")
	logs.expect(t, `command "nil-map" panicked: assignment to entry in nil map`)
	if n := logs.count("mesh/join-room: Invalid payload: expected"); n != 5 {
		t.Fatalf("%d log lines for 5 bad join payloads", n)
	}
	if n := logs.count(`mesh/join-room: Invalid payload: "roomName" is empty`); n != 0 {
		t.Fatalf("an error the client sees whole was logged %d times", n)
	}
	logs.mu.Lock()
	for _, line := range logs.lines {
		if len(line) > maxLoggedDetail+200 {
			t.Errorf("a log line of %d bytes", len(line))
		}
	}
	logs.mu.Unlock()
}

// A coordinator failure reaches the client as a generic server error, and
// the log as itself.
func TestCoordinatorErrorReply(t *testing.T) {
	t.Parallel()
	var logs logLines
	co := memory.New(memory.Options{})
	s := startServer(t, Options{Coordinator: co, Logf: logs.add})
	s.ExposeWritableRecord("doc", nil)
	w := dialWire(t, s)
	_ = co.Close() // every call fails from now on
	const generic = `{"error":"the server could not complete the command","code":"ESERVER","name":"Error"}`
	w.expect(`{"id":1,"command":"mesh/join-room","payload":{"roomName":"lobby"}}`,
		`{"id":1,"command":"mesh/join-room","payload":`+generic+`}`)
	w.expect(`{"id":2,"command":"mesh/get-room-metadata","payload":{"roomName":"lobby"}}`,
		`{"id":2,"command":"mesh/get-room-metadata","payload":`+generic+`}`)
	w.expect(`{"id":3,"command":"mesh/get-my-connection-metadata","payload":{}}`,
		`{"id":3,"command":"mesh/get-my-connection-metadata","payload":`+generic+`}`)
	// Mesh's text, with a cause for the client
	w.expect(`{"id":4,"command":"mesh/publish-record-update","payload":{"recordId":"doc","newValue":1}}`,
		`{"id":4,"command":"mesh/publish-record-update","payload":{"error":"Failed to publish update for record \"doc\": the server could not complete the command","code":"ESERVER","name":"Error"}}`)
	logs.expect(t, "mesh/join-room: the server could not complete the command (mesh/join-room: coordinator: coord: closed")
	if n := logs.count("coordinator: coord: closed"); n != 4 {
		t.Fatalf("%d log lines for 4 failed commands: %q", n, logs.lines)
	}
}
