package streams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfast/meshfast/features/streams/store"
	"github.com/meshfast/meshfast/protocol/zps"
)

// TestBackends runs the feature's behaviour on every storage and
// coordination pairing: memory (the embedded default), a single Redis and
// a Redis Cluster, each with several nodes over one shared state.
func TestBackends(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, b backend)
	}{
		{"PublishAndEnvelope", testPublishAndEnvelope},
		{"IdempotentAcrossNodes", testIdempotentAcrossNodes},
		{"ConcurrentPublishersOnSeveralNodes", testConcurrentPublishers},
		{"SubscribeSeamsUnderConcurrentPublishing", testSubscribeSeams},
		{"SnapshotSyncSeams", testSnapshotSeams},
		{"ResumeFromCursor", testResumeFromCursor},
		{"ReplayAndCatchUp", testReplayAndCatchUp},
		{"SlowSubscriberLosesNothing", testSlowSubscriber},
		{"MultiRoomAndWildcard", testMultiRoomAndWildcard},
		{"LostFanOutIsReadFromTheStore", testLostFanOut},
		{"EphemeralAndPresence", testEphemeralAndPresence},
	}
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, b) })
			}
		})
	}
}

func testPublishAndEnvelope(t *testing.T, b backend) {
	nodes := b.nodes(t, 2, Options{})
	a, other := nodes[0], nodes[1]
	p, err := a.Publish(bg(t), Message{Room: "chat:123", Type: "message.created",
		Payload: json.RawMessage(`{"text":"Hello"}`), Metadata: json.RawMessage(`{"producer":"api"}`), Encrypted: true, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if p.Sequence != 1 || p.Duplicate || p.ID == "" || p.Room != "chat:123" || p.Type != "message.created" || !p.Encrypted ||
		p.ExpiresAt.Sub(p.EmittedAt) != time.Hour || string(p.Payload) != `{"text":"Hello"}` || string(p.Metadata) != `{"producer":"api"}` {
		t.Fatalf("published %+v", *p.Event)
	}
	p2, err := other.Publish(bg(t), msg("chat:123", "t", 2))
	if err != nil || p2.Sequence != 2 || p2.ID == p.ID {
		t.Fatalf("second publish from another node: %+v %v", p2, err)
	}
	if d := p2.ExpiresAt.Sub(p2.EmittedAt); d != DefaultTTL {
		t.Fatalf("default TTL %v", d)
	}
	r, err := other.Replay(bg(t), ReplayOptions{Room: "chat:123"})
	if err != nil || len(r.Events) != 2 {
		t.Fatalf("replay: %+v %v", r, err)
	}
	got, want := r.Events[0].AppendJSON(nil), p.Event.AppendJSON(nil)
	if !bytes.Equal(got, want) {
		t.Fatalf("replayed envelope\n%s\npublished\n%s", got, want)
	}
	for _, bad := range []Message{
		{Room: "chat", Type: "t"}, {Room: "chat:*", Type: "t"}, {Room: "*", Type: "t"}, {Room: "chat:1"},
		{Room: "chat:1", Type: "t", Payload: json.RawMessage(`{`)},
		{Room: "chat:1", Type: "t", Metadata: json.RawMessage(`[1]`)},
		{Room: "chat:1", Type: "t", ID: "a\nb"},
		{Room: "chat:1", Type: "t", TTL: -1},
	} {
		if _, err := a.Publish(bg(t), bad); err == nil {
			t.Fatalf("Publish(%+v) accepted", bad)
		}
	}
	if r, _ := a.Replay(bg(t), ReplayOptions{Room: "chat:1"}); len(r.Events) != 0 {
		t.Fatalf("refused publishes stored %d events", len(r.Events))
	}
}

// testIdempotentAcrossNodes: the same id published at once from every
// node is stored once, every caller gets that event, and a subscriber
// sees it once.
func testIdempotentAcrossNodes(t *testing.T, b backend) {
	nodes := b.nodes(t, 3, Options{})
	c := newCollector()
	subscribe(t, nodes[2], SubscribeOptions{Rooms: []string{"bank:tx"}}, c.handle)
	const rounds, perNode = 10, 4
	for r := range rounds {
		id := "txn_" + strconv.Itoa(r) + ":created"
		var wg sync.WaitGroup
		res := make([]Published, len(nodes)*perNode)
		errs := make([]error, len(res))
		start := make(chan struct{})
		for i := range res {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res[i], errs[i] = nodes[i%len(nodes)].Publish(context.Background(), Message{ID: id, Room: "bank:tx", Type: "transaction.created",
					Payload: json.RawMessage(strconv.Itoa(i))})
			}()
		}
		close(start)
		wg.Wait()
		fresh := 0
		for i := range res {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if !res[i].Duplicate {
				fresh++
			}
			if res[i].Sequence != uint64(r+1) || res[i].ID != id || !bytes.Equal(res[i].Payload, res[0].Payload) {
				t.Fatalf("round %d caller %d: %+v, caller 0: %+v", r, i, *res[i].Event, *res[0].Event)
			}
		}
		if fresh != 1 {
			t.Fatalf("round %d: %d publishes stored the event", r, fresh)
		}
	}
	c.waitFor(t, "bank:tx", rounds)
	// The duplicates were fanned out again; the subscriber still has each once.
	if _, err := nodes[0].Publish(bg(t), msg("bank:tx", "sentinel", 0)); err != nil {
		t.Fatal(err)
	}
	wantRange(t, "subscriber", c.waitFor(t, "bank:tx", rounds+1), 1, rounds+1)
	var dups uint64
	for _, n := range nodes {
		dups += n.Stats().DuplicatesDropped
	}
	if want := uint64(rounds * (perNode*len(nodes) - 1)); dups != want {
		t.Fatalf("duplicates counted %d, want %d", dups, want)
	}
}

// testConcurrentPublishers: publishers on several nodes write to one room
// at once, singly and in batches: the room holds exactly 1..N, and a
// subscriber on every node receives exactly 1..N in order.
func testConcurrentPublishers(t *testing.T, b backend) {
	nodes := b.nodes(t, 3, Options{})
	const room = "race:1"
	cs := make([]*collector, len(nodes))
	for i, n := range nodes {
		cs[i] = newCollector()
		subscribe(t, n, SubscribeOptions{Rooms: []string{room}}, cs[i].handle)
	}
	const perWorker, workers = 150, 3
	var wg sync.WaitGroup
	var failed atomic.Value
	for ni, n := range nodes {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < perWorker; {
					k := min(1+(i+w)%5, perWorker-i)
					batch := make([]Message, k)
					for j := range batch {
						batch[j] = Message{Room: room, Type: "t", ID: fmt.Sprintf("n%d-w%d-%d", ni, w, i+j)}
					}
					if _, err := n.PublishBatch(context.Background(), batch); err != nil {
						failed.Store(err)
						return
					}
					i += k
				}
			}()
		}
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	total := uint64(len(nodes) * workers * perWorker)
	var ids []string
	for ev, err := range nodes[0].CatchUp(bg(t), CatchUpOptions{Room: room, BatchSize: 97}) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Sequence != uint64(len(ids)+1) {
			t.Fatalf("stored sequence %d at position %d", ev.Sequence, len(ids)+1)
		}
		ids = append(ids, ev.ID)
	}
	if uint64(len(ids)) != total {
		t.Fatalf("stored %d events, want %d", len(ids), total)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("event %s stored twice", id)
		}
		seen[id] = true
	}
	for i, c := range cs {
		wantRange(t, fmt.Sprintf("subscriber on node %d", i), c.waitFor(t, room, int(total)), 1, total)
	}
}

