package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/meshfast/meshfast/features/streams/store"
	"github.com/meshfast/meshfast/protocol/zps"
)

// Factory returns n clients over one shared, empty store state, as n
// nodes see it.
type Factory func(t *testing.T, n int) []store.Store

// WaitTimeout bounds every eventually-style wait of the suite.
const WaitTimeout = 5 * time.Second

type test struct {
	name  string
	nodes int
	run   func(t *testing.T, ss []store.Store)
}

// Run runs every conformance test against stores from newStores.
func Run(t *testing.T, newStores Factory) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := max(tc.nodes, 1)
			ss := newStores(t, n)
			if len(ss) != n {
				t.Fatalf("factory returned %d stores, want %d", len(ss), n)
			}
			for _, s := range ss {
				t.Cleanup(func() { _ = s.Close() })
			}
			tc.run(t, ss)
		})
	}
}

var tests = []test{
	{"Sequences", 1, testSequences},
	{"EnvelopeFidelity", 2, testFidelity},
	{"BatchOrder", 1, testBatchOrder},
	{"ConcurrentAppendersOnSeveralClients", 3, testConcurrentAppend},
	{"Idempotency", 1, testIdempotency},
	{"ConcurrentDuplicates", 3, testConcurrentDuplicates},
	{"Read", 1, testRead},
	{"ReadPagesThroughBacklog", 2, testReadPaging},
	{"ReadTypes", 1, testReadTypes},
	{"RetentionByAge", 1, testRetentionAge},
	{"RetentionByLength", 1, testRetentionLength},
	{"Prune", 1, testPrune},
	{"Heads", 2, testHeads},
	{"Cursors", 2, testCursors},
	{"ConcurrentAcks", 3, testConcurrentAcks},
	{"Snapshots", 2, testSnapshots},
	{"InvalidArguments", 1, testInvalid},
	{"Closed", 1, testClosed},
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func req(room, id, typ string, payload string) store.AppendRequest {
	return store.AppendRequest{
		Event: zps.Event{ID: id, Type: typ, Room: room, Payload: json.RawMessage(payload)},
		TTL:   time.Hour,
	}
}

func appendOne(t *testing.T, s store.Store, r store.AppendRequest) store.Appended {
	t.Helper()
	out, err := s.Append(ctx(t), []store.AppendRequest{r})
	must(t, err)
	if len(out) != 1 {
		t.Fatalf("Append returned %d results for 1 request", len(out))
	}
	return out[0]
}

// readAll pages through room with the given limit and returns every event.
func readAll(t *testing.T, s store.Store, room string, limit int) []zps.Event {
	t.Helper()
	var all []zps.Event
	r := store.ReadRequest{Room: room, Limit: limit}
	for range 1_000_000 {
		p, err := s.Read(ctx(t), r)
		must(t, err)
		if len(p.Events) > limit {
			t.Fatalf("page of %d events for limit %d", len(p.Events), limit)
		}
		if p.Last < r.After {
			t.Fatalf("page Last %d < After %d", p.Last, r.After)
		}
		all = append(all, p.Events...)
		if p.Done(&r) {
			return all
		}
		if p.Last == r.After {
			t.Fatalf("read after %d made no progress (head %d)", r.After, p.Head)
		}
		r.After = p.Last
	}
	t.Fatal("read never done")
	return nil
}

func seqs(evs []zps.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i := range evs {
		out[i] = evs[i].Sequence
	}
	return out
}

func wantSeqs(t *testing.T, evs []zps.Event, from, to uint64) {
	t.Helper()
	if uint64(len(evs)) != to-from+1 && !(to < from && len(evs) == 0) {
		t.Fatalf("got sequences %v, want %d..%d", short(seqs(evs)), from, to)
	}
	for i := range evs {
		if evs[i].Sequence != from+uint64(i) {
			t.Fatalf("got sequences %v, want %d..%d", short(seqs(evs)), from, to)
		}
	}
}

func short(s []uint64) string {
	if len(s) <= 20 {
		return fmt.Sprint(s)
	}
	return fmt.Sprint(s[:10], "…", s[len(s)-10:])
}

func eventually(t *testing.T, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reached within %v: %v", WaitTimeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testSequences(t *testing.T, ss []store.Store) {
	s := ss[0]
	before := time.Now().Add(-time.Second)
	for i := 1; i <= 3; i++ {
		a := appendOne(t, s, req("chat:1", "e"+strconv.Itoa(i), "m", `{"n":`+strconv.Itoa(i)+`}`))
		if a.Duplicate || a.Event.Sequence != uint64(i) {
			t.Fatalf("append %d: %+v", i, a)
		}
		if a.Event.EmittedAt.Before(before) || a.Event.EmittedAt.After(time.Now().Add(time.Second)) {
			t.Fatalf("EmittedAt %v is not the store's now", a.Event.EmittedAt)
		}
		if want := a.Event.EmittedAt.Add(time.Hour); !a.Event.ExpiresAt.Equal(want) {
			t.Fatalf("ExpiresAt %v, want EmittedAt+TTL %v", a.Event.ExpiresAt, want)
		}
		if a.Event.EmittedAt != zps.Millis(a.Event.EmittedAt) {
			t.Fatalf("EmittedAt %v not at millisecond precision in UTC", a.Event.EmittedAt)
		}
	}
	if a := appendOne(t, s, req("chat:2", "x", "m", `1`)); a.Event.Sequence != 1 {
		t.Fatalf("another room starts at %d, want 1", a.Event.Sequence)
	}
	wantSeqs(t, readAll(t, s, "chat:1", 100), 1, 3)
}

// testFidelity: what a client appended another client reads back exactly,
// byte for byte.
func testFidelity(t *testing.T, ss []store.Store) {
	big := bytes.Repeat([]byte("x"), 64<<10)
	in := []store.AppendRequest{
		{Event: zps.Event{ID: "a:b\"c", Type: "message.créé", Room: "chat:a:b", Payload: json.RawMessage(`{"t":"hé\u00e9 \"q\"","n":[1,2.5e3,null,true]}`),
			Metadata: json.RawMessage(`{"producer":"api","traceId":"t1"}`), Encrypted: true}, TTL: time.Hour},
		{Event: zps.Event{ID: "b", Type: "t", Room: "chat:a:b", Payload: nil}, TTL: 2 * time.Hour},
		{Event: zps.Event{ID: "c", Type: "t", Room: "chat:a:b", Payload: json.RawMessage(`"` + string(big) + `"`)}, TTL: time.Hour},
	}
	out, err := ss[0].Append(ctx(t), in)
	must(t, err)
	got := readAll(t, ss[1], "chat:a:b", 10)
	if len(got) != 3 {
		t.Fatalf("read %d events, want 3", len(got))
	}
	for i := range in {
		w, g := in[i].Event, got[i]
		if g.ID != w.ID || g.Type != w.Type || g.Room != w.Room || !bytes.Equal(g.Payload, w.Payload) ||
			!bytes.Equal(g.Metadata, w.Metadata) || g.Encrypted != w.Encrypted || (g.Payload == nil) != (w.Payload == nil) {
			t.Fatalf("event %d read back as %+v, appended %+v", i, g, w)
		}
		a := out[i].Event
		if g.Sequence != a.Sequence || !g.EmittedAt.Equal(a.EmittedAt) || !g.ExpiresAt.Equal(a.ExpiresAt) {
			t.Fatalf("event %d read back as seq %d %v %v, Append said %d %v %v", i, g.Sequence, g.EmittedAt, g.ExpiresAt, a.Sequence, a.EmittedAt, a.ExpiresAt)
		}
		if !bytes.Equal(a.Payload, w.Payload) || a.ID != w.ID || a.Type != w.Type || a.Room != w.Room {
			t.Fatalf("Append result %d is %+v, appended %+v", i, a, w)
		}
	}
	if d := got[1].ExpiresAt.Sub(got[1].EmittedAt); d != 2*time.Hour {
		t.Fatalf("TTL read back as %v", d)
	}
}

func testBatchOrder(t *testing.T, ss []store.Store) {
	var batch []store.AppendRequest
	for i := range 30 {
		room := "chat:" + strconv.Itoa(i%3)
		batch = append(batch, req(room, "e"+strconv.Itoa(i), "t", strconv.Itoa(i)))
	}
	out, err := ss[0].Append(ctx(t), batch)
	must(t, err)
	if len(out) != len(batch) {
		t.Fatalf("%d results for %d requests", len(out), len(batch))
	}
	next := map[string]uint64{}
	for i, a := range out {
		room := batch[i].Event.Room
		next[room]++
		if a.Event.Sequence != next[room] || a.Event.ID != batch[i].Event.ID || a.Duplicate {
			t.Fatalf("result %d: %+v, want %s sequence %d", i, a, room, next[room])
		}
	}
	for room := range next {
		got := readAll(t, ss[0], room, 7)
		wantSeqs(t, got, 1, 10)
		for j, ev := range got {
			if want := strconv.Itoa(j*3 + int(room[len(room)-1]-'0')); string(ev.Payload) != want {
				t.Fatalf("%s seq %d payload %s, want %s", room, ev.Sequence, ev.Payload, want)
			}
		}
	}
}

// testConcurrentAppend: many appenders on several clients, singly and in
// batches, to one room: the room holds exactly 1..N, each appended event
// once, and each client's results are its own events.
func testConcurrentAppend(t *testing.T, ss []store.Store) {
	const workers, per = 4, 60
	var wg sync.WaitGroup
	var mu sync.Mutex
	gotSeq := map[uint64]string{}
	errc := make(chan error, len(ss)*workers)
	for ci, s := range ss {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < per; {
					n := 1 + (i+w)%3 // singles and small batches
					n = min(n, per-i)
					var batch []store.AppendRequest
					for j := range n {
						id := fmt.Sprintf("c%d-w%d-%d", ci, w, i+j)
						batch = append(batch, req("race:1", id, "t", `"`+id+`"`))
					}
					out, err := s.Append(context.Background(), batch)
					if err != nil {
						errc <- err
						return
					}
					mu.Lock()
					for j, a := range out {
						if a.Event.ID != batch[j].Event.ID || string(a.Event.Payload) != string(batch[j].Event.Payload) {
							mu.Unlock()
							errc <- fmt.Errorf("result %+v for request %s", a.Event, batch[j].Event.ID)
							return
						}
						if prev, dup := gotSeq[a.Event.Sequence]; dup {
							mu.Unlock()
							errc <- fmt.Errorf("sequence %d given to %s and %s", a.Event.Sequence, prev, a.Event.ID)
							return
						}
						gotSeq[a.Event.Sequence] = a.Event.ID
						if j > 0 && a.Event.Sequence <= out[j-1].Event.Sequence {
							mu.Unlock()
							errc <- fmt.Errorf("batch sequences not ascending: %d after %d", a.Event.Sequence, out[j-1].Event.Sequence)
							return
						}
					}
					mu.Unlock()
					i += n
				}
			}()
		}
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	total := uint64(len(ss) * workers * per)
	all := readAll(t, ss[len(ss)-1], "race:1", 97)
	wantSeqs(t, all, 1, total)
	for _, ev := range all {
		if gotSeq[ev.Sequence] != ev.ID {
			t.Fatalf("stored seq %d is %s, Append said %s", ev.Sequence, ev.ID, gotSeq[ev.Sequence])
		}
	}
}

