package streams

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshfast/meshfast/features/streams/store"
	"github.com/meshfast/meshfast/protocol/zps"
)

// Start says where a subscription or a catch-up begins in each room. The
// zero value follows the document: after the subscriber's acknowledged
// cursor when there is a SubscriberID, else from the first event.
type Start struct {
	kind startKind
	seq  uint64
}

type startKind uint8

const (
	startCursor startKind = iota
	startAfter
	startLive
)

// After starts after seq, whatever the cursor (the document's
// fromSequence).
func After(seq uint64) Start { return Start{kind: startAfter, seq: seq} }

// Live starts with the events published after Subscribe returns, with no
// catch-up (the document's catchUp: false).
var Live = Start{kind: startLive}

// Sync selects how a subscription starts its rooms.
type Sync uint8

const (
	// SyncEvents starts from events only (Start).
	SyncEvents Sync = iota
	// SyncSnapshot starts each room from its snapshot: OnSnapshot gets it
	// (nil when the room has none), then the events after its
	// LastSequence (after 0 without one), then live ones.
	SyncSnapshot
)

// SubscribeOptions configures a durable subscription.
type SubscribeOptions struct {
	// Rooms are rooms and scope:* patterns (the global "*" is refused). A
	// pattern follows the live events of every room of its scope; having
	// no position, it has no catch-up.
	Rooms []string
	// SubscriberID names the subscriber: with the zero Start, each room
	// resumes after its acknowledged cursor (see Streams.Ack).
	SubscriberID string
	// From: see Start. Not with SyncSnapshot.
	From Start
	// EventTypes, if not empty, delivers only these types (the others
	// still advance the subscription).
	EventTypes []string
	// Sync: see SyncSnapshot.
	Sync Sync
	// OnSnapshot receives each room's snapshot with SyncSnapshot, before
	// any event of the room, on the handler's goroutine.
	OnSnapshot func(room string, snap *Snapshot)
	// BatchSize is the page of the catch-up, 1..store.MaxLimit (the
	// document's catchUp.batchSize, or limit). Zero means DefaultBatchSize.
	BatchSize int
	// MaxBatches, if positive, caps a room's catch-up at that many pages;
	// the rest of the backlog is skipped and the room goes live.
	MaxBatches int
	// QueueSize is how many live events may wait while the handler is
	// busy. Beyond it the subscription stops queueing and, once it has
	// handled the queue, reads what it missed from the store: a slow
	// handler falls behind but loses nothing. Zero means
	// Options.QueueSize.
	QueueSize int
	// OnError receives the handler's errors, the deliver middleware's
	// refusals and store failures (which are retried). Nil logs them.
	OnError func(error)
}

// Handler handles one event. An error is reported to OnError; the event
// counts as handled (retries and dead letters come later).
type Handler func(ctx context.Context, ev *Event) error

// Subscription is a durable subscription: each of its rooms' events is
// handed to the handler once, in sequence order per room, from its start,
// through catch-up from the store and then live, with nothing missed or
// repeated at the seams. Close ends it.
type Subscription struct {
	s     *Streams
	o     SubscribeOptions
	h     Handler
	q     *queue[*Event]
	stops []func()

	explicit []string          // the rooms (not patterns), in order
	attach   map[string]uint64 // room → the hub position its listener attached at
	rooms    map[string]*subRoom

	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	once    sync.Once
	running atomic.Bool
	op      Op // the deliver middleware's, reused
}

// subRoom is one room's progress in a subscription.
type subRoom struct {
	next uint64 // the next sequence to hand over
}

