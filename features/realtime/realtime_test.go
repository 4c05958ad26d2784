package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfast/meshfast/coord/memory"
	"github.com/meshfast/meshfast/coord/redis"
	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/mesh"
	"github.com/meshfast/meshfast/internal/ssetest"
	"github.com/meshfast/meshfast/internal/testutil"
)

func e(d string, msg string) entry { return entry{d: d, msg: []byte(msg)} }

func TestPlanReplay(t *testing.T) {
	ds := func(r []entry) string {
		s := ""
		for _, x := range r {
			s += x.d
		}
		return s
	}
	cases := []struct {
		name   string
		hist   []entry // newest first
		seen   []entry
		want   string
		replay string
		found  bool
	}{
		{"after the newest", []entry{e("c", ""), e("b", ""), e("a", "")}, nil, "c", "", true},
		{"two missed", []entry{e("c", ""), e("b", ""), e("a", "")}, nil, "a", "bc", true},
		{"not in history", []entry{e("c", ""), e("b", "")}, nil, "a", "", false},
		{"empty history", nil, nil, "a", "", false},
		// x was delivered while the history was read, after it: replayed
		// from what was seen, once; c was seen too, but the history has it.
		{"delivered during the read", []entry{e("c", ""), e("b", "")}, []entry{e("c", ""), e("x", "")}, "b", "cx", true},
		{"seen holds all after", []entry{e("b", "")}, []entry{e("x", ""), e("y", "")}, "b", "xy", true},
		{"want among the seen", []entry{e("b", "")}, []entry{e("x", ""), e("y", "")}, "x", "y", true},
		{"repeated text: the newest copy", []entry{e("r", ""), e("q", ""), e("r", ""), e("p", "")}, nil, "r", "", true},
	}
	for _, tc := range cases {
		replay, found := planReplay(tc.hist, tc.seen, tc.want)
		if ds(replay) != tc.replay || found != tc.found {
			t.Errorf("%s: replay %q found %v, want %q %v", tc.name, ds(replay), found, tc.replay, tc.found)
		}
	}
}

func TestEventIDs(t *testing.T) {
	d := digest([]byte("hello"))
	if len(d) != digestLen {
		t.Fatalf("digest %q", d)
	}
	for id, want := range map[string][2]string{
		"news:" + d:          {"news", d},
		"chat:lobby:" + d:    {"chat:lobby", d},
		":" + d:              {},
		"news" + d:           {},
		"news:" + d[:15]:     {},
		"user-supplied-id-1": {},
	} {
		ch, dg, ok := parseEventID(id)
		if ok != (want[0] != "") || ch != want[0] || dg != want[1] {
			t.Errorf("parseEventID(%q) = %q %q %v, want %q", id, ch, dg, ok, want)
		}
	}
}

// One channel, members of both drivers: one publish reaches both, a
// ToChannel event unwrapped for the stream and as it is for Mesh, any
// other message as a "message" event, its lines split.
func TestChannelReachesStreamsAndWebSockets(t *testing.T) {
	t.Parallel()
	n := startNode(t, Options{})
	n.rt.Channel("news", ChannelOptions{})
	got := make(collect, 10)
	mc := n.meshClient(t, "")
	if _, err := mc.SubscribeChannel(ctxT(t), "news", got.fn); err != nil {
		t.Fatal(err)
	}
	s := n.stream(t, "/events?channel=news")
	r := ready(t, s)
	if len(r.Channels) != 1 || r.Channels[0] != "news" || r.Replayed != 0 || r.Missed || r.Resumed != "" {
		t.Fatalf("ready %+v", r)
	}
	must(t, n.rt.ToChannel("news").Broadcast(ctxT(t), Event{Event: "post", Data: map[string]any{"title": "hi\nthere"}}))
	must(t, n.rt.Mesh().PublishToChannel(ctxT(t), "news", "line one\nline two", 0))
	ev := next(t, s)
	if ev.Type != "post" || ev.Data != `{"title":"hi\nthere"}` {
		t.Fatalf("stream got %+v", ev)
	}
	m := got.next(t)
	var env struct {
		Event string          `json:"event"`
		Data  json.RawMessage `json:"data"`
		ID    string          `json:"id"`
	}
	if err := json.Unmarshal([]byte(m), &env); err != nil || env.Event != "post" || string(env.Data) != `{"title":"hi\nthere"}` || env.ID == "" {
		t.Fatalf("Mesh client got %q (%v)", m, err)
	}
	if want := "news:" + digest([]byte(m)); ev.LastEventID != want {
		t.Fatalf("event id %q, want %q", ev.LastEventID, want)
	}
	ev = next(t, s)
	if ev.Type != "message" || ev.Data != "line one\nline two" || ev.LastEventID != "news:"+digest([]byte("line one\nline two")) {
		t.Fatalf("stream got %+v", ev)
	}
	if m := got.next(t); m != "line one\nline two" {
		t.Fatalf("Mesh client got %q", m)
	}
	if !contains(s.Raw.String(), "data: line one\ndata: line two\n\n") {
		t.Fatalf("raw %q", s.Raw.String())
	}
}