func testIdempotency(t *testing.T, ss []store.Store) {
	s := ss[0]
	first := appendOne(t, s, store.AppendRequest{Event: zps.Event{ID: "txn_1:created", Type: "t", Room: "bank:tx", Payload: json.RawMessage(`{"v":1}`)}, TTL: time.Hour, Dedupe: true})
	appendOne(t, s, req("bank:tx", "other", "t", `2`))
	again := appendOne(t, s, store.AppendRequest{Event: zps.Event{ID: "txn_1:created", Type: "t2", Room: "bank:tx", Payload: json.RawMessage(`{"v":999}`)}, TTL: time.Hour, Dedupe: true})
	if !again.Duplicate || again.Event.Sequence != first.Event.Sequence || string(again.Event.Payload) != `{"v":1}` ||
		again.Event.Type != "t" || !again.Event.EmittedAt.Equal(first.Event.EmittedAt) {
		t.Fatalf("duplicate returned %+v, want the first event %+v", again, first)
	}
	// Scoped to the room.
	if a := appendOne(t, s, store.AppendRequest{Event: zps.Event{ID: "txn_1:created", Type: "t", Room: "bank:other"}, TTL: time.Hour, Dedupe: true}); a.Duplicate || a.Event.Sequence != 1 {
		t.Fatalf("same id in another room: %+v", a)
	}
	// Duplicates inside one batch: the second is the first's duplicate.
	out, err := s.Append(ctx(t), []store.AppendRequest{
		{Event: zps.Event{ID: "b1", Type: "t", Room: "bank:tx", Payload: json.RawMessage(`1`)}, TTL: time.Hour, Dedupe: true},
		{Event: zps.Event{ID: "b1", Type: "t", Room: "bank:tx", Payload: json.RawMessage(`2`)}, TTL: time.Hour, Dedupe: true},
	})
	must(t, err)
	if out[0].Duplicate || !out[1].Duplicate || out[1].Event.Sequence != out[0].Event.Sequence || string(out[1].Event.Payload) != "1" {
		t.Fatalf("batch duplicates: %+v", out)
	}
	wantSeqs(t, readAll(t, s, "bank:tx", 10), 1, 3)
}

