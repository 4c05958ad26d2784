package streams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	"github.com/meshfast/meshfast/coord"
	coordmem "github.com/meshfast/meshfast/coord/memory"
	"github.com/meshfast/meshfast/features/streams/store"
	memstore "github.com/meshfast/meshfast/features/streams/store/memory"
	"github.com/meshfast/meshfast/perf"
	"github.com/meshfast/meshfast/protocol/zps"
)

// watchStore records every page it returns, weakly, and at each read
// checks that none of them is still reachable.
type watchStore struct {
	store.Store
	pages  []weak.Pointer[zps.Event]
	reads  int
	maxLen int
	held   []string // "read r: page p still reachable"
}

func (w *watchStore) Read(ctx context.Context, r store.ReadRequest) (store.Page, error) {
	runtime.GC()
	for i, p := range w.pages {
		if p.Value() != nil {
			w.held = append(w.held, fmt.Sprintf("read %d: page %d still reachable", w.reads, i))
		}
	}
	w.reads++
	p, err := w.Store.Read(ctx, r)
	if len(p.Events) > 0 {
		w.pages = append(w.pages, weak.Make(&p.Events[0]))
		w.maxLen = max(w.maxLen, len(p.Events))
	}
	return p, err
}

// TestCatchUpHoldsOneBatch: draining a backlog, the iterator never holds
// more than the one page it is yielding: when it reads the next page,
// every page before is unreachable (weak pointers, after a GC).
func TestCatchUpHoldsOneBatch(t *testing.T) {
	st := memstore.New(memstore.Options{})
	w := &watchStore{Store: st}
	s := newNode(t, Options{Store: w})
	publishN(t, s, "big:1", 5000)
	var n uint64
	for ev, err := range s.CatchUp(bg(t), CatchUpOptions{Room: "big:1", BatchSize: 250}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if ev.Sequence != n {
			t.Fatalf("sequence %d at %d", ev.Sequence, n)
		}
	}
	if n != 5000 || w.reads != 20 || w.maxLen != 250 || len(w.held) != 0 {
		t.Fatalf("%d events in %d reads of up to %d; %d pages held, first: %v", n, w.reads, w.maxLen, len(w.held), w.held[:min(3, len(w.held))])
	}
	// The check can fail: pages kept (here by the consumer) are caught.
	var kept []*Event
	w.pages, w.reads = nil, 0
	for ev := range s.CatchUp(bg(t), CatchUpOptions{Room: "big:1", BatchSize: 1000, MaxBatches: 3}) {
		kept = append(kept, ev)
	}
	if len(w.held) == 0 || len(kept) != 3000 {
		t.Fatal("pages kept by the consumer did not show as held: the check proves nothing")
	}
}

// TestLiveEventsAreReordered: events of one room that arrive out of order
// (published on different nodes) are delivered in order without a store
// read; repeats are dropped.
func TestLiveEventsAreReordered(t *testing.T) {
	co := coordmem.New(coordmem.Options{})
	defer co.Close()
	s := newNode(t, Options{PubSub: co, GapTimeout: time.Hour, TailCheckInterval: -1})
	c := newCollector()
	subscribe(t, s, SubscribeOptions{Rooms: []string{"ord:1"}, From: Live}, c.handle)
	var reqs []store.AppendRequest
	for i := range 5 {
		reqs = append(reqs, store.AppendRequest{Event: zps.Event{ID: "e" + strconv.Itoa(i), Type: "t", Room: "ord:1"}, TTL: time.Hour})
	}
	out, err := s.Store().Append(bg(t), reqs)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{2, 4, 0, 3, 3, 1, 0} {
		if err := co.Publish(bg(t), topicRoomPrefix+"ord:1", out[i].Event.AppendJSON(nil)); err != nil {
			t.Fatal(err)
		}
	}
	wantRange(t, "reordered", c.waitFor(t, "ord:1", 5), 1, 5)
	if st := s.Stats(); st.GapsDetected != 0 || st.Received != 5 {
		t.Fatalf("stats %+v: the reorder should not need the store", st)
	}
	if d := s.m.liveDuplicates.Load(); d != 2 {
		t.Fatalf("live duplicates %d, want 2", d)
	}
}

// TestPendingOverflowReadsTheStore: a gap longer than MaxPending is read
// from the store at once, whatever GapTimeout.
func TestPendingOverflowReadsTheStore(t *testing.T) {
	co := coordmem.New(coordmem.Options{})
	defer co.Close()
	s := newNode(t, Options{PubSub: co, GapTimeout: time.Hour, TailCheckInterval: -1, MaxPending: 3})
	c := newCollector()
	subscribe(t, s, SubscribeOptions{Rooms: []string{"ord:1"}, From: Live}, c.handle)
	var reqs []store.AppendRequest
	for i := range 10 {
		reqs = append(reqs, store.AppendRequest{Event: zps.Event{ID: "e" + strconv.Itoa(i), Type: "t", Room: "ord:1"}, TTL: time.Hour})
	}
	out, err := s.Store().Append(bg(t), reqs)
	if err != nil {
		t.Fatal(err)
	}
	for i := 9; i >= 5; i-- { // 1..5 never arrive live
		if err := co.Publish(bg(t), topicRoomPrefix+"ord:1", out[i].Event.AppendJSON(nil)); err != nil {
			t.Fatal(err)
		}
	}
	wantRange(t, "after overflow", c.waitFor(t, "ord:1", 10), 1, 10)
}

