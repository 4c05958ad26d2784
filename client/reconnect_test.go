package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshfast/meshfast/protocol"
)

func TestBackoff(t *testing.T) {
	o := Options{ReconnectDelay: 100 * time.Millisecond, MaxReconnectDelay: 5 * time.Second}.withDefaults()
	for n, b := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 7: 5 * time.Second, 100: 5 * time.Second} {
		for range 50 {
			d := o.backoff(n)
			if d < b/2 || d > b {
				t.Fatalf("attempt %d: %v outside [%v, %v]", n, d, b/2, b)
			}
		}
	}
	def := Options{}.withDefaults()
	if def.ReconnectDelay != DefaultReconnectDelay || def.MaxReconnectDelay != DefaultMaxReconnectDelay ||
		def.PingTimeout != DefaultPingTimeout || def.MaxMissedPings != DefaultMaxMissedPings ||
		def.CommandTimeout != DefaultCommandTimeout || def.NoReconnect || def.MaxReconnectAttempts != 0 {
		t.Fatalf("defaults %+v", def)
	}
	if (Options{MaxMissedPings: -1}).withDefaults().MaxMissedPings != 0 {
		t.Fatal("negative MaxMissedPings is not 0")
	}
}

func TestDeadServerReconnects(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	// Generous windows: the machine may be busy, and only a stall of a
	// whole window between two pings may count as a dead server.
	c := newClient(t, s.url, Options{PingTimeout: 150 * time.Millisecond, ReconnectDelay: time.Millisecond})
	var events recorder[string]
	c.OnClose(func() { events.add("close") })
	c.OnConnect(func() { events.add("connect") })
	c.OnReconnect(func() { events.add("reconnect") })
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	fc := s.accept(t)

	// Pings keep the connection: 40 pings 10ms apart span over two windows.
	tick := time.NewTicker(10 * time.Millisecond)
	for range 40 {
		<-tick.C
		fc.send(`{"command":"ping","payload":{}}`)
		fc.expect(t, protocol.CmdPong)
	}
	tick.Stop()
	if n := s.accepted.Load(); n != 1 || c.Status() != Online {
		t.Fatalf("%d connections, status %v, with regular pings", n, c.Status())
	}

	// Then silence: within two windows the client gives up on the server,
	// closes the socket and reconnects.
	start := time.Now()
	fc2 := s.accept(t)
	if d := time.Since(start); d < 100*time.Millisecond { // at least one window after the last ping
		t.Fatalf("reconnected after %v, before a window passed", d)
	}
	select {
	case <-fc.closed:
	case <-time.After(waitFor):
		t.Fatal("old connection not closed")
	}
	want := []string{"connect", "close", "connect", "reconnect"}
	if got := events.wait(t, 4); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if c.Status() != Online {
		t.Fatalf("status %v", c.Status())
	}
	_ = fc2
}

func TestWatchdogOffWithNegativeTimeout(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	c, fc := connected(t, s, Options{PingTimeout: -1})
	fc.quiet(t, 50*time.Millisecond)
	if s.accepted.Load() != 1 || c.Status() != Online {
		t.Fatal("reconnected without a watchdog")
	}
}

// restoreServer answers every command a client restores, and records the
// frames of every connection after the first.
func restoreReplies(fc *fakeConn, f frame) {
	second := fc.id != "conn-1"
	switch f.cmd {
	case protocol.CmdJoinRoom:
		fc.reply(f, `{"success":true,"present":[]}`)
	case protocol.CmdSubscribePresence:
		fc.reply(f, `{"success":true,"present":[],"states":{}}`)
	case protocol.CmdPublishPresenceState:
		fc.reply(f, `true`)
	case protocol.CmdSubscribeChannel:
		if second && strings.Contains(f.payload, "refused") {
			fc.reply(f, `{"success":false,"history":[]}`)
		} else {
			fc.reply(f, `{"success":true,"history":["h1"]}`)
		}
	case protocol.CmdSubscribeRecord:
		if second {
			fc.reply(f, `{"success":true,"record":{"n":5},"version":5}`)
		} else {
			fc.reply(f, `{"success":true,"record":{"n":1},"version":1}`)
		}
	case "echo":
		fc.reply(f, f.payload)
	}
}