// testConcurrentDuplicates: the same id published at once from several
// clients and goroutines is stored once; every caller gets that event.
func testConcurrentDuplicates(t *testing.T, ss []store.Store) {
	const rounds, callers = 20, 4
	for r := range rounds {
		id := "dup-" + strconv.Itoa(r)
		var wg sync.WaitGroup
		res := make([]store.Appended, len(ss)*callers)
		errs := make([]error, len(res))
		start := make(chan struct{})
		for i := range res {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				var out []store.Appended
				out, errs[i] = ss[i%len(ss)].Append(context.Background(), []store.AppendRequest{{
					Event: zps.Event{ID: id, Type: "t", Room: "dup:1", Payload: json.RawMessage(strconv.Itoa(i))}, TTL: time.Hour, Dedupe: true}})
				if errs[i] == nil {
					res[i] = out[0]
				}
			}()
		}
		close(start)
		wg.Wait()
		fresh := 0
		for i := range res {
			must(t, errs[i])
			if !res[i].Duplicate {
				fresh++
			}
			if res[i].Event.Sequence != uint64(r+1) || !bytes.Equal(res[i].Event.Payload, res[0].Event.Payload) {
				t.Fatalf("round %d caller %d got %+v, caller 0 %+v", r, i, res[i], res[0])
			}
		}
		if fresh != 1 {
			t.Fatalf("round %d: %d callers stored the event, want 1", r, fresh)
		}
	}
	wantSeqs(t, readAll(t, ss[0], "dup:1", 100), 1, rounds)
}