// Last-Event-ID resumes exactly: the messages after it, then live ones,
// each once.
func TestResumeFromHistory(t *testing.T) {
	t.Parallel()
	n := startNode(t, Options{})
	n.rt.Channel("news", ChannelOptions{History: 10})
	pub := func(i int) {
		must(t, n.rt.ToChannel("news").Broadcast(ctxT(t), Event{Event: "n", Data: i}))
	}
	s := n.stream(t, "/events?channel=news")
	ready(t, s)
	pub(1)
	pub(2)
	next(t, s)
	last := next(t, s)
	if last.Data != "2" {
		t.Fatalf("got %+v", last)
	}
	s.Close()
	pub(3)
	pub(4)
	s2 := n.stream(t, "/events?channel=news", "Last-Event-ID: "+last.LastEventID)
	if r := ready(t, s2); r.Resumed != "news" || r.Replayed != 2 || r.Missed {
		t.Fatalf("ready %+v", r)
	}
	pub(5)
	for _, want := range []string{"3", "4", "5"} {
		if ev := next(t, s2); ev.Data != want || ev.Type != "n" {
			t.Fatalf("got %+v, want %s", ev, want)
		}
	}
	// Not in the history: nothing replayed, and the stream says so.
	s3 := n.stream(t, "/events?channel=news", "Last-Event-ID: news:AAAAAAAAAAAAAAAA")
	if r := ready(t, s3); r.Replayed != 0 || !r.Missed || r.Resumed != "" {
		t.Fatalf("ready %+v", r)
	}
	s4 := n.stream(t, "/events?channel=news", "Last-Event-ID: some-id-of-mine")
	if r := ready(t, s4); r.Replayed != 0 || !r.Missed {
		t.Fatalf("ready %+v", r)
	}
	pub(6)
	if ev := next(t, s3); ev.Data != "6" {
		t.Fatalf("after the ready event: %+v", ev)
	}
}

// Streams resuming while the channel is published to without a pause see
// every message once, in order: the replay and the live stream meet with
// neither gap nor repeat.
func TestResumeWhilePublishing(t *testing.T) {
	t.Parallel()
	n := startNode(t, Options{})
	n.rt.Channel("seq", ChannelOptions{History: 1000})
	var published atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= 900; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := n.rt.ToChannel("seq").Broadcast(ctxT(t), Event{Data: i}); err != nil {
				t.Error(err)
				return
			}
			published.Store(int64(i))
			if i%8 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	s := n.stream(t, "/events?channel=seq")
	ready(t, s)
	expect := 0
	read := func(c *ssetest.Client, k int) string {
		var id string
		for i := 0; i < k; i++ {
			ev := next(t, c)
			v, _ := strconv.Atoi(ev.Data)
			if expect == 0 {
				expect = v
			}
			if v != expect {
				t.Fatalf("got %d, want %d (raw %q)", v, expect, c.Raw.String())
			}
			expect++
			id = ev.LastEventID
		}
		return id
	}
	id := read(s, 20)
	for round := 0; round < 20; round++ {
		s.Close()
		s = n.stream(t, "/events?channel=seq", "Last-Event-ID: "+id)
		if r := ready(t, s); r.Missed {
			t.Fatalf("round %d: ready %+v", round, r)
		}
		id = read(s, 20)
	}
}