func TestReconnectRestores(t *testing.T) {
	// The second connection's replies wait for gate, which holds the
	// client in Reconnecting while the test queues a command.
	gate := make(chan struct{})
	var openGate sync.Once
	release := func() { openGate.Do(func() { close(gate) }) }
	s := newFakeServer(t, fakeOptions{assignID: true, respond: func(fc *fakeConn, f frame) {
		if fc.id != "conn-1" {
			<-gate
		}
		restoreReplies(fc, f)
	}})
	t.Cleanup(release) // runs before the server's cleanup
	var logs recorder[string]
	c, fc := connected(t, s, Options{
		ReconnectDelay:    time.Millisecond,
		AwaitConnectionID: true,
		Logf:              func(f string, a ...any) { logs.add(fmt.Sprintf(f, a...)) },
	})
	ctx := ctxT(t)
	var presence recorder[PresenceUpdate]
	var messages, refusedMsgs recorder[string]
	var records recorder[RecordUpdate]
	var events recorder[string]
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.JoinRoom(ctx, "plain")
	must(err)
	_, err = c.JoinRoom(ctx, "test:room:p", WithPresence(presence.add))
	must(err)
	_, err = c.PublishPresenceState(ctx, "test:room:p", map[string]string{"status": "online"}, 0)
	must(err)
	_, err = c.PublishPresenceState(ctx, "plain", "expiring", 10*time.Minute)
	must(err)
	_, err = c.SubscribeChannel(ctx, "news", messages.add, WithHistoryLimit(5))
	must(err)
	_, err = c.SubscribeChannel(ctx, "refused", refusedMsgs.add)
	must(err)
	_, err = c.SubscribeRecord(ctx, "doc", RecordPatch, records.add)
	must(err)
	messages.wait(t, 1)
	records.wait(t, 1)
	for range 8 {
		fc.next(t) // the frames above
	}
	if c.ConnectionID() != "conn-1" {
		t.Fatalf("ConnectionID %q", c.ConnectionID())
	}

	c.OnReconnect(func() { events.add("reconnect") })
	c.OnConnect(func() { events.add("connect") })
	fc.drop()
	eventually(t, "Reconnecting", func() bool { return c.Status() == Reconnecting })
	fc2 := s.accept(t)
	// A command issued while reconnecting waits for the restored connection.
	cmd := async(func() error {
		raw, err := c.Command(ctx, "echo", "queued")
		if err == nil && string(raw) != `"queued"` {
			t.Errorf("reply %s", raw)
		}
		return err
	})

	fc2.quiet(t, 20*time.Millisecond)
	release()
	var frames []string
	for range 9 {
		f := fc2.next(t)
		frames = append(frames, f.raw[strings.Index(f.raw, `"command"`):])
	}
	// Rooms first, then the rest in any order, then the queued command.
	first := slices.Sorted(slices.Values(frames[:2]))
	wantFirst := []string{
		`"command":"mesh/join-room","payload":{"roomName":"plain"}}`,
		`"command":"mesh/join-room","payload":{"roomName":"test:room:p"}}`,
	}
	if !slices.Equal(first, wantFirst) {
		t.Fatalf("first frames %q", first)
	}
	rest := slices.Sorted(slices.Values(frames[2:8]))
	const expiringPrefix = `"command":"mesh/publish-presence-state","payload":{"roomName":"plain","state":"expiring","expireAfter":`
	if !strings.HasPrefix(rest[0], expiringPrefix) {
		t.Fatalf("restored %q", rest)
	}
	// What is left of the 10 minutes.
	var left int64
	if _, err := fmt.Sscanf(rest[0][len(expiringPrefix):], "%d}}", &left); err != nil || left > 600000 || left < 590000 {
		t.Fatalf("expireAfter in %s", rest[0])
	}
	wantRest := []string{
		`"command":"mesh/publish-presence-state","payload":{"roomName":"test:room:p","state":{"status":"online"}}}`,
		`"command":"mesh/subscribe-channel","payload":{"channel":"news","sequenced":true}}`,
		`"command":"mesh/subscribe-channel","payload":{"channel":"refused","sequenced":true}}`,
		`"command":"mesh/subscribe-presence","payload":{"roomName":"test:room:p"}}`,
		`"command":"mesh/subscribe-record","payload":{"recordId":"doc","mode":"patch"}}`,
	}
	if !slices.Equal(rest[1:], wantRest) {
		t.Fatalf("restored\n%q\nwant\n%q", rest[1:], wantRest)
	}
	if frames[8] != `"command":"echo","payload":"queued"}` {
		t.Fatalf("last frame %s, want the queued command", frames[8])
	}
	if err := waitErr(t, cmd); err != nil {
		t.Fatal(err)
	}

	if got := events.wait(t, 2); !slices.Equal(got, []string{"connect", "reconnect"}) {
		t.Fatalf("events %v", got)
	}
	if c.Status() != Online || c.ConnectionID() != "conn-2" {
		t.Fatalf("status %v id %q", c.Status(), c.ConnectionID())
	}
	// The record callback got the new full value; history was not
	// replayed again.
	u := records.wait(t, 2)
	checkUpdate(t, u[1], 5, `{"n":5}`, "")
	fc2.send(`{"command":"mesh/record-update","payload":{"recordId":"doc","patch":[{"op":"add","path":"/m","value":1}],"version":6}}`)
	checkUpdate(t, records.wait(t, 3)[2], 6, `{"n":5,"m":1}`, `[{"op":"add","path":"/m","value":1}]`)
	fc2.send(`{"command":"mesh/subscription-message","payload":{"channel":"news","message":"live"}}`)
	fc2.send(`{"command":"mesh/subscription-message","payload":{"channel":"refused","message":"x"}}`)
	fc2.send(`{"command":"mesh/presence-update","payload":{"type":"join","connectionId":"z","roomName":"test:room:p","timestamp":5}}`)
	presence.wait(t, 1)
	if got := messages.get(); !slices.Equal(got, []string{"h1", "live"}) {
		t.Fatalf("channel messages %q", got)
	}
	// The channel the server refused to restore is dropped and logged.
	if refusedMsgs.len() != 1 { // its history from the first subscribe
		t.Fatalf("refused channel got %q", refusedMsgs.get())
	}
	c.mu.Lock()
	_, still := c.channels["refused"]
	c.mu.Unlock()
	if still {
		t.Fatal("refused channel still registered")
	}
	found := false
	for _, l := range logs.get() {
		found = found || strings.Contains(l, `restoring channel "refused"`)
	}
	if !found {
		t.Fatalf("no log of the refusal: %q", logs.get())
	}
}