func fill(t *testing.T, s store.Store, room string, n int, typ func(i int) string) {
	t.Helper()
	var batch []store.AppendRequest
	for i := 1; i <= n; i++ {
		batch = append(batch, req(room, room+"-"+strconv.Itoa(i), typ(i), strconv.Itoa(i)))
		if len(batch) == 500 || i == n {
			_, err := s.Append(ctx(t), batch)
			must(t, err)
			batch = batch[:0]
		}
	}
}

func plainType(int) string { return "t" }

func testRead(t *testing.T, ss []store.Store) {
	s := ss[0]
	p, err := s.Read(ctx(t), store.ReadRequest{Room: "none:1", Limit: 10})
	must(t, err)
	if len(p.Events) != 0 || p.Head != 0 || p.Last != 0 {
		t.Fatalf("empty room: %+v", p)
	}
	fill(t, s, "r:1", 20, plainType)
	for _, tc := range []struct {
		r          store.ReadRequest
		from, to   uint64
		last, head uint64
		done       bool
	}{
		{store.ReadRequest{Limit: 5}, 1, 5, 5, 20, false},
		{store.ReadRequest{After: 5, Limit: 100}, 6, 20, 20, 20, true},
		{store.ReadRequest{After: 5, To: 8, Limit: 100}, 6, 8, 8, 20, true},
		{store.ReadRequest{After: 5, To: 8, Limit: 2}, 6, 7, 7, 20, false},
		{store.ReadRequest{After: 19, Limit: 5}, 20, 20, 20, 20, true},
		{store.ReadRequest{After: 20, Limit: 5}, 1, 0, 20, 20, true},
		{store.ReadRequest{After: 25, Limit: 5}, 1, 0, 25, 20, true},
		{store.ReadRequest{After: 3, To: 3, Limit: 5}, 1, 0, 3, 20, true},
	} {
		tc.r.Room = "r:1"
		p, err := s.Read(ctx(t), tc.r)
		must(t, err)
		if p.Last != tc.last || p.Head != tc.head || p.Done(&tc.r) != tc.done {
			t.Fatalf("Read(%+v): last %d head %d done %v; want %d %d %v", tc.r, p.Last, p.Head, p.Done(&tc.r), tc.last, tc.head, tc.done)
		}
		wantSeqs(t, p.Events, tc.from, tc.to)
		for _, ev := range p.Events {
			if string(ev.Payload) != strconv.FormatUint(ev.Sequence, 10) || ev.Room != "r:1" {
				t.Fatalf("seq %d: %+v", ev.Sequence, ev)
			}
		}
	}
}