func TestStreamRefusals(t *testing.T) {
	t.Parallel()
	n := startNode(t, Options{Mesh: mesh.Options{Authenticate: userAuth}, SSE: SSEOptions{MaxChannels: 2}})
	n.rt.Channel("open", ChannelOptions{})
	n.rt.Channel("staff", ChannelOptions{Guard: func(c *mesh.Connection, _ string) bool { return c.User() == "ann" }})
	n.rt.Mesh().ExposeChannelPattern(regexp.MustCompile(`^room:`), nil)
	n.refused(t, "/events?channel=secret", 403)
	n.refused(t, "/events?channel=staff&user=bob", 403)
	n.refused(t, "/events?user=nobody", 401)
	n.refused(t, "/events?channel=open&channel=room:1&channel=room:2", 400)
	n.refused(t, "/events?channel=mesh:broadcast:all", 403)
	n.refused(t, "/events?channel=a%0Ab", 400)
	c, err := ssetest.Dial(n.addr(), "/events", "", "Accept: application/json")
	must(t, err)
	defer c.Close()
	if st, _ := c.ReadHead(5 * time.Second); st != 406 {
		t.Fatalf("Accept: application/json: %d", st)
	}
	s := n.stream(t, "/events?channel=staff&channel=room:7&user=ann")
	if r := ready(t, s); len(r.Channels) != 2 {
		t.Fatalf("ready %+v", r)
	}
}