// Subscribe starts a durable subscription and returns once its live side
// is attached: every event published after it returns is delivered, and
// so is every event after each room's start, read from the store. Catch-up
// and delivery run on a goroutine of the subscription.
func (s *Streams) Subscribe(ctx context.Context, o SubscribeOptions, h Handler) (*Subscription, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("streams: subscribe: %w", err)
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("streams: subscribe: %w: no handler", ErrInvalidOptions)
	}
	var patterns []string
	for _, p := range o.Rooms {
		if !slices.Contains(patterns, p) {
			patterns = append(patterns, p)
		}
	}
	for _, p := range patterns {
		if err := s.intercept(ctx, &Op{Action: ActionSubscribe, Room: p, SubscriberID: o.SubscriberID}, nopCore); err != nil {
			return nil, err
		}
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.QueueSize == 0 {
		o.QueueSize = s.opts.QueueSize
	}
	sub := &Subscription{s: s, o: o, h: h, q: newQueue[*Event](o.QueueSize), attach: make(map[string]uint64),
		rooms: make(map[string]*subRoom), done: make(chan struct{})}
	sub.ctx, sub.cancel = context.WithCancel(context.WithoutCancel(ctx))
	push := func(ev *Event) { sub.q.push(ev) }
	seen := make(map[string]bool, len(o.Rooms))
	for _, p := range o.Rooms {
		if seen[p] {
			continue
		}
		seen[p] = true
		scope, wildcard, _ := zps.ParsePattern(p)
		if wildcard {
			stop, err := s.ListenScope(ctx, scope, push)
			if err != nil {
				sub.stopAll()
				return nil, err
			}
			sub.stops = append(sub.stops, stop)
			continue
		}
		pos, stop, err := s.Listen(ctx, p, push)
		if err != nil {
			sub.stopAll()
			return nil, err
		}
		sub.stops = append(sub.stops, stop)
		sub.attach[p] = pos
		sub.explicit = append(sub.explicit, p)
	}
	if !s.track(sub) {
		sub.stopAll()
		return nil, fmt.Errorf("streams: subscribe: %w", ErrClosed)
	}
	s.subscriptions.Add(1)
	go sub.run()
	return sub, nil
}

func nopCore(context.Context) error { return nil }

func (o *SubscribeOptions) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("streams: subscribe: %w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
	}
	if len(o.Rooms) == 0 {
		return bad("no rooms")
	}
	for _, r := range o.Rooms {
		if _, _, err := zps.ParsePattern(r); err != nil {
			return fmt.Errorf("streams: subscribe: %w", err)
		}
	}
	if o.SubscriberID != "" {
		if err := zps.CheckName("subscriber id", o.SubscriberID); err != nil {
			return fmt.Errorf("streams: subscribe: %w", err)
		}
	}
	if o.BatchSize < 0 || o.BatchSize > store.MaxLimit {
		return bad("batch size %d not in 1..%d", o.BatchSize, store.MaxLimit)
	}
	if o.MaxBatches < 0 || o.QueueSize < 0 {
		return bad("negative MaxBatches or QueueSize")
	}
	if o.Sync == SyncSnapshot && o.From.kind != startCursor {
		return bad("SyncSnapshot starts from the snapshot: no From")
	}
	if o.Sync > SyncSnapshot {
		return bad("unknown Sync %d", o.Sync)
	}
	return nil
}

func (sub *Subscription) stopAll() {
	for _, stop := range sub.stops {
		stop()
	}
}

// run catches each room up, in the order given, then hands over live
// events as they come.
func (sub *Subscription) run() {
	defer close(sub.done)
	defer sub.s.subscriptions.Add(-1)
	for _, room := range sub.explicit {
		if !sub.start(room) {
			return
		}
	}
	for {
		select {
		case <-sub.ctx.Done():
			return
		case <-sub.q.wake:
		}
		evs, over := sub.q.take()
		if over {
			sub.s.m.queueOverflows.Inc()
		}
		for _, ev := range evs {
			if !sub.live(ev) {
				return
			}
		}
		if over {
			// Events after the last queued ones were refused: read every
			// room up to its head. What arrives meanwhile is queued and
			// dropped below next.
			for room, r := range sub.rooms {
				if !sub.read(room, r, 0, 0) {
					return
				}
			}
		}
	}
}

// start brings room from its start up to the position its listener
// attached at, P: everything after P comes live.
func (sub *Subscription) start(room string) bool {
	s, o := sub.s, &sub.o
	p := sub.attach[room]
	var from uint64
	switch {
	case o.Sync == SyncSnapshot:
		var snap *Snapshot
		if !sub.retry(func() (err error) { snap, err = s.readSnapshot(sub.ctx, room); return err }) {
			return false
		}
		if snap != nil {
			from = snap.LastSequence
		}
		if o.OnSnapshot != nil {
			o.OnSnapshot(room, snap)
		}
	case o.From.kind == startAfter:
		from = o.From.seq
	case o.From.kind == startLive:
		from = p
	case o.SubscriberID != "":
		if !sub.retry(func() (err error) { from, err = s.st.Cursor(sub.ctx, room, o.SubscriberID); return err }) {
			return false
		}
	}
	r := &subRoom{next: from + 1}
	sub.rooms[room] = r
	if from >= p {
		return true
	}
	return sub.read(room, r, p, o.MaxBatches)
}