// testSubscribeSeams: subscribers start, on every node, while publishers
// on every node keep publishing; each ends with exactly the events after
// its start, in order: nothing missed or repeated between its catch-up
// and its live events.
func testSubscribeSeams(t *testing.T, b backend) {
	nodes := b.nodes(t, 2, Options{})
	const room = "seam:1"
	publishN(t, nodes[0], room, 50)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var published atomic.Uint64
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := n.Publish(context.Background(), msg(room, "t", 0)); err != nil {
					t.Error(err)
					return
				}
				published.Add(1)
			}
		}()
	}
	type started struct {
		c    *collector
		from uint64
	}
	var subs []started
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 12 {
		n := nodes[i%len(nodes)]
		for published.Load() < uint64(10*(i+1)) {
			time.Sleep(time.Millisecond)
		}
		from := uint64(rng.IntN(60))
		c := newCollector()
		o := SubscribeOptions{Rooms: []string{room}, From: After(from), BatchSize: 1 + rng.IntN(20)}
		if i%3 == 2 {
			o.From, o.SubscriberID = Start{}, "seam-"+strconv.Itoa(i)
			if err := n.Ack(bg(t), room, from, o.SubscriberID); err != nil {
				t.Fatal(err)
			}
		}
		subscribe(t, n, o, c.handle)
		subs = append(subs, started{c, from})
	}
	for published.Load() < 400 {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	total := 50 + published.Load()
	for i, s := range subs {
		wantRange(t, fmt.Sprintf("subscriber %d from %d", i, s.from), s.c.waitFor(t, room, int(total-s.from)), s.from+1, total)
	}
}