func TestReconnectGivesUp(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	c, fc := connected(t, s, Options{ReconnectDelay: time.Millisecond, MaxReconnectAttempts: 3})
	var failed recorder[Status]
	var closed recorder[int]
	c.OnReconnectFailed(func() { failed.add(c.Status()) })
	c.OnClose(func() { closed.add(1) })
	s.refuse.Store(1000)
	fc.drop()
	closed.wait(t, 1) // Reconnecting or already Offline
	cmd := async(func() error { _, err := c.Command(ctxT(t), "x", nil); return err })
	if got := failed.wait(t, 1); got[0] != Offline {
		t.Fatalf("status in OnReconnectFailed %v", got[0])
	}
	if refused := 1000 - s.refuse.Load(); refused != 3 {
		t.Fatalf("%d attempts, want 3", refused)
	}
	if err := waitErr(t, cmd); !errors.Is(err, ErrReconnectFailed) {
		t.Fatalf("waiting command: %v, want ErrReconnectFailed", err)
	}
	if err := c.Connect(ctxT(t)); err == nil {
		t.Fatal("Connect succeeded against a refusing server")
	}
	// Connect works again once the server does.
	s.refuse.Store(0)
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.accept(t)
}

func TestReconnectAfterRefusals(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	c, fc := connected(t, s, Options{ReconnectDelay: time.Millisecond})
	var reconnects recorder[int]
	c.OnReconnect(func() { reconnects.add(1) })
	s.refuse.Store(3)
	fc.drop()
	s.accept(t)
	reconnects.wait(t, 1)
	if s.refuse.Load() != 0 {
		t.Fatalf("%d refusals left", s.refuse.Load())
	}
}

