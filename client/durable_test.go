package client

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/meshfast/meshfast/protocol"
)

func seqPush(channel, msg string, seq uint64) string {
	return string(protocol.AppendSequencedSubscriptionMessage(nil, channel, msg, seq))
}

// describe renders what a channel callback got, for comparisons.
func describe(ms []ChannelMessage) []string {
	var out []string
	for _, m := range ms {
		s := fmt.Sprintf("%s@%d", m.Message, m.Sequence)
		if m.History {
			s += "(h)"
		}
		out = append(out, s)
	}
	return out
}

// A durable channel, as a meshfast server speaks it: the client asks for
// sequences, resumes after the last one it delivered, skips what a resume
// sends again, and follows a stream that started again from its new start.
func TestDurableChannelResumes(t *testing.T) {
	s := newFakeServer(t, fakeOptions{assignID: true})
	c, fc := connected(t, s, Options{ReconnectDelay: time.Millisecond, AwaitConnectionID: true})
	ctx := ctxT(t)
	var got recorder[ChannelMessage]
	res := async(func() error {
		r, err := c.SubscribeChannelMessages(ctx, "chat:1", got.add, WithHistoryLimit(1))
		if err == nil && (!r.Durable || r.Sequence != 4 || !slices.Equal(r.History, []string{"m4"})) {
			t.Errorf("result %+v", r)
		}
		return err
	})
	f := fc.expectRaw(t, `{"id":%d,"command":"mesh/subscribe-channel","payload":{"channel":"chat:1","historyLimit":1,"sequenced":true}}`)
	fc.send(seqPush("chat:1", "m5", 5)) // live, before the reply
	fc.reply(f, `{"success":true,"history":["m4"],"sequence":4,"historySequences":[4]}`)
	if err := waitErr(t, res); err != nil {
		t.Fatal(err)
	}
	fc.send(seqPush("chat:1", "m6", 6))
	want := []string{"m5@5", "m4@4(h)", "m6@6"}
	if g := describe(got.wait(t, 3)); !slices.Equal(g, want) {
		t.Fatalf("got %q, want %q", g, want)
	}

	// Resumed after 6; what the server sends again is skipped, and what
	// arrives before the reply waits for it.
	fc.drop()
	fc2 := s.accept(t)
	f = fc2.expectRaw(t, `{"id":%d,"command":"mesh/subscribe-channel","payload":{"channel":"chat:1","sequenced":true,"after":6}}`)
	fc2.send(seqPush("chat:1", "m6", 6))
	fc2.send(seqPush("chat:1", "m7", 7))
	fc2.quiet(t, 10*time.Millisecond)
	if n := got.len(); n != 3 {
		t.Fatalf("%d messages delivered before the resume's reply", n)
	}
	fc2.reply(f, `{"success":true,"history":[],"sequence":7}`)
	fc2.send(seqPush("chat:1", "m8", 8))
	want = append(want, "m7@7", "m8@8")
	if g := describe(got.wait(t, 5)); !slices.Equal(g, want) {
		t.Fatalf("got %q, want %q", g, want)
	}

	// The server's store lost the stream, which started again: the reply's
	// sequence is below the resume's, and what came before it is new.
	fc2.drop()
	fc3 := s.accept(t)
	f = fc3.expectRaw(t, `{"id":%d,"command":"mesh/subscribe-channel","payload":{"channel":"chat:1","sequenced":true,"after":8}}`)
	fc3.send(seqPush("chat:1", "n1", 1))
	fc3.reply(f, `{"success":true,"history":[],"sequence":1}`)
	fc3.send(seqPush("chat:1", "n2", 2))
	want = append(want, "n1@1", "n2@2")
	if g := describe(got.wait(t, 7)); !slices.Equal(g, want) {
		t.Fatalf("got %q, want %q", g, want)
	}

	// A server that cannot reach its store: the attempt fails and the
	// next one resumes, rather than the channel being forgotten.
	fc3.drop()
	fc4 := s.accept(t)
	f = fc4.expectRaw(t, `{"id":%d,"command":"mesh/subscribe-channel","payload":{"channel":"chat:1","sequenced":true,"after":2}}`)
	fc4.reply(f, `{"error":"unavailable","code":"EUNAVAILABLE","name":"CodeError"}`)
	fc5 := s.accept(t)
	f = fc5.expectRaw(t, `{"id":%d,"command":"mesh/subscribe-channel","payload":{"channel":"chat:1","sequenced":true,"after":2}}`)
	fc5.reply(f, `{"success":true,"history":[],"sequence":2}`)
	fc5.send(seqPush("chat:1", "n3", 3))
	want = append(want, "n3@3")
	if g := describe(got.wait(t, 8)); !slices.Equal(g, want) {
		t.Fatalf("got %q, want %q", g, want)
	}
}

// On a channel that is not durable (Mesh, or a meshfast channel without
// the flag) the request's extra members are ignored and the client
// behaves as Mesh's: no sequence, restored without a position.
func TestPlainChannelIgnoresSequences(t *testing.T) {
	s := newFakeServer(t, fakeOptions{assignID: true})
	c, fc := connected(t, s, Options{ReconnectDelay: time.Millisecond, AwaitConnectionID: true})
	ctx := ctxT(t)
	var got recorder[ChannelMessage]
	res := async(func() error {
		r, err := c.SubscribeChannelMessages(ctx, "news", got.add, WithAfter(3))
		if err == nil && (r.Durable || !r.Success) {
			t.Errorf("result %+v", r)
		}
		return err
	})
	f := fc.expectRaw(t, `{"id":%d,"command":"mesh/subscribe-channel","payload":{"channel":"news","sequenced":true,"after":3}}`)
	fc.send(`{"command":"mesh/subscription-message","payload":{"channel":"news","message":"a"}}`)
	fc.reply(f, `{"success":true,"history":[]}`)
	if err := waitErr(t, res); err != nil {
		t.Fatal(err)
	}
	fc.send(`{"command":"mesh/subscription-message","payload":{"channel":"news","message":"b"}}`)
	if g := describe(got.wait(t, 2)); !slices.Equal(g, []string{"a@0", "b@0"}) {
		t.Fatalf("got %q", g)
	}
	fc.drop()
	fc2 := s.accept(t)
	fc2.expectRaw(t, `{"id":%d,"command":"mesh/subscribe-channel","payload":{"channel":"news","sequenced":true}}`)
}