// testSnapshotSeams: a subscriber syncing from a snapshot gets the
// snapshot first, then exactly the events after its LastSequence, while
// publishing goes on.
func testSnapshotSeams(t *testing.T, b backend) {
	nodes := b.nodes(t, 2, Options{})
	const room = "snap:1"
	publishN(t, nodes[0], room, 120)
	if err := nodes[0].SetSnapshot(bg(t), room, Snapshot{LastSequence: 100, State: json.RawMessage(`{"messages":100}`)}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan uint64)
	go func() {
		n := uint64(0)
		for {
			select {
			case <-stop:
				done <- n
				return
			default:
			}
			if _, err := nodes[n%2].Publish(context.Background(), msg(room, "t", 0)); err != nil {
				t.Error(err)
			}
			n++
		}
	}()
	var cs []*collector
	for i := range 6 {
		c := newCollector()
		subscribe(t, nodes[i%2], SubscribeOptions{Rooms: []string{room, "snap:none"}, Sync: SyncSnapshot, OnSnapshot: c.onSnapshot, BatchSize: 7}, c.handle)
		cs = append(cs, c)
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(stop)
	total := 120 + <-done
	for i, c := range cs {
		wantRange(t, fmt.Sprintf("snapshot subscriber %d", i), c.waitFor(t, room, int(total-100)), 101, total)
		c.mu.Lock()
		snaps := fmt.Sprint(c.snaps)
		c.mu.Unlock()
		if snaps != `[snap:1@100:{"messages":100} snap:none@none]` {
			t.Fatalf("subscriber %d snapshots %s", i, snaps)
		}
	}
	if u := nodes[0].Stats().SnapshotUsage + nodes[1].Stats().SnapshotUsage; u < 12 {
		t.Fatalf("snapshot usage %d, want at least 12", u)
	}
	// Snapshots only move forward.
	if err := nodes[1].SetSnapshot(bg(t), room, Snapshot{LastSequence: 99}); !errors.Is(err, ErrStaleSnapshot) {
		t.Fatalf("older snapshot: %v", err)
	}
	if err := nodes[1].SetSnapshot(bg(t), room, Snapshot{LastSequence: total + 1}); !errors.Is(err, ErrAheadOfHead) {
		t.Fatalf("snapshot beyond head: %v", err)
	}
	if s, err := nodes[1].Snapshot(bg(t), "snap:none"); s != nil || err != nil {
		t.Fatalf("no snapshot: %+v %v", s, err)
	}
}

func testResumeFromCursor(t *testing.T, b backend) {
	nodes := b.nodes(t, 2, Options{})
	const room = "cur:1"
	publishN(t, nodes[0], room, 30)
	if err := nodes[0].Ack(bg(t), room, 12, "worker-1"); err != nil {
		t.Fatal(err)
	}
	if err := nodes[1].Ack(bg(t), room, 5, "worker-1"); err != nil { // late: the cursor stays
		t.Fatal(err)
	}
	if err := nodes[1].Ack(bg(t), room, 31, "worker-1"); !errors.Is(err, ErrAheadOfHead) {
		t.Fatalf("ack beyond head: %v", err)
	}
	if c, err := nodes[1].Cursor(bg(t), room, "worker-1"); err != nil || c != 12 {
		t.Fatalf("cursor %d %v", c, err)
	}
	// By subscriber id: after the cursor.
	c1 := newCollector()
	subscribe(t, nodes[1], SubscribeOptions{Rooms: []string{room}, SubscriberID: "worker-1", BatchSize: 4}, c1.handle)
	// fromSequence overrides the cursor.
	c2 := newCollector()
	subscribe(t, nodes[1], SubscribeOptions{Rooms: []string{room}, SubscriberID: "worker-1", From: After(25)}, c2.handle)
	// Live only.
	c3 := newCollector()
	subscribe(t, nodes[0], SubscribeOptions{Rooms: []string{room}, SubscriberID: "worker-1", From: Live}, c3.handle)
	// Neither: from the start.
	c4 := newCollector()
	subscribe(t, nodes[0], SubscribeOptions{Rooms: []string{room}}, c4.handle)
	// A capped catch-up skips the rest of the backlog and goes live.
	c5 := newCollector()
	subscribe(t, nodes[0], SubscribeOptions{Rooms: []string{room}, BatchSize: 5, MaxBatches: 2}, c5.handle)
	publishN(t, nodes[0], room, 5)
	wantRange(t, "cursor", c1.waitFor(t, room, 23), 13, 35)
	wantRange(t, "fromSequence", c2.waitFor(t, room, 10), 26, 35)
	wantRange(t, "live", c3.waitFor(t, room, 5), 31, 35)
	wantRange(t, "from the start", c4.waitFor(t, room, 35), 1, 35)
	got := c5.waitFor(t, room, 15)
	wantRange(t, "capped head", got[:10], 1, 10)
	wantRange(t, "capped live", got[10:], 31, 35)
	// A subscriber that acks as it goes resumes where it stopped.
	var n atomic.Int64
	s1 := subscribe(t, nodes[0], SubscribeOptions{Rooms: []string{room}, SubscriberID: "acker"}, func(ctx context.Context, ev *Event) error {
		n.Add(1)
		return nodes[0].Ack(ctx, ev.Room, ev.Sequence, "acker")
	})
	testutil_Eventually(t, func() bool { c, _ := nodes[0].Cursor(bg(t), room, "acker"); return c == 35 })
	_ = s1.Close()
	publishN(t, nodes[1], room, 3)
	c6 := newCollector()
	subscribe(t, nodes[1], SubscribeOptions{Rooms: []string{room}, SubscriberID: "acker"}, c6.handle)
	wantRange(t, "resumed", c6.waitFor(t, room, 3), 36, 38)
}

func testutil_Eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testReplayAndCatchUp(t *testing.T, b backend) {
	nodes := b.nodes(t, 2, Options{})
	const room = "rp:1"
	var batch []Message
	for i := 1; i <= 2500; i++ {
		typ := "a"
		if i%5 == 0 {
			typ = "b"
		}
		batch = append(batch, msg(room, typ, i))
	}
	for i := 0; i < len(batch); i += 500 {
		if _, err := nodes[0].PublishBatch(bg(t), batch[i:i+500]); err != nil {
			t.Fatal(err)
		}
	}
	r, err := nodes[1].Replay(bg(t), ReplayOptions{Room: room, FromSequence: 25, Limit: 100})
	if err != nil || len(r.Events) != 100 || r.Events[0].Sequence != 26 || r.Next != 125 || !r.More || r.Head != 2500 {
		t.Fatalf("replay page: %d events from %d, next %d, more %v, head %d, %v", len(r.Events), r.Events[0].Sequence, r.Next, r.More, r.Head, err)
	}
	r, err = nodes[1].Replay(bg(t), ReplayOptions{Room: room, FromSequence: 100, ToSequence: 150, EventTypes: []string{"b"}, Limit: 100})
	if err != nil || len(r.Events) != 10 || r.Events[0].Sequence != 105 || r.Events[9].Sequence != 150 || r.More {
		t.Fatalf("replay with types and to: %d events, more %v, %v", len(r.Events), r.More, err)
	}
	// Limit counts matching events: a selective type looks further.
	r, err = nodes[1].Replay(bg(t), ReplayOptions{Room: room, EventTypes: []string{"b"}, Limit: 30})
	if err != nil || len(r.Events) != 30 || r.Events[29].Sequence != 150 || r.Next != 150 || !r.More {
		t.Fatalf("replay of 30 b: %d, next %d, %v", len(r.Events), r.Next, err)
	}
	r, err = nodes[1].Replay(bg(t), ReplayOptions{Room: room, FromSequence: 2490, Limit: 100})
	if err != nil || len(r.Events) != 10 || r.More || r.Next != 2500 {
		t.Fatalf("last page: %d, more %v, next %d, %v", len(r.Events), r.More, r.Next, err)
	}
	drain := func(o CatchUpOptions) []uint64 {
		var got []uint64
		for ev, err := range nodes[1].CatchUp(bg(t), o) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ev.Sequence)
		}
		return got
	}
	wantRange(t, "catch-up", drain(CatchUpOptions{Room: room, BatchSize: 333}), 1, 2500)
	wantRange(t, "catch-up from/to", drain(CatchUpOptions{Room: room, From: After(1000), ToSequence: 1999, BatchSize: 128}), 1001, 1999)
	if got := drain(CatchUpOptions{Room: room, EventTypes: []string{"b"}, BatchSize: 1000}); len(got) != 500 || got[499] != 2500 {
		t.Fatalf("catch-up of b: %d", len(got))
	}
	wantRange(t, "max batches", drain(CatchUpOptions{Room: room, BatchSize: 10, MaxBatches: 3}), 1, 30)
	if err := nodes[0].Ack(bg(t), room, 2400, "w"); err != nil {
		t.Fatal(err)
	}
	wantRange(t, "catch-up from the cursor", drain(CatchUpOptions{Room: room, SubscriberID: "w"}), 2401, 2500)
	// Breaking out stops the iteration.
	n := 0
	for range nodes[1].CatchUp(bg(t), CatchUpOptions{Room: room, BatchSize: 10}) {
		n++
		if n == 15 {
			break
		}
	}
	if n != 15 {
		t.Fatalf("break after %d", n)
	}
}