// A command issued while reconnecting still honours its time limit.
func TestCommandTimesOutWhileReconnecting(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	c, fc := connected(t, s, Options{ReconnectDelay: time.Hour, MaxReconnectDelay: time.Hour, CommandTimeout: 30 * time.Millisecond})
	fc.drop()
	eventually(t, "Reconnecting", func() bool { return c.Status() == Reconnecting })
	_, err := c.Command(ctxT(t), "x", nil)
	var ce *protocol.CodeError
	if !errors.As(err, &ce) || ce.Code != protocol.CodeTimeout || ce.Message != "Command timed out after 30ms." {
		t.Fatalf("err %v", err)
	}
	// Close ends the reconnect loop at once.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCloseWhileConnectingAndConcurrentConnect(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	c := newClient(t, s.url, Options{AwaitConnectionID: true})
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.Connect(ctxT(t))
		}()
	}
	s.accept(t)
	eventually(t, "Connecting", func() bool { return c.Status() == Connecting })
	c.Close()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Connect: %v, want ErrClosed", err)
		}
	}
	_ = json.RawMessage(nil)
}

// With reconnection off, a later Connect restores what the client had.
func TestConnectAfterLossRestores(t *testing.T) {
	s := newFakeServer(t, fakeOptions{respond: restoreReplies})
	c, fc := connected(t, s, Options{NoReconnect: true})
	if _, err := c.JoinRoom(ctxT(t), "lobby"); err != nil {
		t.Fatal(err)
	}
	fc.expect(t, protocol.CmdJoinRoom)
	fc.drop()
	eventually(t, "Offline", func() bool { return c.Status() == Offline })
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	fc2 := s.accept(t)
	fc2.expectRaw(t, `{"id":%d,"command":"mesh/join-room","payload":{"roomName":"lobby"}}`)
	if c.Status() != Online {
		t.Fatalf("status %v", c.Status())
	}
}

// A replaced connection is dead to the client: a late push or a late
// close from it changes nothing (Mesh's client reconnects a second time in
// that case, wire.md 5.6).
func TestSupersededConnectionIgnored(t *testing.T) {
	s := newFakeServer(t, fakeOptions{})
	c, fc := connected(t, s, Options{ReconnectDelay: time.Millisecond})
	old := c.conn.Load()
	var hello recorder[string]
	var closes recorder[int]
	c.On("hello", func(p json.RawMessage) { hello.add(string(p)) })
	c.OnClose(func() { closes.add(1) })
	fc.drop()
	fc2 := s.accept(t)
	eventually(t, "Online", func() bool { return c.Status() == Online })

	c.handleFrame(old, []byte(`{"command":"hello","payload":"stale"}`))
	c.connLost(old, errors.New("late close event"))
	fc2.send(`{"command":"hello","payload":"fresh"}`)
	if got := hello.wait(t, 1); got[0] != `"fresh"` {
		t.Fatalf("got %q", got)
	}
	fc2.quiet(t, 20*time.Millisecond)
	if c.Status() != Online || s.accepted.Load() != 2 || closes.len() != 1 {
		t.Fatalf("status %v, %d connections, %d closes", c.Status(), s.accepted.Load(), closes.len())
	}
}