// testReadPaging: a reader on another client pages through a backlog of
// several thousand events with small pages and gets each exactly once.
func testReadPaging(t *testing.T, ss []store.Store) {
	fill(t, ss[0], "big:1", 3000, plainType)
	for _, limit := range []int{1, 64, 1000, store.MaxLimit} {
		if limit == 1 {
			got := readAllFrom(t, ss[1], "big:1", 2990, 1)
			wantSeqs(t, got, 2991, 3000)
			continue
		}
		wantSeqs(t, readAll(t, ss[1], "big:1", limit), 1, 3000)
	}
}

func readAllFrom(t *testing.T, s store.Store, room string, after uint64, limit int) []zps.Event {
	t.Helper()
	var all []zps.Event
	r := store.ReadRequest{Room: room, After: after, Limit: limit}
	for {
		p, err := s.Read(ctx(t), r)
		must(t, err)
		all = append(all, p.Events...)
		if p.Done(&r) {
			return all
		}
		r.After = p.Last
	}
}

func testReadTypes(t *testing.T, ss []store.Store) {
	s := ss[0]
	fill(t, s, "ty:1", 30, func(i int) string {
		if i%3 == 0 {
			return "b"
		}
		return "a"
	})
	r := store.ReadRequest{Room: "ty:1", Limit: 9, Types: []string{"b"}}
	p, err := s.Read(ctx(t), r)
	must(t, err)
	// The filter does not widen the scan: 9 sequences examined, 3 match.
	if p.Last != 9 || fmt.Sprint(seqs(p.Events)) != "[3 6 9]" {
		t.Fatalf("types page: last %d events %v", p.Last, seqs(p.Events))
	}
	var got []uint64
	for {
		p, err := s.Read(ctx(t), r)
		must(t, err)
		for _, ev := range p.Events {
			if ev.Type != "b" {
				t.Fatalf("type %q in a read of b", ev.Type)
			}
			got = append(got, ev.Sequence)
		}
		if p.Done(&r) {
			break
		}
		r.After = p.Last
	}
	if len(got) != 10 || got[9] != 30 {
		t.Fatalf("all b events: %v", got)
	}
	r = store.ReadRequest{Room: "ty:1", Limit: 100, Types: []string{"a", "b"}}
	p, err = s.Read(ctx(t), r)
	must(t, err)
	wantSeqs(t, p.Events, 1, 30)
}

