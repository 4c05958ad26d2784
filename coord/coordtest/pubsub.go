package coordtest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/meshfast/meshfast/coord"
)

var pubsubTests = []test{
	{"Deliver", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		var r recorder
		sub := must1[coord.Subscription](t)(c.Subscribe(ctx, "topic-a", r.handler))
		if sub.Topic != "topic-a" {
			t.Fatalf("Subscription = %+v", sub)
		}
		must(t, c.Publish(ctx, "topic-nobody", b("dropped")))
		payload := b("hello")
		must(t, c.Publish(ctx, "topic-a", payload))
		copy(payload, "XXXXX")
		eventually(t, func() error { return r.has("topic-a=hello") })
		must(t, c.Publish(ctx, "topic-a", nil))
		eventually(t, func() error { return r.has("topic-a=") })
	}},
	{"SeveralHandlersAndTopics", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		var a1, a2, bb recorder
		must1[coord.Subscription](t)(c.Subscribe(ctx, "topic-a", a1.handler))
		must1[coord.Subscription](t)(c.Subscribe(ctx, "topic-a", a2.handler))
		must1[coord.Subscription](t)(c.Subscribe(ctx, "topic-b", bb.handler))
		must(t, c.Publish(ctx, "topic-a", b("for a")))
		must(t, c.Publish(ctx, "topic-b", b("for b")))
		eventually(t, func() error { return a1.has("topic-a=for a") })
		eventually(t, func() error { return a2.has("topic-a=for a") })
		eventually(t, func() error { return bb.has("topic-b=for b") })
		// Per topic order: topic-b's message came after topic-a's, so a1
		// and a2 have nothing else.
		if got := append(a1.get(), a2.get()...); len(got) != 2 {
			t.Fatalf("topic-a handlers got %q", got)
		}
		if got := bb.get(); len(got) != 1 {
			t.Fatalf("topic-b handler got %q", got)
		}
	}},
	{"Unsubscribe", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		var gone, stays recorder
		sub := must1[coord.Subscription](t)(c.Subscribe(ctx, "topic", gone.handler))
		must1[coord.Subscription](t)(c.Subscribe(ctx, "topic", stays.handler))
		must(t, c.Publish(ctx, "topic", b("1")))
		eventually(t, func() error { return gone.has("topic=1") })
		eventually(t, func() error { return stays.has("topic=1") })
		must(t, c.Unsubscribe(ctx, sub))
		must(t, c.Unsubscribe(ctx, sub))
		must(t, c.Unsubscribe(ctx, coord.Subscription{Topic: "never", ID: 12345}))
		must(t, c.Publish(ctx, "topic", b("2")))
		eventually(t, func() error { return stays.has("topic=2") })
		if got := gone.get(); len(got) != 1 {
			t.Fatalf("unsubscribed handler got %q", got)
		}
		// Subscribing again works.
		var again recorder
		must1[coord.Subscription](t)(c.Subscribe(ctx, "topic", again.handler))
		must(t, c.Publish(ctx, "topic", b("3")))
		eventually(t, func() error { return again.has("topic=3") })
	}},
	{"Order", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		var r recorder
		must1[coord.Subscription](t)(c.Subscribe(ctx, "topic", r.handler))
		const n = 200
		var want []string
		for i := range n {
			msg := fmt.Sprintf("%d", i)
			want = append(want, "topic="+msg)
			must(t, c.Publish(ctx, "topic", []byte(msg)))
		}
		eventually(t, func() error {
			if got := r.get(); len(got) < n {
				return fmt.Errorf("%d of %d delivered", len(got), n)
			}
			return nil
		})
		if got := r.get(); !slices.Equal(got, want) {
			t.Fatalf("out of order or extra: %q", got)
		}
	}},
	{"PublishBatch", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		var r recorder
		must1[coord.Subscription](t)(c.Subscribe(ctx, "t1", r.handler))
		must1[coord.Subscription](t)(c.Subscribe(ctx, "t2", r.handler))
		must(t, c.PublishBatch(ctx, []coord.Message{
			{Topic: "t1", Payload: b("a")},
			{Topic: "t2", Payload: b("b")},
			{Topic: "nobody", Payload: b("x")},
			{Topic: "t1", Payload: b("c")},
		}))
		eventually(t, func() error { return r.has("t1=c") })
		eventually(t, func() error { return r.has("t2=b") })
		var t1 []string
		for _, m := range r.get() {
			if m[:2] == "t1" {
				t1 = append(t1, m)
			}
		}
		if !slices.Equal(t1, []string{"t1=a", "t1=c"}) {
			t.Fatalf("t1 got %q", t1)
		}
		must(t, c.PublishBatch(ctx, nil))
	}},
	{"HandlerMayHandOff", func(t *testing.T, c coord.Coordinator) {
		// The intended handler shape: hand off to another goroutine, which
		// may call the coordinator.
		ctx := bg(t)
		work := make(chan []byte, 16)
		must1[coord.Subscription](t)(c.Subscribe(ctx, "in", func(_ string, p []byte) { work <- p }))
		var out recorder
		must1[coord.Subscription](t)(c.Subscribe(ctx, "out", out.handler))
		done := make(chan struct{})
		go func() {
			defer close(done)
			p := <-work
			_ = c.Publish(ctx, "out", append([]byte("echo "), p...))
		}()
		must(t, c.Publish(ctx, "in", b("ping")))
		eventually(t, func() error { return out.has("out=echo ping") })
		<-done
	}},
}

