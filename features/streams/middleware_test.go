package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/meshfast/meshfast/protocol/jsonx"
)

// recorder is a middleware that logs "<name> before <action>" and
// "<name> after <action>".
type recorder struct {
	mu  sync.Mutex
	log []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.log = append(r.log, s)
	r.mu.Unlock()
}

func (r *recorder) mw(name string) Middleware {
	return func(ctx context.Context, op *Op, next func(context.Context) error) error {
		r.add(name + " before " + string(op.Action))
		err := next(ctx)
		r.add(name + " after " + string(op.Action))
		return err
	}
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.log
	r.log = nil
	return out
}

// TestMiddlewareOnionOrder: every action the document lists runs through
// the middlewares, m1 → m2 → action → m2 → m1, those given at
// construction first, those added by Use after.
func TestMiddlewareOnionOrder(t *testing.T) {
	rec := &recorder{}
	s := newNode(t, Options{Middleware: []Middleware{rec.mw("m1")}, PresenceHeartbeat: 1 << 40, PresenceTTL: 1 << 41})
	s.Use(rec.mw("m2"))
	onion := func(action Action) []string {
		a := string(action)
		return []string{"m1 before " + a, "m2 before " + a, "m2 after " + a, "m1 after " + a}
	}
	check := func(action Action, run func()) {
		t.Helper()
		run()
		got := rec.take()
		if want := onion(action); !slices.Equal(got, want) {
			t.Fatalf("%s: got %q, want %q", action, got, want)
		}
	}
	ctx := bg(t)
	check(ActionPublish, func() {
		if _, err := s.Publish(ctx, msg("chat:1", "t", 1)); err != nil {
			t.Fatal(err)
		}
	})
	check(ActionReplay, func() { _, _ = s.Replay(ctx, ReplayOptions{Room: "chat:1"}) })
	check(ActionCatchUp, func() {
		for range s.CatchUp(ctx, CatchUpOptions{Room: "chat:1"}) {
		}
	})
	check(ActionAck, func() { _ = s.Ack(ctx, "chat:1", 1, "w") })
	check(ActionSnapshot, func() { _ = s.SetSnapshot(ctx, "chat:1", Snapshot{LastSequence: 1}) })
	check(ActionGetSnapshot, func() { _, _ = s.Snapshot(ctx, "chat:1") })
	check(ActionPresenceEnter, func() { _ = s.Presence("chat:1").Enter(ctx, PresenceUser{UserID: "u"}) })
	check(ActionPresenceLeave, func() { _ = s.Presence("chat:1").Leave(ctx, "u") })
	check(ActionEphemeralPublish, func() { _ = s.PublishEphemeral(ctx, EphemeralMessage{Room: "chat:1", Type: "typing"}) })

	// subscribe, then deliver (on the subscription's goroutine, around
	// the handler).
	delivered := make(chan struct{}, 1)
	sub, err := s.Subscribe(ctx, SubscribeOptions{Rooms: []string{"chat:1"}}, func(context.Context, *Event) error {
		rec.add("handler")
		delivered <- struct{}{}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	<-delivered
	sub.Close()
	got := rec.take()
	want := append(onion(ActionSubscribe), "m1 before deliver", "m2 before deliver", "handler", "m2 after deliver", "m1 after deliver")
	if !slices.Equal(got, want) {
		t.Fatalf("subscribe and deliver: got %q\nwant %q", got, want)
	}
	esub, err := s.SubscribeEphemeral(ctx, EphemeralOptions{Rooms: []string{"chat:1"}}, func(context.Context, *EphemeralEvent) error {
		rec.add("handler")
		delivered <- struct{}{}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rec.take()
	if err := s.PublishEphemeral(ctx, EphemeralMessage{Room: "chat:1", Type: "typing"}); err != nil {
		t.Fatal(err)
	}
	<-delivered
	esub.Close()
	got = rec.take()
	want = append(onion(ActionEphemeralPublish), "m1 before ephemeralDeliver", "m2 before ephemeralDeliver", "handler",
		"m2 after ephemeralDeliver", "m1 after ephemeralDeliver")
	if !slices.Equal(got, want) {
		t.Fatalf("ephemeral deliver: got %q\nwant %q", got, want)
	}
	check(ActionClose, func() { _ = s.Close() })
}

// TestMiddlewareBlocksAndChanges: a middleware error blocks the action
// with a clear error and nothing happens; a middleware may change what is
// published; an action's own error is not reported as blocked.
func TestMiddlewareBlocksAndChanges(t *testing.T) {
	errTooLarge := errors.New("payload too large")
	errTenant := errors.New("missing tenantId")
	s := newNode(t, Options{})
	// The document's examples: a size limit, a tenant check and a trace id.
	s.Use(
		func(ctx context.Context, op *Op, next func(context.Context) error) error {
			if op.Action == ActionPublish && len(op.Message.Payload) > 64 {
				return errTooLarge
			}
			return next(ctx)
		},
		func(ctx context.Context, op *Op, next func(context.Context) error) error {
			if op.Action == ActionPublish {
				if !strings.Contains(string(op.Message.Metadata), `"tenantId"`) {
					return errTenant
				}
				md, err := jsonx.MergeObjects(op.Message.Metadata, []byte(`{"traceId":"trace-1"}`))
				if err != nil {
					return err
				}
				op.Message.Metadata = md
			}
			return next(ctx)
		},
	)
	ctx := bg(t)
	big := Message{Room: "chat:1", Type: "t", Payload: json.RawMessage(`"` + strings.Repeat("x", 100) + `"`), Metadata: json.RawMessage(`{"tenantId":"a"}`)}
	_, err := s.Publish(ctx, big)
	var be *BlockedError
	if !errors.Is(err, ErrBlocked) || !errors.Is(err, errTooLarge) || !errors.As(err, &be) || be.Action != ActionPublish || be.Room != "chat:1" {
		t.Fatalf("blocked publish: %v", err)
	}
	if got := err.Error(); got != `streams: publish "chat:1" blocked by middleware: payload too large` {
		t.Fatalf("error text %q", got)
	}
	if _, err := s.Publish(ctx, msg("chat:1", "t", 1)); !errors.Is(err, errTenant) {
		t.Fatalf("no tenant: %v", err)
	}
	// One refused message refuses its whole batch, before anything is stored.
	ok := Message{Room: "chat:1", Type: "t", Metadata: json.RawMessage(`{"tenantId":"a"}`)}
	if _, err := s.PublishBatch(ctx, []Message{ok, big, ok}); !errors.Is(err, errTooLarge) {
		t.Fatalf("batch: %v", err)
	}
	if r, _ := s.Replay(ctx, ReplayOptions{Room: "chat:1"}); r.Head != 0 {
		t.Fatalf("blocked publishes stored events: head %d", r.Head)
	}
	p, err := s.Publish(ctx, ok)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Metadata) != `{"tenantId":"a","traceId":"trace-1"}` {
		t.Fatalf("stored metadata %s", p.Metadata)
	}
	// The action's own error passes through as itself.
	if err := s.Ack(ctx, "chat:1", 99, "w"); !errors.Is(err, ErrAheadOfHead) || errors.Is(err, ErrBlocked) {
		t.Fatalf("ack beyond head through middleware: %v", err)
	}

	// A middleware that returns without calling next blocks too.
	s2 := newNode(t, Options{Middleware: []Middleware{func(ctx context.Context, op *Op, next func(context.Context) error) error {
		if op.Action == ActionAck || op.Action == ActionSubscribe {
			return nil
		}
		return next(ctx)
	}}})
	if err := s2.Ack(ctx, "chat:1", 0, "w"); !errors.Is(err, ErrBlocked) {
		t.Fatalf("skipped next: %v", err)
	}
	if _, err := s2.Subscribe(ctx, SubscribeOptions{Rooms: []string{"chat:1"}}, newCollector().handle); !errors.Is(err, ErrBlocked) {
		t.Fatalf("subscribe: %v", err)
	}

	// Blocking delivery: the handler is not called for refused events,
	// OnError hears of them, the subscription goes on.
	errSecret := errors.New("secret event")
	s3 := newNode(t, Options{Middleware: []Middleware{func(ctx context.Context, op *Op, next func(context.Context) error) error {
		if op.Action == ActionDeliver && op.Event.Type == "secret" {
			return errSecret
		}
		return next(ctx)
	}}})
	c := newCollector()
	var mu sync.Mutex
	var errs []error
	sub, err := s3.Subscribe(ctx, SubscribeOptions{Rooms: []string{"chat:1"}, OnError: func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }}, c.handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for _, typ := range []string{"a", "secret", "b"} {
		if _, err := s3.Publish(ctx, msg("chat:1", typ, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprint(c.waitFor(t, "chat:1", 2)); got != "[1 3]" {
		t.Fatalf("delivered %s", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 1 || !errors.Is(errs[0], errSecret) || !errors.Is(errs[0], ErrBlocked) {
		t.Fatalf("OnError got %v", errs)
	}
}

// TestSubscribeMiddlewareSeesEachPattern: authorization runs against each
// room and the wildcard string itself (the document's rule).
func TestSubscribeMiddlewareSeesEachPattern(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	s := newNode(t, Options{Middleware: []Middleware{func(ctx context.Context, op *Op, next func(context.Context) error) error {
		if op.Action == ActionSubscribe {
			mu.Lock()
			seen = append(seen, op.Room+"/"+op.SubscriberID)
			mu.Unlock()
			if op.Room == "admin:*" {
				return errors.New("forbidden scope")
			}
		}
		return next(ctx)
	}}})
	if _, err := s.Subscribe(bg(t), SubscribeOptions{Rooms: []string{"chat:*", "admin:*"}, SubscriberID: "d1"}, newCollector().handle); !errors.Is(err, ErrBlocked) {
		t.Fatalf("admin:* allowed: %v", err)
	}
	subscribe(t, s, SubscribeOptions{Rooms: []string{"chat:*", "chat:1"}, SubscriberID: "d1"}, newCollector().handle)
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(seen) != "[chat:*/d1 admin:*/d1 chat:*/d1 chat:1/d1]" {
		t.Fatalf("subscribe middleware saw %v", seen)
	}
}

// Intercept runs an action made outside the feature (the gateway's
// subscribe) through the chain: a refusal wraps ErrBlocked, the core's own
// error comes back unwrapped, and a closed Streams refuses.
func TestIntercept(t *testing.T) {
	rec := &recorder{}
	s := newNode(t, Options{Middleware: []Middleware{rec.mw("m1"), func(ctx context.Context, op *Op, next func(context.Context) error) error {
		if op.Room == "admin:1" {
			return errors.New("no")
		}
		return next(ctx)
	}}})
	ran := false
	if err := s.Intercept(bg(t), &Op{Action: ActionSubscribe, Room: "chat:1"}, func(context.Context) error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("allowed: %v, core ran %v", err, ran)
	}
	if got := rec.take(); fmt.Sprint(got) != "[m1 before subscribe m1 after subscribe]" {
		t.Fatalf("chain %v", got)
	}
	if err := s.Intercept(bg(t), &Op{Action: ActionSubscribe, Room: "admin:1"}, nil); !errors.Is(err, ErrBlocked) {
		t.Fatalf("refused: %v", err)
	}
	mine := errors.New("core failed")
	if err := s.Intercept(bg(t), &Op{Action: ActionSubscribe, Room: "chat:1"}, func(context.Context) error { return mine }); err != mine {
		t.Fatalf("core's error: %v", err)
	}
	_ = s.Close()
	if err := s.Intercept(bg(t), &Op{Action: ActionSubscribe, Room: "chat:1"}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed: %v", err)
	}
}