// testRetentionAge: an expired event leaves reads at once and its
// idempotency key with it; pruning removes it and no head or cursor moves.
func testRetentionAge(t *testing.T, ss []store.Store) {
	s := ss[0]
	short := store.AppendRequest{Event: zps.Event{ID: "s1", Type: "t", Room: "age:1"}, TTL: 60 * time.Millisecond, Dedupe: true}
	a := appendOne(t, s, short)
	short.Event.ID = "s2"
	appendOne(t, s, short)
	long := appendOne(t, s, store.AppendRequest{Event: zps.Event{ID: "l3", Type: "t", Room: "age:1"}, TTL: time.Hour, Dedupe: true})
	if d := a.Event.ExpiresAt.Sub(a.Event.EmittedAt); d != 60*time.Millisecond {
		t.Fatalf("TTL %v", d)
	}
	_, err := s.Ack(ctx(t), "age:1", "w1", 2)
	must(t, err)
	eventually(t, func() error {
		p, err := s.Read(ctx(t), store.ReadRequest{Room: "age:1", Limit: 10})
		if err != nil {
			return err
		}
		if fmt.Sprint(seqs(p.Events)) != "[3]" || p.Head != 3 || p.Last != 3 {
			return fmt.Errorf("read %v last %d head %d, want [3]", seqs(p.Events), p.Last, p.Head)
		}
		return nil
	})
	// The expired event's id is free again: a new event, at head+1.
	again := appendOne(t, s, store.AppendRequest{Event: zps.Event{ID: "s1", Type: "t", Room: "age:1"}, TTL: time.Hour, Dedupe: true})
	if again.Duplicate || again.Event.Sequence != 4 {
		t.Fatalf("re-publish of an expired id: %+v", again)
	}
	// A retained one is still a duplicate.
	if d := appendOne(t, s, store.AppendRequest{Event: zps.Event{ID: "l3", Type: "t", Room: "age:1"}, TTL: time.Hour, Dedupe: true}); !d.Duplicate || d.Event.Sequence != long.Event.Sequence {
		t.Fatalf("retained id: %+v", d)
	}
	if _, err := s.Prune(ctx(t), "age:1", 0); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Prune(ctx(t), "age:1", 0); err != nil || n != 0 {
		t.Fatalf("second prune removed %d, %v", n, err)
	}
	wantSeqs(t, readAll(t, s, "age:1", 10), 3, 4)
	if c, err := s.Cursor(ctx(t), "age:1", "w1"); err != nil || c != 2 {
		t.Fatalf("cursor after prune %d, %v", c, err)
	}
	// A room whose events all expire continues at head+1.
	b := appendOne(t, s, store.AppendRequest{Event: zps.Event{ID: "x", Type: "t", Room: "age:2"}, TTL: 30 * time.Millisecond})
	eventually(t, func() error {
		if _, err := s.Prune(ctx(t), "age:2", 0); err != nil {
			return err
		}
		p, err := s.Read(ctx(t), store.ReadRequest{Room: "age:2", Limit: 10})
		if err != nil {
			return err
		}
		if len(p.Events) != 0 || p.Head != 1 {
			return fmt.Errorf("read %v head %d", seqs(p.Events), p.Head)
		}
		return nil
	})
	if c := appendOne(t, s, req("age:2", "y", "t", "1")); c.Event.Sequence != b.Event.Sequence+1 {
		t.Fatalf("after expiry the room restarted at %d", c.Event.Sequence)
	}
}

func testRetentionLength(t *testing.T, ss []store.Store) {
	s := ss[0]
	for i := 1; i <= 10; i++ {
		appendOne(t, s, store.AppendRequest{Event: zps.Event{ID: "k" + strconv.Itoa(i), Type: "t", Room: "len:1"}, TTL: time.Hour, Dedupe: true, MaxLen: 3})
	}
	wantSeqs(t, readAll(t, s, "len:1", 10), 8, 10)
	p, err := s.Read(ctx(t), store.ReadRequest{Room: "len:1", Limit: 2})
	must(t, err)
	if p.Head != 10 || fmt.Sprint(seqs(p.Events)) != "[8 9]" {
		t.Fatalf("read from 0 with limit 2 after trim: %v last %d head %d", seqs(p.Events), p.Last, p.Head)
	}
	// The trimmed event's id is free again; a retained one is not.
	if a := appendOne(t, s, store.AppendRequest{Event: zps.Event{ID: "k1", Type: "t", Room: "len:1"}, TTL: time.Hour, Dedupe: true, MaxLen: 3}); a.Duplicate || a.Event.Sequence != 11 {
		t.Fatalf("re-publish of a trimmed id: %+v", a)
	}
	if a := appendOne(t, s, store.AppendRequest{Event: zps.Event{ID: "k10", Type: "t", Room: "len:1"}, TTL: time.Hour, Dedupe: true, MaxLen: 3}); !a.Duplicate || a.Event.Sequence != 10 {
		t.Fatalf("re-publish of a retained id: %+v", a)
	}
}