// live hands over one live event, reading from the store what the queue
// dropped before it.
func (sub *Subscription) live(ev *Event) bool {
	r := sub.rooms[ev.Room]
	if r == nil { // a room met through a scope:* pattern: it starts here
		r = &subRoom{next: ev.Sequence}
		sub.rooms[ev.Room] = r
	}
	if ev.Sequence < r.next {
		return true
	}
	if ev.Sequence > r.next && !sub.read(ev.Room, r, ev.Sequence-1, 0) {
		return false
	}
	if ev.Sequence < r.next { // the read got it
		return true
	}
	r.next = ev.Sequence + 1
	return sub.deliver(ev)
}

// read delivers room's events from r.next up to to (0: the head), page by
// page, at most maxBatches pages (0: no bound; the rest is then skipped
// up to to). Store failures are reported and retried.
func (sub *Subscription) read(room string, r *subRoom, to uint64, maxBatches int) bool {
	s := sub.s
	req := store.ReadRequest{Room: room, After: r.next - 1, To: to, Limit: sub.o.BatchSize, Types: sub.o.EventTypes}
	for batches := 0; ; batches++ {
		if maxBatches > 0 && batches == maxBatches {
			r.next = max(r.next, to+1)
			return true
		}
		var p store.Page
		ok := sub.retry(func() (err error) {
			start := time.Now()
			p, err = s.st.Read(sub.ctx, req)
			s.m.replayRead(start)
			return err
		})
		if !ok {
			return false
		}
		s.m.replayed.Add(uint64(len(p.Events)))
		for i := range p.Events {
			ev := &p.Events[i]
			if ev.Sequence < r.next {
				continue
			}
			r.next = ev.Sequence + 1
			if !sub.deliver(ev) {
				return false
			}
		}
		// Sequences up to Last that the page did not hold are filtered
		// out or gone (retention).
		r.next = max(r.next, p.Last+1)
		if p.Done(&req) {
			return true
		}
		req.After = p.Last
	}
}

// retry runs f until it succeeds or the subscription ends, reporting
// each failure and backing off.
func (sub *Subscription) retry(f func() error) bool {
	delay := sub.s.opts.RetryDelay
	for {
		err := f()
		if err == nil {
			return true
		}
		if sub.ctx.Err() != nil {
			return false
		}
		sub.report(fmt.Errorf("streams: subscription of %v: %w (retrying in %v)", sub.o.Rooms, err, delay))
		select {
		case <-sub.ctx.Done():
			return false
		case <-time.After(delay):
		}
		delay = min(2*delay, sub.s.opts.MaxRetryDelay)
	}
}

// deliver runs the handler on ev, through the deliver middleware.
func (sub *Subscription) deliver(ev *Event) bool {
	if sub.ctx.Err() != nil {
		return false
	}
	if !matchType(sub.o.EventTypes, ev.Type) {
		return true
	}
	s := sub.s
	sub.running.Store(true)
	var err error
	if s.hasMiddleware() {
		sub.op = Op{Action: ActionDeliver, Room: ev.Room, SubscriberID: sub.o.SubscriberID, Event: ev}
		err = s.intercept(sub.ctx, &sub.op, func(ctx context.Context) error { return sub.h(ctx, ev) })
		sub.op = Op{}
	} else {
		err = sub.h(sub.ctx, ev)
	}
	sub.running.Store(false)
	s.m.delivered.Inc()
	if err != nil && !errors.Is(err, context.Canceled) {
		sub.report(fmt.Errorf("streams: handling %s #%d: %w", ev.Room, ev.Sequence, err))
	}
	return true
}

func (sub *Subscription) report(err error) {
	sub.s.m.errors.Inc()
	if sub.o.OnError != nil {
		sub.o.OnError(err)
		return
	}
	sub.s.opts.Logger.Warn("streams: subscription error", "err", err)
}

// Close ends the subscription (the document's unsubscribe): no handler
// call starts once it returned, and it waits for a running one unless one
// is running as it is called (a handler closing its own subscription:
// that call is then the last). Idempotent.
func (sub *Subscription) Close() error {
	sub.once.Do(func() {
		sub.stopAll()
		sub.q.close()
		sub.cancel()
		sub.s.untrack(sub)
	})
	if !sub.running.Load() {
		<-sub.done
	}
	return nil
}

// Done is closed once the subscription's goroutine has ended.
func (sub *Subscription) Done() <-chan struct{} { return sub.done }