// testSlowSubscriber: a handler far slower than the publisher, with a tiny
// queue, still gets every event once, in order: it reads what its queue
// refused from the store.
func testSlowSubscriber(t *testing.T, b backend) {
	nodes := b.nodes(t, 2, Options{})
	const room = "slow:1"
	c := newCollector()
	subscribe(t, nodes[1], SubscribeOptions{Rooms: []string{room}, QueueSize: 2, BatchSize: 3}, func(ctx context.Context, ev *Event) error {
		if ev.Sequence%50 == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		return c.handle(ctx, ev)
	})
	publishN(t, nodes[0], room, 600)
	wantRange(t, "slow subscriber", c.waitFor(t, room, 600), 1, 600)
	if nodes[1].Stats().QueueOverflows == 0 {
		t.Fatal("the queue never overflowed: the test proves nothing")
	}
}

func testMultiRoomAndWildcard(t *testing.T, b backend) {
	nodes := b.nodes(t, 2, Options{})
	publishN(t, nodes[0], "chat:1", 3)
	multi := newCollector()
	subscribe(t, nodes[1], SubscribeOptions{Rooms: []string{"chat:1", "chat:2", "chat:1"}}, multi.handle)
	wild := newCollector()
	subscribe(t, nodes[1], SubscribeOptions{Rooms: []string{"chat:*"}}, wild.handle)
	both := newCollector()
	subscribe(t, nodes[0], SubscribeOptions{Rooms: []string{"chat:*", "chat:1"}}, both.handle)
	for _, bad := range []string{"*", "*:*", "chat:a*", "chat"} {
		if _, err := nodes[0].Subscribe(bg(t), SubscribeOptions{Rooms: []string{bad}}, multi.handle); err == nil {
			t.Fatalf("subscribe %q accepted", bad)
		}
	}
	for i := range 20 {
		for _, room := range []string{"chat:1", "chat:2", "chat:9:x", "order:1"} {
			if _, err := nodes[i%2].Publish(bg(t), msg(room, "t", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	wantRange(t, "multi chat:1", multi.waitFor(t, "chat:1", 23), 1, 23)
	wantRange(t, "multi chat:2", multi.waitFor(t, "chat:2", 20), 1, 20)
	wantRange(t, "wildcard chat:2", wild.waitFor(t, "chat:2", 20), 1, 20)
	wantRange(t, "wildcard chat:9:x", wild.waitFor(t, "chat:9:x", 20), 1, 20)
	wantRange(t, "wildcard chat:1", wild.waitFor(t, "chat:1", 20), 4, 23)
	wantRange(t, "room and its pattern", both.waitFor(t, "chat:1", 23), 1, 23)
	time.Sleep(20 * time.Millisecond)
	for _, c := range []*collector{multi, wild, both} {
		if got := c.got("order:1"); len(got) != 0 {
			t.Fatalf("order:1 reached a chat subscription: %v", got)
		}
	}
	wantRange(t, "room and its pattern, once", both.got("chat:1"), 1, 23)
	wantRange(t, "multi chat:1, once", multi.got("chat:1"), 1, 23)
}

// testLostFanOut: events stored without their live publish (a publisher
// that died between the two) reach the subscribers anyway: a gap is read
// from the store when the next event shows it, and a lost last event by
// the tail check.
func testLostFanOut(t *testing.T, b backend) {
	nodes := b.nodes(t, 2, Options{TailCheckInterval: 50 * time.Millisecond, GapTimeout: 20 * time.Millisecond})
	const room = "lost:1"
	c := newCollector()
	subscribe(t, nodes[1], SubscribeOptions{Rooms: []string{room}, From: Live}, c.handle)
	appendOnly := func(n int) {
		reqs := make([]store.AppendRequest, n)
		for i := range reqs {
			reqs[i] = store.AppendRequest{Event: zps.Event{ID: "silent-" + strconv.Itoa(rand.Int()), Type: "t", Room: room}, TTL: time.Hour}
		}
		if _, err := nodes[0].Store().Append(bg(t), reqs); err != nil {
			t.Fatal(err)
		}
	}
	publishN(t, nodes[0], room, 2)
	appendOnly(3) // 3..5, never published live
	publishN(t, nodes[0], room, 1)
	wantRange(t, "gap filled", c.waitFor(t, room, 6), 1, 6)
	appendOnly(2) // 7..8, nothing after them
	wantRange(t, "tail found", c.waitFor(t, room, 8), 1, 8)
	if g := nodes[1].Stats().GapsDetected; g < 2 {
		t.Fatalf("gaps %d, want at least 2", g)
	}
}

func testEphemeralAndPresence(t *testing.T, b backend) {
	nodes := b.nodes(t, 2, Options{PresenceHeartbeat: 40 * time.Millisecond, PresenceTTL: 200 * time.Millisecond})
	a, other := nodes[0], nodes[1]
	type got struct {
		room, typ, payload string
	}
	var mu sync.Mutex
	var typing, all []got
	rec := func(dst *[]got) EphemeralHandler {
		return func(_ context.Context, ev *EphemeralEvent) error {
			mu.Lock()
			*dst = append(*dst, got{ev.Room, ev.Type, string(ev.Payload)})
			mu.Unlock()
			return nil
		}
	}
	s1, err := other.SubscribeEphemeral(bg(t), EphemeralOptions{Rooms: []string{"chat:1"}, EventTypes: []string{"typing"}}, rec(&typing))
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	s2, err := other.SubscribeEphemeral(bg(t), EphemeralOptions{Rooms: []string{"chat:*", "chat:1"}}, rec(&all))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for _, m := range []EphemeralMessage{
		{Room: "chat:1", Type: "typing", Payload: json.RawMessage(`{"userId":"u1"}`)},
		{Room: "chat:1", Type: "cursor", Payload: json.RawMessage(`{"x":1}`)},
		{Room: "chat:2", Type: "typing", Payload: json.RawMessage(`{"userId":"u2"}`)},
		{Room: "order:1", Type: "typing"},
	} {
		if err := a.PublishEphemeral(bg(t), m); err != nil {
			t.Fatal(err)
		}
	}
	testutil_Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(typing) >= 1 && len(all) >= 3 })
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	if fmt.Sprint(typing) != `[{chat:1 typing {"userId":"u1"}}]` ||
		fmt.Sprint(all) != `[{chat:1 typing {"userId":"u1"}} {chat:1 cursor {"x":1}} {chat:2 typing {"userId":"u2"}}]` {
		t.Fatalf("typing %v\nall %v", typing, all)
	}
	mu.Unlock()
	// Never stored.
	if r, err := a.Replay(bg(t), ReplayOptions{Room: "chat:1"}); err != nil || len(r.Events) != 0 || r.Head != 0 {
		t.Fatalf("ephemeral events stored: %+v %v", r, err)
	}
	if err := a.PublishEphemeral(bg(t), EphemeralMessage{Room: "chat:1", Type: "presence.enter"}); !errors.Is(err, ErrReservedType) {
		t.Fatalf("reserved type: %v", err)
	}

	// Presence: entered on one node, seen on the other, whichever
	// subscribed first.
	pa := a.Presence("chat:1")
	if err := pa.Enter(bg(t), PresenceUser{UserID: "u1", Metadata: json.RawMessage(`{"name":"Francisco"}`)}); err != nil {
		t.Fatal(err)
	}
	var pmu sync.Mutex
	var last []PresenceUser
	psub, err := other.Presence("chat:1").Subscribe(bg(t), func(users []PresenceUser) {
		pmu.Lock()
		last = users
		pmu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer psub.Close()
	users := func() string {
		pmu.Lock()
		defer pmu.Unlock()
		var s []string
		for _, u := range last {
			if u.LastSeenAt.IsZero() {
				return "no lastSeenAt"
			}
			s = append(s, u.UserID+string(u.Metadata))
		}
		return fmt.Sprint(s)
	}
	waitUsers := func(want string) {
		t.Helper()
		testutil_Eventually(t, func() bool { return users() == want })
	}
	waitUsers(`[u1{"name":"Francisco"}]`) // through the sync request
	if err := other.Presence("chat:1").Enter(bg(t), PresenceUser{UserID: "u0"}); err != nil {
		t.Fatal(err)
	}
	waitUsers(`[u0 u1{"name":"Francisco"}]`)
	if err := pa.Leave(bg(t), "u1"); err != nil {
		t.Fatal(err)
	}
	waitUsers(`[u0]`)
	if err := pa.Enter(bg(t), PresenceUser{UserID: "u2"}); err != nil {
		t.Fatal(err)
	}
	waitUsers(`[u0 u2]`)
	// A node that closes takes its users with it.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	waitUsers(`[u0]`)
}