func testPrune(t *testing.T, ss []store.Store) {
	s := ss[0]
	fill(t, s, "pr:1", 10, plainType)
	n, err := s.Prune(ctx(t), "pr:1", 4)
	must(t, err)
	if n != 6 {
		t.Fatalf("prune to 4 removed %d, want 6", n)
	}
	wantSeqs(t, readAll(t, s, "pr:1", 3), 7, 10)
	if n, err := s.Prune(ctx(t), "pr:1", 4); err != nil || n != 0 {
		t.Fatalf("prune again: %d, %v", n, err)
	}
	if n, err := s.Prune(ctx(t), "none:1", 1); err != nil || n != 0 {
		t.Fatalf("prune of an unknown room: %d, %v", n, err)
	}
	if a := appendOne(t, s, req("pr:1", "n", "t", "1")); a.Event.Sequence != 11 {
		t.Fatalf("after prune, sequence %d", a.Event.Sequence)
	}
}

func testHeads(t *testing.T, ss []store.Store) {
	fill(t, ss[0], "h:1", 3, plainType)
	fill(t, ss[0], "h:2", 7, plainType)
	hs, err := ss[1].Heads(ctx(t), []string{"h:2", "h:0", "h:1"})
	must(t, err)
	if fmt.Sprint(hs) != "[7 0 3]" {
		t.Fatalf("heads %v", hs)
	}
	hs, err = ss[1].Heads(ctx(t), nil)
	must(t, err)
	if len(hs) != 0 {
		t.Fatalf("heads of nothing: %v", hs)
	}
}

func testCursors(t *testing.T, ss []store.Store) {
	a, b := ss[0], ss[1]
	fill(t, a, "c:1", 10, plainType)
	if c, err := b.Cursor(ctx(t), "c:1", "w1"); err != nil || c != 0 {
		t.Fatalf("fresh cursor %d, %v", c, err)
	}
	for _, step := range []struct{ ack, want uint64 }{{3, 3}, {5, 5}, {4, 5}, {5, 5}, {0, 5}, {10, 10}} {
		c, err := a.Ack(ctx(t), "c:1", "w1", step.ack)
		if err != nil || c != step.want {
			t.Fatalf("ack %d: cursor %d, %v; want %d", step.ack, c, err, step.want)
		}
		if c, err := b.Cursor(ctx(t), "c:1", "w1"); err != nil || c != step.want {
			t.Fatalf("cursor on the other client after ack %d: %d, %v", step.ack, c, err)
		}
	}
	if _, err := a.Ack(ctx(t), "c:1", "w1", 11); !errors.Is(err, store.ErrAheadOfHead) {
		t.Fatalf("ack beyond head: %v", err)
	}
	if _, err := a.Ack(ctx(t), "c:9", "w1", 1); !errors.Is(err, store.ErrAheadOfHead) {
		t.Fatalf("ack in an empty room: %v", err)
	}
	if c, err := b.Cursor(ctx(t), "c:1", "w2"); err != nil || c != 0 {
		t.Fatalf("another subscriber's cursor %d, %v", c, err)
	}
	if c, err := b.Cursor(ctx(t), "c:2", "w1"); err != nil || c != 0 {
		t.Fatalf("the subscriber's cursor in another room %d, %v", c, err)
	}
}