func TestMaxConnections(t *testing.T) {
	t.Parallel()
	n := startNode(t, Options{SSE: SSEOptions{MaxConnections: 1}, WebSocket: WebSocketOptions{MaxConnections: 1}})
	n.stream(t, "/events")
	n.refused(t, "/events", 503)
	n.meshClient(t, "")
	c, err := ssetest.Dial(n.addr(), "/", "", "Upgrade: websocket", "Connection: Upgrade",
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13")
	must(t, err)
	defer c.Close()
	if st, _ := c.ReadHead(5 * time.Second); st != 503 {
		t.Fatalf("second WebSocket: %d\n%s", st, c.Head)
	}
}

func TestBroadcastAndSendTo(t *testing.T) {
	t.Parallel()
	n := startNode(t, Options{Mesh: mesh.Options{Authenticate: userAuth}})
	ann1, ann2, bob := n.stream(t, "/events?user=ann"), n.stream(t, "/events?user=ann"), n.stream(t, "/events?user=bob")
	for _, s := range []*ssetest.Client{ann1, ann2, bob} {
		ready(t, s)
	}
	pushes := make(chan string, 4)
	mc := n.meshClient(t, "?user=ann")
	mc.On("update", func(p json.RawMessage) { pushes <- "update " + string(p) })
	mc.On("dm", func(p json.RawMessage) { pushes <- "dm " + string(p) })
	must(t, n.rt.Broadcast(ctxT(t), Event{Event: "update", Data: map[string]int{"v": 1}}))
	for _, s := range []*ssetest.Client{ann1, ann2, bob} {
		if ev := next(t, s); ev.Type != "update" || ev.Data != `{"v":1}` {
			t.Fatalf("broadcast: %+v", ev)
		}
	}
	wantPush := func(want string) {
		t.Helper()
		select {
		case p := <-pushes:
			if p != want {
				t.Fatalf("Mesh push %q, want %q", p, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the Mesh client got no %q", want)
		}
	}
	wantPush(`update {"v":1}`)
	// A user's messages reach its streams and its WebSocket connections alike.
	must(t, n.rt.SendTo(ctxT(t), "ann", Event{Event: "dm", Data: "for ann"}))
	must(t, n.rt.Broadcast(ctxT(t), Event{Event: "after"}))
	for _, s := range []*ssetest.Client{ann1, ann2} {
		if ev := next(t, s); ev.Type != "dm" || ev.Data != `"for ann"` {
			t.Fatalf("SendTo: %+v", ev)
		}
	}
	wantPush(`dm "for ann"`)
	if ev := next(t, bob); ev.Type != "after" || ev.Data != "null" {
		t.Fatalf("bob got %+v before the broadcast after SendTo", ev)
	}
	// Mesh's own API reaches streams the same way.
	must(t, n.rt.Mesh().SendToUser(ctxT(t), "bob", "note", map[string]string{"to": "bob"}))
	if ev := next(t, bob); ev.Type != "note" || ev.Data != `{"to":"bob"}` {
		t.Fatalf("SendToUser: %+v", ev)
	}
	if err := n.rt.Broadcast(ctxT(t), Event{Event: "bad\nname"}); err == nil {
		t.Fatal("an event name with a newline was sent")
	}
}

// Stream.Send sends one stream an event with an id.
func TestStreamSend(t *testing.T) {
	t.Parallel()
	n := startNode(t, Options{})
	got := make(chan *Stream, 1)
	n.e.HandleHTTP("/mine", func(w *engine.Response, r *engine.Request) {
		st, err := n.rt.SSE(w, r)
		if err != nil {
			t.Error(err)
			return
		}
		if err := st.Send(Event{Event: "notification", Data: map[string]string{"message": "You have a new message"}, ID: "n-1"}); err != nil {
			t.Error(err)
		}
		got <- st
	})
	s := n.stream(t, "/mine")
	if r := ready(t, s); r.ID != (<-got).ID() { // the ready event comes first
		t.Fatalf("ready %+v", r)
	}
	ev := next(t, s)
	if ev.Type != "notification" || ev.Data != `{"message":"You have a new message"}` || ev.LastEventID != "n-1" {
		t.Fatalf("sent from the handler, before the stream opened: %+v", ev)
	}
	if err := (&Stream{}).Send(Event{ID: "a\nb"}); err == nil {
		t.Fatal("an id with a newline was sent")
	}
}

func TestOnJoinBothDrivers(t *testing.T) {
	t.Parallel()
	n := startNode(t, Options{Mesh: mesh.Options{Authenticate: userAuth}})
	joins := make(chan string, 4)
	n.rt.Channel("orders", ChannelOptions{OnJoin: func(m Member) {
		joins <- m.User()
		_ = m.Send(Event{Event: "connected", Data: map[string]string{"channel": "orders"}})
	}})
	s := n.stream(t, "/events?channel=orders&user=sam")
	ready(t, s)
	if ev := next(t, s); ev.Type != "connected" || ev.Data != `{"channel":"orders"}` {
		t.Fatalf("stream: %+v", ev)
	}
	pushes := make(chan string, 1)
	mc := n.meshClient(t, "?user=wes")
	mc.On("connected", func(p json.RawMessage) { pushes <- string(p) })
	if _, err := mc.SubscribeChannel(ctxT(t), "orders", func(string) {}); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-pushes:
		if p != `{"channel":"orders"}` {
			t.Fatalf("Mesh push %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnJoin's Send did not reach the WebSocket member")
	}
	for _, want := range []string{"sam", "wes"} {
		if u := <-joins; u != want {
			t.Fatalf("OnJoin for %q, want %q", u, want)
		}
	}
}

func TestWebSocketOnMessageOnClose(t *testing.T) {
	t.Parallel()
	closed := make(chan string, 1)
	n := startNode(t, Options{WebSocket: WebSocketOptions{
		OnMessage: func(s *Socket, msg json.RawMessage) {
			_ = s.Send(Event{Event: "echo", Data: msg})
		},
		OnClose: func(s *Socket) { closed <- s.ID() },
	}})
	mc := n.meshClient(t, "")
	echo := make(chan string, 1)
	mc.On("echo", func(p json.RawMessage) { echo <- string(p) })
	reply, err := mc.Command(ctxT(t), "message", map[string]string{"hi": "there"})
	if err != nil || string(reply) != "true" {
		t.Fatalf("message command: %s %v", reply, err)
	}
	if p := <-echo; p != `{"hi":"there"}` {
		t.Fatalf("echo %q", p)
	}
	id := mc.ConnectionID()
	_ = mc.Close()
	select {
	case got := <-closed:
		if got != id {
			t.Fatalf("OnClose for %q, want %q", got, id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnClose did not run")
	}
}

// A stream that goes away, or is closed, leaves nothing behind.
func TestStreamsCleanedUp(t *testing.T) {
	t.Parallel()
	n := startNode(t, Options{Mesh: mesh.Options{Authenticate: userAuth}})
	n.rt.Channel("a", ChannelOptions{History: 5})
	n.rt.Channel("b", ChannelOptions{})
	var streams []*ssetest.Client
	for i := 0; i < 10; i++ {
		s := n.stream(t, fmt.Sprintf("/events?channel=a&channel=b&user=u%d", i%3))
		ready(t, s)
		streams = append(streams, s)
	}
	if tc := n.rt.Mesh().LocalTopics(); tc.Channels != 2 {
		t.Fatalf("node subscriptions %+v", tc)
	}
	for _, s := range streams {
		s.Close()
	}
	n.clean(t)
	// and once more, closed while joining: the join gives back what it took
	for i := 0; i < 20; i++ {
		c, err := ssetest.Dial(n.addr(), "/events?channel=a&channel=b&user=x", "", "Last-Event-ID: a:AAAAAAAAAAAAAAAA")
		must(t, err)
		c.Close()
	}
	n.clean(t)
}

// Identity.Verify runs off the loop before the stream joins; a refusal
// closes the stream with an "error" event.
func TestStreamVerify(t *testing.T) {
	t.Parallel()
	n := startNode(t, Options{Mesh: mesh.Options{Authenticate: func(r *engine.Request) (mesh.Identity, error) {
		token := r.QueryValue("token")
		return mesh.Identity{Verify: func(ctx context.Context) (mesh.Identity, error) {
			if token != "good" {
				return mesh.Identity{}, fmt.Errorf("bad token")
			}
			return mesh.Identity{User: "verified"}, nil
		}}, nil
	}}})
	n.rt.Channel("c", ChannelOptions{Guard: func(c *mesh.Connection, _ string) bool { return c.User() == "verified" }})
	s := n.stream(t, "/events?channel=c&token=good")
	if r := ready(t, s); len(r.Channels) != 1 {
		t.Fatalf("ready %+v", r)
	}
	must(t, n.rt.SendTo(ctxT(t), "verified", Event{Event: "hello"}))
	if ev := next(t, s); ev.Type != "hello" {
		t.Fatalf("SendTo after Verify: %+v", ev)
	}
	bad := n.stream(t, "/events?channel=c&token=bad")
	if ev := next(t, bad); ev.Type != "error" || !contains(ev.Data, "authentication failed") {
		t.Fatalf("refused stream: %+v", ev)
	}
	if _, err := bad.ReadBody(5 * time.Second); err != ssetest.ErrEnded {
		t.Fatalf("refused stream not ended: %v", err)
	}
}

// Two nodes on one coordinator: a publish on one reaches streams and Mesh
// clients on both, SendTo reaches a user's streams wherever they are, and
// a stream resumes on the other node from the same id.
func TestTwoNodes(t *testing.T) {
	t.Parallel()
	co := memory.New(memory.Options{})
	t.Cleanup(func() { _ = co.Close() })
	o := Options{Mesh: mesh.Options{Coordinator: co, Authenticate: userAuth}}
	a, b := startNode(t, o), startNode(t, o)
	for _, n := range []*node{a, b} {
		n.rt.Channel("news", ChannelOptions{History: 10})
	}
	sa := a.stream(t, "/events?channel=news&user=ann")
	ready(t, sa)
	got := make(collect, 4)
	mb := b.meshClient(t, "")
	if _, err := mb.SubscribeChannel(ctxT(t), "news", got.fn); err != nil {
		t.Fatal(err)
	}
	must(t, b.rt.ToChannel("news").Broadcast(ctxT(t), Event{Event: "n", Data: 1}))
	first := next(t, sa)
	if first.Data != "1" {
		t.Fatalf("stream on a: %+v", first)
	}
	got.next(t)
	must(t, b.rt.SendTo(ctxT(t), "ann", Event{Event: "dm"}))
	if ev := next(t, sa); ev.Type != "dm" {
		t.Fatalf("SendTo from b: %+v", ev)
	}
	sa.Close()
	must(t, a.rt.ToChannel("news").Broadcast(ctxT(t), Event{Event: "n", Data: 2}))
	sb := b.stream(t, "/events?channel=news", "Last-Event-ID: "+first.LastEventID)
	if r := ready(t, sb); r.Replayed != 1 || r.Missed {
		t.Fatalf("resumed on b: %+v", r)
	}
	if ev := next(t, sb); ev.Data != "2" {
		t.Fatalf("replayed on b: %+v", ev)
	}
}

// The same across two nodes sharing a real Redis: a user's messages reach
// its streams and WebSocket connections on every node, a broadcast every
// stream, a channel both transports, and a stream resumes on the other
// node from the history Redis keeps.
func TestTwoNodesRedis(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	node := func() *node {
		co, err := redis.New(ctxT(t), redis.Options{Addrs: []string{r.Addr}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = co.Close() })
		n := startNode(t, Options{Mesh: mesh.Options{Coordinator: co, Authenticate: userAuth}})
		n.rt.Channel("news", ChannelOptions{History: 10})
		return n
	}
	a, b := node(), node()
	sa := a.stream(t, "/events?channel=news&user=ann")
	sb := b.stream(t, "/events?user=ann")
	ready(t, sa)
	ready(t, sb)
	dms := make(chan string, 2)
	mb := b.meshClient(t, "?user=ann")
	mb.On("dm", func(p json.RawMessage) { dms <- string(p) })
	got := make(collect, 4)
	if _, err := mb.SubscribeChannel(ctxT(t), "news", got.fn); err != nil {
		t.Fatal(err)
	}
	must(t, a.rt.SendTo(ctxT(t), "ann", Event{Event: "dm", Data: 1}))
	for _, s := range []*ssetest.Client{sa, sb} {
		if ev := next(t, s); ev.Type != "dm" || ev.Data != "1" {
			t.Fatalf("SendTo across nodes: %+v", ev)
		}
	}
	select {
	case p := <-dms:
		if p != "1" {
			t.Fatalf("Mesh client: %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SendTo did not reach the Mesh client on the other node")
	}
	must(t, b.rt.Broadcast(ctxT(t), Event{Event: "all"}))
	for _, s := range []*ssetest.Client{sa, sb} {
		if ev := next(t, s); ev.Type != "all" {
			t.Fatalf("Broadcast across nodes: %+v", ev)
		}
	}
	must(t, b.rt.ToChannel("news").Broadcast(ctxT(t), Event{Event: "n", Data: 1}))
	first := next(t, sa)
	if first.Type != "n" || first.Data != "1" {
		t.Fatalf("channel across nodes: %+v", first)
	}
	got.next(t)
	sa.Close()
	must(t, b.rt.ToChannel("news").Broadcast(ctxT(t), Event{Event: "n", Data: 2}))
	sr := b.stream(t, "/events?channel=news", "Last-Event-ID: "+first.LastEventID)
	if r := ready(t, sr); r.Replayed != 1 || r.Missed {
		t.Fatalf("resumed on the other node: %+v", r)
	}
	if ev := next(t, sr); ev.Data != "2" {
		t.Fatalf("replayed from Redis: %+v", ev)
	}
}

// A durable channel's history is its stream's (not the coordinator's
// list): Last-Event-ID resumes from it as from any channel's.
func TestResumeDurableChannel(t *testing.T) {
	t.Parallel()
	n := startNode(t, Options{})
	must(t, n.rt.Mesh().ExposeDurableChannel("orders:1", nil))
	pub := func(m string) {
		if _, err := n.rt.Mesh().PublishDurable(ctxT(t), "orders:1", m); err != nil {
			t.Fatal(err)
		}
	}
	s := n.stream(t, "/events?channel=orders:1")
	ready(t, s)
	pub("a")
	pub("b")
	next(t, s)
	last := next(t, s)
	s.Close()
	pub("c")
	pub("d")
	s2 := n.stream(t, "/events?channel=orders:1", "Last-Event-ID: "+last.LastEventID)
	if r := ready(t, s2); r.Resumed != "orders:1" || r.Replayed != 2 || r.Missed {
		t.Fatalf("ready %+v", r)
	}
	pub("e")
	for _, want := range []string{"c", "d", "e"} {
		if ev := next(t, s2); ev.Data != want {
			t.Fatalf("got %+v, want %s", ev, want)
		}
	}
}