var clusterTests = []clusterTest{
	{"PubSubAcrossNodes", 2, func(t *testing.T, cs []coord.Coordinator) {
		ctx := bg(t)
		var onB recorder
		must1[coord.Subscription](t)(cs[1].Subscribe(ctx, coord.NodeTopic("node-b"), onB.handler))
		must(t, cs[0].Publish(ctx, coord.NodeTopic("node-b"), b(`{"targetConnectionIds":["c1"]}`)))
		eventually(t, func() error { return onB.has(coord.NodeTopic("node-b") + `={"targetConnectionIds":["c1"]}`) })
		var hist recorder
		must1[coord.Subscription](t)(cs[1].Subscribe(ctx, "chat", hist.handler))
		must(t, cs[0].PublishToChannel(ctx, "chat", b("hi"), 5))
		eventually(t, func() error { return hist.has("chat=hi") })
		wantHistory(t, cs[1], "chat", 5, "hi")
	}},
	{"SharedState", 2, func(t *testing.T, cs []coord.Coordinator) {
		ctx := bg(t)
		a, bn := cs[0], cs[1]
		must(t, a.RegisterConnection(ctx, "conn-a", "node-a"))
		must(t, bn.RegisterConnection(ctx, "conn-b", "node-b"))
		must1[bool](t)(a.AddToRoom(ctx, "test-room", "conn-a"))
		must1[bool](t)(bn.AddToRoom(ctx, "test-room", "conn-b"))
		wantSet(t, "members seen by a", must1[[]string](t)(a.RoomMembers(ctx, "test-room")), "conn-a", "conn-b")
		nodes := must1[[]string](t)(a.ConnectionNodes(ctx, []string{"conn-a", "conn-b"}))
		if !slices.Equal(nodes, []string{"node-a", "node-b"}) {
			t.Fatalf("ConnectionNodes = %q", nodes)
		}
		must(t, a.SetRoomMetadata(ctx, "test-room", b(`{"k":1}`)))
		wantJSON(t, "meta seen by b", must1[[]byte](t)(bn.RoomMetadata(ctx, "test-room")), `{"k":1}`)
		must1[bool](t)(bn.JoinPresence(ctx, "test-room", "conn-b", longTTL))
		wantPresent(t, a, "test-room", "conn-b")
		removed := must1[coord.RemovedConnection](t)(a.RemoveConnection(ctx, "conn-b"))
		wantSet(t, "present", removed.Present, "test-room")
		wantPresent(t, bn, "test-room")
	}},
	{"RecordWritersOnSeveralNodes", 3, func(t *testing.T, cs []coord.Coordinator) {
		concurrentRecordWriters(t, cs)
	}},
	{"ExpiryReportedOnce", 3, func(t *testing.T, cs []coord.Coordinator) {
		ctx := bg(t)
		ex := make([]expiries, len(cs))
		for i, c := range cs {
			defer c.OnPresenceExpiry(ex[i].handler)()
		}
		total := func(kind coord.ExpiryKind, conn string) int {
			n := 0
			for i := range ex {
				n += ex[i].count(kind, "room", conn)
			}
			return n
		}
		wait := func(kind coord.ExpiryKind, conn string) {
			t.Helper()
			eventually(t, func() error {
				if total(kind, conn) == 0 {
					return fmt.Errorf("%v expiry of %s not reported", kind, conn)
				}
				return nil
			})
		}
		must1[bool](t)(cs[0].JoinPresence(ctx, "room", "conn-1", shortTTL))
		must(t, cs[1].SetPresenceState(ctx, "room", "conn-1", b(`{"s":1}`), 0))
		must1[bool](t)(cs[1].JoinPresence(ctx, "room", "conn-2", longTTL))
		must(t, cs[2].SetPresenceState(ctx, "room", "conn-2", b(`{"s":2}`), shortTTL))
		wait(coord.ExpiredPresence, "conn-1")
		wait(coord.ExpiredState, "conn-2")
		// Sentinels, then count.
		must1[bool](t)(cs[2].JoinPresence(ctx, "room", "conn-s", shortTTL))
		must(t, cs[0].SetPresenceState(ctx, "room", "conn-2", b(`{"s":3}`), shortTTL))
		wait(coord.ExpiredPresence, "conn-s")
		eventually(t, func() error {
			if total(coord.ExpiredState, "conn-2") < 2 {
				return fmt.Errorf("second state expiry of conn-2 not reported")
			}
			return nil
		})
		if n := total(coord.ExpiredPresence, "conn-1"); n != 1 {
			t.Fatalf("presence expiry reported %d times across nodes, want 1", n)
		}
		if n := total(coord.ExpiredState, "conn-1"); n != 0 {
			t.Fatalf("state of an expired presence reported %d times, want 0", n)
		}
		if n := total(coord.ExpiredState, "conn-2"); n != 2 {
			t.Fatalf("state expiry reported %d times across nodes, want 2 (one per state)", n)
		}
	}},
}