// testConcurrentAcks: acks racing on several clients leave the cursor at
// the highest.
func testConcurrentAcks(t *testing.T, ss []store.Store) {
	fill(t, ss[0], "ca:1", 200, plainType)
	var wg sync.WaitGroup
	for i, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 200 - i; seq > 0; seq -= 3 {
				if _, err := s.Ack(context.Background(), "ca:1", "w", uint64(seq)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if c, err := ss[0].Cursor(ctx(t), "ca:1", "w"); err != nil || c != 200 {
		t.Fatalf("cursor %d, %v; want 200", c, err)
	}
}

func testSnapshots(t *testing.T, ss []store.Store) {
	a, b := ss[0], ss[1]
	if _, ok, err := b.Snapshot(ctx(t), "s:1"); err != nil || ok {
		t.Fatalf("no snapshot: ok %v, %v", ok, err)
	}
	fill(t, a, "s:1", 5, plainType)
	must(t, a.SetSnapshot(ctx(t), "s:1", zps.Snapshot{LastSequence: 3, State: json.RawMessage(`{"messages":[1,2,3]}`)}))
	s, ok, err := b.Snapshot(ctx(t), "s:1")
	if err != nil || !ok || s.LastSequence != 3 || string(s.State) != `{"messages":[1,2,3]}` {
		t.Fatalf("snapshot %+v %v %v", s, ok, err)
	}
	if err := a.SetSnapshot(ctx(t), "s:1", zps.Snapshot{LastSequence: 6, State: json.RawMessage(`1`)}); !errors.Is(err, store.ErrAheadOfHead) {
		t.Fatalf("snapshot beyond head: %v", err)
	}
	if err := a.SetSnapshot(ctx(t), "s:1", zps.Snapshot{LastSequence: 2, State: json.RawMessage(`1`)}); !errors.Is(err, store.ErrStaleSnapshot) {
		t.Fatalf("older snapshot: %v", err)
	}
	must(t, b.SetSnapshot(ctx(t), "s:1", zps.Snapshot{LastSequence: 3, State: json.RawMessage(`"rebuilt"`)}))
	must(t, b.SetSnapshot(ctx(t), "s:1", zps.Snapshot{LastSequence: 0 + 5, State: json.RawMessage(`null`)}))
	s, ok, err = a.Snapshot(ctx(t), "s:1")
	if err != nil || !ok || s.LastSequence != 5 || string(s.State) != `null` {
		t.Fatalf("replaced snapshot %+v %v %v", s, ok, err)
	}
	// A snapshot at 0 of an empty room is allowed (the state before any event).
	must(t, a.SetSnapshot(ctx(t), "s:2", zps.Snapshot{LastSequence: 0, State: json.RawMessage(`{}`)}))
}

func testInvalid(t *testing.T, ss []store.Store) {
	s := ss[0]
	for _, r := range []store.AppendRequest{
		{Event: zps.Event{ID: "a", Type: "t"}, TTL: time.Hour},
		{Event: zps.Event{Type: "t", Room: "x:1"}, TTL: time.Hour},
		{Event: zps.Event{ID: "a", Room: "x:1"}, TTL: time.Hour},
		{Event: zps.Event{ID: "a", Type: "t", Room: "x:1"}},
		{Event: zps.Event{ID: "a", Type: "t", Room: "x:1"}, TTL: time.Hour, MaxLen: -1},
	} {
		if _, err := s.Append(ctx(t), []store.AppendRequest{req("x:1", "ok", "t", "1"), r}); !errors.Is(err, store.ErrInvalidArgument) {
			t.Fatalf("Append(%+v) = %v", r, err)
		}
	}
	// Nothing of a refused batch is stored.
	if hs, err := s.Heads(ctx(t), []string{"x:1"}); err != nil || hs[0] != 0 {
		t.Fatalf("head after refused batches %v, %v", hs, err)
	}
	for _, r := range []store.ReadRequest{{Limit: 1}, {Room: "x:1"}, {Room: "x:1", Limit: store.MaxLimit + 1}, {Room: "x:1", After: 5, To: 4, Limit: 1}} {
		if _, err := s.Read(ctx(t), r); !errors.Is(err, store.ErrInvalidArgument) {
			t.Fatalf("Read(%+v) = %v", r, err)
		}
	}
	if _, err := s.Ack(ctx(t), "x:1", "", 0); !errors.Is(err, store.ErrInvalidArgument) {
		t.Fatalf("ack without subscriber: %v", err)
	}
	if _, err := s.Prune(ctx(t), "x:1", -1); !errors.Is(err, store.ErrInvalidArgument) {
		t.Fatalf("prune -1: %v", err)
	}
	out, err := s.Append(ctx(t), nil)
	if err != nil || len(out) != 0 {
		t.Fatalf("empty append: %v, %v", out, err)
	}
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Append(c, []store.AppendRequest{req("x:1", "a", "t", "1")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("append with a canceled context: %v", err)
	}
}

func testClosed(t *testing.T, ss []store.Store) {
	s := ss[0]
	must(t, s.Health(ctx(t)))
	must(t, s.Close())
	must(t, s.Close())
	if _, err := s.Append(ctx(t), []store.AppendRequest{req("x:1", "a", "t", "1")}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := s.Read(ctx(t), store.ReadRequest{Room: "x:1", Limit: 1}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if err := s.Health(ctx(t)); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("health after close: %v", err)
	}
}