// recoveryPubSub is a memory coordinator whose reconnect the test fires.
type recoveryPubSub struct {
	*coordmem.Memory
	mu sync.Mutex
	hs []coord.ReconnectHandler
}

func (r *recoveryPubSub) OnReconnect(h coord.ReconnectHandler) func() {
	r.mu.Lock()
	r.hs = append(r.hs, h)
	r.mu.Unlock()
	return func() {}
}

func (r *recoveryPubSub) fire() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range r.hs {
		h()
	}
}

// TestReconnectChecksEveryRoom: after the coordinator reconnected (live
// messages may have been lost), every room is compared with its head.
func TestReconnectChecksEveryRoom(t *testing.T) {
	co := &recoveryPubSub{Memory: coordmem.New(coordmem.Options{})}
	defer co.Close()
	s := newNode(t, Options{PubSub: co, GapTimeout: time.Hour, TailCheckInterval: -1})
	c := newCollector()
	subscribe(t, s, SubscribeOptions{Rooms: []string{"rc:1", "rc:2"}, From: Live}, c.handle)
	for _, room := range []string{"rc:1", "rc:2"} {
		if _, err := s.Store().Append(bg(t), []store.AppendRequest{{Event: zps.Event{ID: "x", Type: "t", Room: room}, TTL: time.Hour}}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	if len(c.got("rc:1")) != 0 {
		t.Fatal("delivered without a live message or a check: the test proves nothing")
	}
	co.fire()
	wantRange(t, "rc:1", c.waitFor(t, "rc:1", 1), 1, 1)
	wantRange(t, "rc:2", c.waitFor(t, "rc:2", 1), 1, 1)
}

// TestListenPosition: Listen's contract, which the gateway builds on: the
// listener gets exactly the events after the position it returns.
func TestListenPosition(t *testing.T) {
	s := newNode(t, Options{})
	publishN(t, s, "pos:1", 7)
	var mu sync.Mutex
	var got []uint64
	pos, stop, err := s.Listen(bg(t), "pos:1", func(ev *Event) { mu.Lock(); got = append(got, ev.Sequence); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	if pos != 7 {
		t.Fatalf("position %d, want the head 7", pos)
	}
	publishN(t, s, "pos:1", 3)
	testutil_Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 3 })
	stop()
	stop()
	publishN(t, s, "pos:1", 1)
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != "[8 9 10]" {
		t.Fatalf("listener got %v", got)
	}
	if _, _, err := s.Listen(bg(t), "pos:*", func(*Event) {}); !errors.Is(err, ErrInvalidRoom) {
		t.Fatalf("Listen on a pattern: %v", err)
	}
}

func TestRetention(t *testing.T) {
	s := newNode(t, Options{MaxLen: 5})
	publishN(t, s, "ret:1", 12)
	r, err := s.Replay(bg(t), ReplayOptions{Room: "ret:1"})
	if err != nil || len(r.Events) != 5 || r.Events[0].Sequence != 8 {
		t.Fatalf("MaxLen 5: %d events from %v, %v", len(r.Events), r.Events, err)
	}
	if _, err := s.Publish(bg(t), Message{Room: "ret:2", Type: "t", TTL: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	testutil_Eventually(t, func() bool {
		r, err := s.Replay(bg(t), ReplayOptions{Room: "ret:2"})
		return err == nil && len(r.Events) == 0 && r.Head == 1
	})
	if n, err := s.Prune(bg(t), "ret:2"); err != nil || n != 1 {
		t.Fatalf("prune: %d %v", n, err)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	reg := perf.NewMetrics()
	st := memstore.New(memstore.Options{})
	s := newNode(t, Options{Store: st, Metrics: reg})
	c := newCollector()
	subscribe(t, s, SubscribeOptions{Rooms: []string{"m:1", "m:*"}}, c.handle)
	publishN(t, s, "m:1", 3)
	c.waitFor(t, "m:1", 3)
	if _, err := s.Replay(bg(t), ReplayOptions{Room: "m:1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshot(bg(t), "m:1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(bg(t), "m:1", 3, "w"); err != nil {
		t.Fatal(err)
	}
	h := s.Health(bg(t))
	if h.Status != "healthy" || h.Provider != "memory" || h.Details.ActiveRooms != 1 || h.Details.ActiveListeners != 2 || h.Details.Subscriptions != 1 || !h.Details.ListenerReady {
		t.Fatalf("health %+v", h)
	}
	b, _ := json.Marshal(h)
	if !bytes.Contains(b, []byte(`"status":"healthy","provider":"memory"`)) {
		t.Fatalf("health JSON %s", b)
	}
	stats := s.Stats()
	if stats.Published != 3 || stats.Received != 3 || stats.Delivered != 3 || stats.Acked != 1 || stats.Replayed != 3 ||
		stats.SnapshotUsage != 1 || stats.ReplayLatency.Count < 1 {
		t.Fatalf("stats %+v", stats)
	}
	text := string(reg.WritePrometheus(nil))
	for _, want := range []string{"meshfast_streams_published_total 3", "meshfast_streams_received_total 3",
		"meshfast_streams_snapshot_usage_total 1", "meshfast_streams_replay_seconds_count", "meshfast_streams_active_rooms 1",
		`meshfast_streams_replay_seconds{quantile="0.99"}`} {
		if !strings.Contains(text, want) {
			t.Fatalf("metrics lack %q:\n%s", want, text)
		}
	}
	st.Close()
	if h := s.Health(bg(t)); h.Status != "unhealthy" || !strings.Contains(h.Error, "closed") {
		t.Fatalf("health with a closed store %+v", h)
	}
}

func TestClose(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	closedInside := make(chan struct{})
	var sub *Subscription
	sub, err = s.Subscribe(bg(t), SubscribeOptions{Rooms: []string{"c:1"}}, func(ctx context.Context, ev *Event) error {
		if calls.Add(1) == 2 {
			sub.Close() // from inside its own handler: must not deadlock
			close(closedInside)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, s, "c:1", 5)
	<-closedInside
	<-sub.Done()
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d handler calls after closing inside the second", n)
	}
	other := newCollector()
	osub, err := s.Subscribe(bg(t), SubscribeOptions{Rooms: []string{"c:1"}}, other.handle)
	if err != nil {
		t.Fatal(err)
	}
	other.waitFor(t, "c:1", 5)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	<-osub.Done()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Publish(bg(t), msg("c:1", "t", 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("publish after close: %v", err)
	}
	if _, err := s.Subscribe(bg(t), SubscribeOptions{Rooms: []string{"c:1"}}, other.handle); !errors.Is(err, ErrClosed) {
		t.Fatalf("subscribe after close: %v", err)
	}
	for ev, err := range s.CatchUp(bg(t), CatchUpOptions{Room: "c:1"}) {
		if ev != nil || !errors.Is(err, ErrClosed) {
			t.Fatalf("catch-up after close: %v, %v", ev, err)
		}
	}
}

// TestPresenceLapses: users whose node stops announcing them (it died
// without a leave) disappear after PresenceTTL.
func TestPresenceLapses(t *testing.T) {
	nodes := memoryBackend().nodes(t, 2, Options{PresenceHeartbeat: 20 * time.Millisecond, PresenceTTL: 100 * time.Millisecond})
	a, b := nodes[0], nodes[1]
	if err := a.Presence("p:1").Enter(bg(t), PresenceUser{UserID: "ghost"}); err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	sub, err := b.Presence("p:1").Subscribe(bg(t), func(users []PresenceUser) { n.Store(int64(len(users))) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	testutil_Eventually(t, func() bool { return n.Load() == 1 })
	// Heartbeats keep it there past the TTL.
	time.Sleep(250 * time.Millisecond)
	if n.Load() != 1 {
		t.Fatal("a heartbeated user lapsed")
	}
	a.pres.mu.Lock()
	for _, er := range a.pres.entered {
		er.users = map[string]PresenceUser{} // the node "dies": no more announcements, no leave
	}
	a.pres.mu.Unlock()
	testutil_Eventually(t, func() bool { return n.Load() == 0 })
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{
		{TTL: -1}, {TTL: time.Microsecond}, {MaxLen: -1}, {FillBatch: store.MaxLimit + 1},
		{PresenceHeartbeat: time.Second, PresenceTTL: time.Second}, {Middleware: []Middleware{nil}},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("Validate(%+v) accepted", o)
		}
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	if err := (Options{}).Validate(); err != nil {
		t.Fatal(err)
	}
	s := newNode(t, Options{})
	for _, o := range []SubscribeOptions{
		{}, {Rooms: []string{"a:1"}, BatchSize: store.MaxLimit + 1}, {Rooms: []string{"a:1"}, Sync: SyncSnapshot, From: After(1)},
		{Rooms: []string{"a:1"}, SubscriberID: "a\x00"}, {Rooms: []string{"a:1"}, MaxBatches: -1},
	} {
		if _, err := s.Subscribe(bg(t), o, newCollector().handle); err == nil {
			t.Errorf("Subscribe(%+v) accepted", o)
		}
	}
	for _, o := range []CatchUpOptions{{Room: "a"}, {Room: "a:1", From: Live}, {Room: "a:1", BatchSize: -1}, {Room: "a:1", From: After(5), ToSequence: 4}} {
		for _, err := range s.CatchUp(bg(t), o) {
			if !errors.Is(err, ErrInvalidOptions) && !errors.Is(err, ErrInvalidRoom) {
				t.Errorf("CatchUp(%+v): %v", o, err)
			}
		}
	}
	if _, err := s.Replay(bg(t), ReplayOptions{Room: "a:1", Limit: store.MaxLimit + 1}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("replay limit: %v", err)
	}
}
