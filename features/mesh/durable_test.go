package mesh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfast/meshfast/client"
	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/coord/memory"
	"github.com/meshfast/meshfast/features/streams"
	"github.com/meshfast/meshfast/internal/testutil"
	"github.com/meshfast/meshfast/protocol"
)

// durableServer runs a server with the durable channel name exposed.
func durableServer(t testing.TB, o Options, name string) *Server {
	t.Helper()
	s := startServer(t, o)
	if err := s.ExposeDurableChannel(name, nil); err != nil {
		t.Fatal(err)
	}
	return s
}

func publishN(t testing.TB, s *Server, channel string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if _, err := s.PublishDurable(bg(), channel, "m"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
}

// seqFrame is the frame a subscription that asked for sequences gets.
func seqFrame(channel, msg string, seq uint64) string {
	return string(protocol.AppendSequencedSubscriptionMessage(nil, channel, msg, seq))
}

// A Mesh client (as Mesh's JavaScript client speaks) on a durable channel
// sees exactly Mesh's frames: the reply {success, history} with the
// stream's history, and pushes {channel, message}, byte for byte what a
// channel that is not durable gives, while a subscription that asked for
// sequences on the same channel gets them.
func TestDurableMeshClientSeesMeshFrames(t *testing.T) {
	s := durableServer(t, Options{}, "chat:1")
	s.ExposeChannel("plain:1", nil)
	publishN(t, s, "chat:1", 1, 3)

	mesh := dialWire(t, s)
	mesh.expect(`{"id":1,"command":"mesh/subscribe-channel","payload":{"channel":"chat:1","historyLimit":2}}`,
		`{"id":1,"command":"mesh/subscribe-channel","payload":{"success":true,"history":["m3","m2"]}}`)
	mesh.expect(`{"id":2,"command":"mesh/subscribe-channel","payload":{"channel":"plain:1"}}`,
		`{"id":2,"command":"mesh/subscribe-channel","payload":{"success":true,"history":[]}}`)
	seq := dialWire(t, s)
	seq.expect(`{"id":1,"command":"mesh/subscribe-channel","payload":{"channel":"chat:1","sequenced":true}}`,
		`{"id":1,"command":"mesh/subscribe-channel","payload":{"success":true,"history":[],"sequence":3}}`)

	const msg = "a \"quoted\" <b>ü</b>\n\u2028"
	if err := s.PublishToChannel(bg(), "chat:1", msg, 0); err != nil {
		t.Fatal(err)
	}
	const want = `{"command":"mesh/subscription-message","payload":{"channel":"chat:1","message":"a \"quoted\" <b>ü</b>\n` + "\u2028" + `"}}`
	if got := mesh.next(); got != want {
		t.Fatalf("durable channel frame\n got %s\nwant %s", got, want)
	}
	if err := s.PublishToChannel(bg(), "plain:1", msg, 0); err != nil {
		t.Fatal(err)
	}
	const wantPlain = `{"command":"mesh/subscription-message","payload":{"channel":"plain:1","message":"a \"quoted\" <b>ü</b>\n` + "\u2028" + `"}}`
	if got := mesh.next(); got != wantPlain {
		t.Fatalf("plain channel frame\n got %s\nwant %s", got, wantPlain)
	}
	if got, want := seq.next(), `{"command":"mesh/subscription-message","payload":{"channel":"chat:1","message":"a \"quoted\" <b>ü</b>\n`+"\u2028"+`","sequence":4}}`; got != want {
		t.Fatalf("sequenced frame\n got %s\nwant %s", got, want)
	}

	// An event published on the stream by something other than Mesh (the
	// gateway, the HTTP API): a JSON object reaches Mesh clients as its
	// text, as Mesh delivers a JSON document published as a string.
	st, _ := s.durableStreams()
	if _, err := st.Publish(bg(), streams.Message{Room: "chat:1", Type: "order.created", Payload: json.RawMessage(`{"id":1}`)}); err != nil {
		t.Fatal(err)
	}
	if got, want := mesh.next(), `{"command":"mesh/subscription-message","payload":{"channel":"chat:1","message":"{\"id\":1}"}}`; got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	if got, want := seq.next(), seqFrame("chat:1", `{"id":1}`, 5); got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	mesh.expect(`{"id":3,"command":"mesh/unsubscribe-channel","payload":{"channel":"chat:1"}}`,
		`{"id":3,"command":"mesh/unsubscribe-channel","payload":true}`)
	publishN(t, s, "chat:1", 6, 6)
	if got, want := seq.next(), seqFrame("chat:1", "m6", 6); got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	mesh.silent(50 * time.Millisecond)
}

// mesh/subscribe-channel with historyLimit on a durable channel answers
// from the stream, whoever published there, newest first; ChannelHistory
// too.
func TestDurableHistoryFromStream(t *testing.T) {
	st, err := streams.New(streams.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	s := durableServer(t, Options{Streams: st}, "news:eu")
	for i := 1; i <= 5; i++ {
		if _, err := st.Publish(bg(), streams.Message{Room: "news:eu", Type: "headline",
			Payload: protocol.AppendJSONString(nil, fmt.Sprintf("h%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	w := dialWire(t, s)
	w.expect(`{"id":1,"command":"mesh/subscribe-channel","payload":{"channel":"news:eu","historyLimit":3}}`,
		`{"id":1,"command":"mesh/subscribe-channel","payload":{"success":true,"history":["h5","h4","h3"]}}`)
	w.expect(`{"id":2,"command":"mesh/subscribe-channel","payload":{"channel":"news:eu","historyLimit":10,"sequenced":true}}`,
		`{"id":2,"command":"mesh/subscribe-channel","payload":{"success":true,"history":["h5","h4","h3","h2","h1"],"sequence":5,"historySequences":[5,4,3,2,1]}}`)
	h, err := s.ChannelHistory(bg(), "news:eu", 2)
	if err != nil || fmt.Sprint(h) != "[h5 h4]" {
		t.Fatalf("ChannelHistory %q, %v", h, err)
	}
	// Mesh's own history does not hold them: they come from the stream.
	raw, err := s.Coordinator().ChannelHistory(bg(), "news:eu", 10)
	if err != nil || len(raw) != 0 {
		t.Fatalf("coordinator history %q, %v", raw, err)
	}
}

// A subscription that resumes after a sequence is sent what followed it,
// in order, before the reply, then the live messages: from the room's
// last messages in memory, or from the store when it is further behind.
func TestDurableResumeOnTheWire(t *testing.T) {
	s := durableServer(t, Options{}, "chat:seq")
	first := dialWire(t, s) // keeps the node following the channel
	first.expect(`{"id":1,"command":"mesh/subscribe-channel","payload":{"channel":"chat:seq","sequenced":true}}`,
		`{"id":1,"command":"mesh/subscribe-channel","payload":{"success":true,"history":[],"sequence":0}}`)
	publishN(t, s, "chat:seq", 1, 10)
	for i := uint64(1); i <= 10; i++ {
		if got, want := first.next(), seqFrame("chat:seq", fmt.Sprint("m", i), i); got != want {
			t.Fatalf("got %s\nwant %s", got, want)
		}
	}

	// The reply's sequence is the seam: what the node had published when
	// the subscription caught up (the rest of head may still be on its way
	// to the node, and comes live after the reply).
	resume := func(after, head int) {
		t.Helper()
		w := dialWire(t, s)
		w.send(fmt.Sprintf(`{"id":7,"command":"mesh/subscribe-channel","payload":{"channel":"chat:seq","sequenced":true,"after":%d}}`, after))
		seam := -1
		for i := after + 1; i <= head; {
			got := w.next()
			if seam < 0 && strings.HasPrefix(got, `{"id":7,`) {
				if _, err := fmt.Sscanf(got, `{"id":7,"command":"mesh/subscribe-channel","payload":{"success":true,"history":[],"sequence":%d}}`, &seam); err != nil || seam != i-1 {
					t.Fatalf("resuming after %d: reply %s after message %d", after, got, i-1)
				}
				continue
			}
			if want := seqFrame("chat:seq", fmt.Sprint("m", i), uint64(i)); got != want {
				t.Fatalf("resuming after %d: got %s\nwant %s", after, got, want)
			}
			i++
		}
		if seam < 0 {
			if got, want := w.next(), fmt.Sprintf(`{"id":7,"command":"mesh/subscribe-channel","payload":{"success":true,"history":[],"sequence":%d}}`, head); got != want {
				t.Fatalf("got %s\nwant %s", got, want)
			}
		}
		publishN(t, s, "chat:seq", head+1, head+1)
		if got, want := w.next(), seqFrame("chat:seq", fmt.Sprint("m", head+1), uint64(head+1)); got != want {
			t.Fatalf("live after resume: got %s\nwant %s", got, want)
		}
	}
	resume(7, 10) // from the ring
	publishN(t, s, "chat:seq", 12, 700)
	resume(3, 700) // from the store, then the ring
	resume(701, 701)
}

// Resumes racing a publisher: each subscription still gets every message
// after its start once, in order, the replayed and the live ones.
func TestDurableResumeRacingPublishes(t *testing.T) {
	s := durableServer(t, Options{}, "chat:race")
	first := dialWire(t, s) // the node follows the channel from the start
	first.expect(`{"id":1,"command":"mesh/subscribe-channel","payload":{"channel":"chat:race","sequenced":true}}`,
		`{"id":1,"command":"mesh/subscribe-channel","payload":{"success":true,"history":[],"sequence":0}}`)
	const n = 1000 // each wire buffers them all (dialWire's 1024 frames)
	done := make(chan struct{})
	var published atomic.Int64
	go func() {
		defer close(done)
		for i := 1; i <= n; i++ {
			if _, err := s.PublishDurable(bg(), "chat:race", "m"+strconv.Itoa(i)); err != nil {
				t.Error(err)
				return
			}
			published.Store(int64(i))
		}
	}()
	var ws []*wire
	for i := range 4 {
		testutil.Eventually(t, 5*time.Second, func() error {
			if published.Load() < int64((i+1)*n/8) {
				return errors.New("waiting for the publisher")
			}
			return nil
		})
		w := dialWire(t, s)
		w.send(`{"id":1,"command":"mesh/subscribe-channel","payload":{"channel":"chat:race","sequenced":true,"after":0}}`)
		ws = append(ws, w)
	}
	<-done
	for _, w := range append(ws, first) {
		for i := 1; i <= n; {
			got := w.next()
			if strings.HasPrefix(got, `{"id":1,`) {
				continue
			}
			if want := seqFrame("chat:race", fmt.Sprint("m", i), uint64(i)); got != want {
				t.Fatalf("got %s\nwant %s", got, want)
			}
			i++
		}
	}
}

// A durable channel's name is a stream room; a pattern exposure that
// matches another name refuses it, telling a client that asked for
// sequences why.
func TestDurableNames(t *testing.T) {
	s := startServer(t, Options{})
	if err := s.ExposeDurableChannel("lobby", nil); err == nil {
		t.Fatal("a durable channel without a scope was exposed")
	}
	if err := s.ExposeDurableChannel("mesh:x", nil); err == nil {
		t.Fatal("a durable channel in the mesh: namespace was exposed")
	}
	if _, err := s.PublishDurable(bg(), "lobby", "x"); err == nil {
		t.Fatal("published on a durable channel without a scope")
	}
	if err := s.ExposeDurableChannelPattern(regexp.MustCompile(`^room`), nil); err != nil {
		t.Fatal(err)
	}
	w := dialWire(t, s)
	w.expect(`{"id":1,"command":"mesh/subscribe-channel","payload":{"channel":"room"}}`,
		`{"id":1,"command":"mesh/subscribe-channel","payload":{"success":false,"history":[]}}`)
	w.expect(`{"id":2,"command":"mesh/subscribe-channel","payload":{"channel":"room","sequenced":true}}`,
		`{"id":2,"command":"mesh/subscribe-channel","payload":{"error":"durable channel \"room\": its name must be scope:resourceId","code":"EINVALID","name":"CodeError"}}`)
	w.expect(`{"id":3,"command":"mesh/subscribe-channel","payload":{"channel":"room:1","sequenced":true}}`,
		`{"id":3,"command":"mesh/subscribe-channel","payload":{"success":true,"history":[],"sequence":0}}`)

	// A coordinator shared with other nodes needs a shared store.
	co := memory.New(memory.Options{})
	t.Cleanup(func() { _ = co.Close() })
	shared := startServer(t, Options{Coordinator: sharedCoordinator{co}})
	if err := shared.ExposeDurableChannel("chat:1", nil); !errors.Is(err, ErrNoStreams) {
		t.Fatalf("got %v, want ErrNoStreams", err)
	}
}

// sharedCoordinator hides the memory coordinator's LocalRegistry, as a
// coordinator shared by nodes has none.
type sharedCoordinator struct{ coord.Coordinator }

// received collects a Go client's channel messages.
type received struct {
	mu   sync.Mutex
	msgs []client.ChannelMessage
}

func (r *received) add(m client.ChannelMessage) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

func (r *received) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// wait waits for n messages and checks they are exactly the channel's
// messages 1..n ("m<i>", sequence i), in order.
func (r *received) wait(t testing.TB, n int) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, func() error {
		if got := r.len(); got < n {
			return fmt.Errorf("%d of %d messages", got, n)
		}
		return nil
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.msgs) != n {
		t.Fatalf("%d messages, want %d", len(r.msgs), n)
	}
	for i, m := range r.msgs {
		if m.Sequence != uint64(i+1) || m.Message != fmt.Sprint("m", i+1) || m.History {
			t.Fatalf("message %d is %+v, want m%d at sequence %d", i, m, i+1, i+1)
		}
	}
}

// resumingClient is a Go client through proxy px, reconnecting fast.
func resumingClient(t testing.TB, px *testutil.Proxy) *client.Client {
	t.Helper()
	c := client.New("ws://"+px.Addr+"/", client.Options{AwaitConnectionID: true,
		ReconnectDelay: time.Millisecond, MaxReconnectDelay: 20 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(bg(), 5*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// A Go client that loses its connection while messages are published
// resumes from the last message it saw: it ends with every message once,
// in order, whether it was away for a moment (the room's ring) or long
// enough for the store to be read, and with publishes racing its resume.
func TestDurableClientResumesAfterDrop(t *testing.T) {
	s := durableServer(t, Options{}, "chat:drop")
	px := testutil.StartProxy(t, s.Engine().Addr().String())
	c := resumingClient(t, px)
	var got received
	res, err := c.SubscribeChannelMessages(bg(), "chat:drop", got.add)
	if err != nil || !res.Durable || res.Sequence != 0 {
		t.Fatalf("subscribe: %+v, %v", res, err)
	}
	var wg sync.WaitGroup
	publish := func(from, to int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := from; i <= to; i++ {
				if _, err := s.PublishDurable(bg(), "chat:drop", "m"+strconv.Itoa(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}

	// Dropped while messages are in flight, publishes racing the resume.
	publish(1, 300)
	testutil.Eventually(t, 5*time.Second, func() error {
		if got.len() < 50 {
			return errors.New("waiting for messages")
		}
		return nil
	})
	px.Drop()
	wg.Wait()
	publish(301, 600)
	px.Drop()
	wg.Wait()
	got.wait(t, 600)

	// Away while more than the ring holds is published.
	px.Retarget("127.0.0.1:1") // refused: the client cannot reconnect
	px.Drop()
	testutil.Eventually(t, 5*time.Second, func() error {
		if c.Status() == client.Online {
			return errors.New("still online")
		}
		return nil
	})
	publishN(t, s, "chat:drop", 601, 1600)
	px.Retarget(s.Engine().Addr().String())
	publish(1601, 1900)
	wg.Wait()
	got.wait(t, 1900)
}

// A channel whose stream started again (a node on memory storage
// restarted) is followed from its new start: the client does not take its
// new messages for ones it saw.
func TestDurableClientFollowsRestartedStream(t *testing.T) {
	s1 := durableServer(t, Options{}, "chat:reset")
	px := testutil.StartProxy(t, s1.Engine().Addr().String())
	c := resumingClient(t, px)
	var got received
	if _, err := c.SubscribeChannelMessages(bg(), "chat:reset", got.add); err != nil {
		t.Fatal(err)
	}
	publishN(t, s1, "chat:reset", 1, 5)
	got.wait(t, 5)
	reconnected := make(chan struct{}, 1)
	c.OnReconnect(func() { reconnected <- struct{}{} })

	s2 := durableServer(t, Options{}, "chat:reset")
	publishN(t, s2, "chat:reset", 1, 2)
	px.Retarget(s2.Engine().Addr().String())
	px.Drop()
	select {
	case <-reconnected:
	case <-time.After(5 * time.Second):
		t.Fatal("no reconnect")
	}
	publishN(t, s2, "chat:reset", 3, 3)
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := got.len(); n < 8 {
			return fmt.Errorf("%d messages", n)
		}
		return nil
	})
	got.mu.Lock()
	defer got.mu.Unlock()
	var seqs []uint64
	for _, m := range got.msgs {
		seqs = append(seqs, m.Sequence)
	}
	if fmt.Sprint(seqs) != "[1 2 3 4 5 1 2 3]" {
		t.Fatalf("sequences %v", seqs)
	}
}

// A node's delivery of one durable channel message (its two frames, each
// encoded once, the two publishes, the fan-out to both kinds of
// subscribers) allocates nothing, whatever the number of subscribers.
func TestDurableDeliveryAllocs(t *testing.T) {
	if raceEnabled() {
		t.Skip("allocation counts are meaningless under -race")
	}
	sim, s := simServer(t, 2, Options{PingInterval: -1, LatencyInterval: -1, AssignID: AssignIDNever})
	if err := s.ExposeDurableChannel("alloc:1", nil); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		c := sim.Open((*handler)(s)).Conn().Value().(*Connection)
		waitRegistered(t, c)
		r := durablePlainRoute
		if i%2 == 0 {
			r = durableSeqRoute
		}
		if err := s.subs.take(bg(), c, r, "alloc:1"); err != nil {
			t.Fatal(err)
		}
	}
	dr := s.subs.room("alloc:1")
	const runs = 200
	evs := make([]streams.Event, runs+2)
	for i := range evs {
		evs[i] = streams.Event{Room: "alloc:1", Sequence: uint64(i + 1), Payload: json.RawMessage(`"hello \"world\""`)}
	}
	next := 0
	deliver := func() { dr.deliver(&evs[next]); next++ }
	before := sim.Engine().Stats().FramesWritten
	deliver() // warm the pools
	testutil.Eventually(t, 5*time.Second, func() error {
		if got := sim.Engine().Stats().FramesWritten - before; got != 100 {
			return fmt.Errorf("%d frames written, want 100", got)
		}
		return nil
	})
	if n := testing.AllocsPerRun(runs, deliver); n != 0 {
		t.Fatalf("%.1f allocations per delivered message", n)
	}
}
