package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/protocol/zps"
)

// Ephemeral events are fan-out only: never stored, without sequence,
// replay or ack. A node subscribes to a room's (or scope's) ephemeral
// topic while it has local listeners; a message is handed to them from the
// coordinator's goroutine, in the order the coordinator delivers it (a
// publisher's events in its order), at most once.

// presencePrefix starts the ephemeral event types presence uses.
const presencePrefix = "presence."

type ephHub struct {
	s      *Streams
	mu     sync.RWMutex
	rooms  map[string][]*ephListener // slices are replaced, never changed
	scopes map[string][]*ephListener
}

type ephListener struct {
	fn func(*EphemeralEvent)
}

func newEphHub(s *Streams) *ephHub {
	return &ephHub{s: s, rooms: make(map[string][]*ephListener), scopes: make(map[string][]*ephListener)}
}

func (e *ephHub) onRoom(_ string, p []byte) { e.dispatch(p, false) }

func (e *ephHub) onScope(_ string, p []byte) { e.dispatch(p, true) }

func (e *ephHub) dispatch(p []byte, scope bool) {
	ev := new(EphemeralEvent)
	if err := zps.DecodeEphemeral(p, ev); err != nil {
		e.s.m.errors.Inc()
		return
	}
	e.mu.RLock()
	var ls []*ephListener
	if scope {
		ls = e.scopes[zps.ScopeOf(ev.Room)]
	} else {
		ls = e.rooms[ev.Room]
	}
	e.mu.RUnlock()
	for _, l := range ls {
		l.fn(ev)
	}
}

// ListenEphemeral attaches fn to the ephemeral events of pattern, a room
// or scope:*, on this node, from when it returns. fn runs on a coordinator
// goroutine and must not block or call Streams; it must not modify the
// event. stop may be called more than once.
func (s *Streams) ListenEphemeral(ctx context.Context, pattern string, fn func(*EphemeralEvent)) (stop func(), err error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("streams: listen: %w", err)
	}
	scope, wildcard, err := zps.ParsePattern(pattern)
	if err != nil {
		return nil, fmt.Errorf("streams: listen: %w", err)
	}
	e := s.eph
	key, table, topic, h := pattern, e.rooms, topicEphRoomPrefix+pattern, e.onRoom
	if wildcard {
		key, table, topic, h = scope, e.scopes, topicEphScopePrefix+scope, e.onScope
	}
	if err := s.subs.retain(ctx, topic, h); err != nil {
		return nil, err
	}
	l := &ephListener{fn: fn}
	e.mu.Lock()
	table[key] = append(slices.Clip(table[key]), l)
	e.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			e.mu.Lock()
			ls := slices.DeleteFunc(slices.Clone(table[key]), func(x *ephListener) bool { return x == l })
			if len(ls) == 0 {
				delete(table, key)
			} else {
				table[key] = ls
			}
			e.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), fanoutTimeout)
			defer cancel()
			s.subs.release(ctx, topic)
		})
	}, nil
}

// EphemeralMessage is what PublishEphemeral sends.
type EphemeralMessage struct {
	Room    string
	Type    string
	Payload json.RawMessage
}

// PublishEphemeral fans an ephemeral event out to the room's ephemeral
// subscribers on every node, at most once, storing nothing. Types under
// "presence." are presence's (ErrReservedType).
func (s *Streams) PublishEphemeral(ctx context.Context, m EphemeralMessage) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("streams: publish ephemeral: %w", err)
	}
	ev := &EphemeralEvent{Room: m.Room, Type: m.Type, Payload: m.Payload}
	return s.intercept(ctx, &Op{Action: ActionEphemeralPublish, Room: m.Room, Ephemeral: ev}, func(ctx context.Context) error {
		if strings.HasPrefix(ev.Type, presencePrefix) {
			return fmt.Errorf("streams: publish ephemeral %q: type %q: %w (presence uses it)", ev.Room, ev.Type, ErrReservedType)
		}
		return s.publishEphemeral(ctx, ev)
	})
}

// publishEphemeral validates, stamps and sends ev (presence's types
// included).
func (s *Streams) publishEphemeral(ctx context.Context, ev *EphemeralEvent) error {
	if _, _, err := zps.ParseRoom(ev.Room); err != nil {
		return fmt.Errorf("streams: publish ephemeral: %w", err)
	}
	if err := zps.CheckName("event type", ev.Type); err != nil {
		return fmt.Errorf("streams: publish ephemeral: %w", err)
	}
	if err := zps.CheckPayload(ev.Payload, nil); err != nil {
		return fmt.Errorf("streams: publish ephemeral: %w", err)
	}
	if ev.ID == "" {
		ev.ID = s.newID()
	}
	ev.EmittedAt = zps.Millis(time.Now())
	p := ev.AppendJSON(nil)
	err := s.ps.PublishBatch(ctx, []coord.Message{
		{Topic: topicEphRoomPrefix + ev.Room, Payload: p},
		{Topic: topicEphScopePrefix + zps.ScopeOf(ev.Room), Payload: p},
	})
	if err != nil {
		return fmt.Errorf("streams: publish ephemeral: %w", err)
	}
	s.m.ephPublished.Inc()
	return nil
}

// EphemeralOptions configures an ephemeral subscription.
type EphemeralOptions struct {
	// Rooms are rooms and scope:* patterns.
	Rooms []string
	// EventTypes, if not empty, keeps only these types.
	EventTypes []string
	// QueueSize is how many events may wait for the handler; beyond it
	// events are dropped (counted: meshfast_streams_ephemeral_dropped_total).
	// Zero means Options.QueueSize.
	QueueSize int
	// OnError receives the handler's and the deliver middleware's errors.
	// Nil logs them.
	OnError func(error)
}

// EphemeralHandler handles one ephemeral event. Its error is reported to
// OnError; there is no retry.
type EphemeralHandler func(ctx context.Context, ev *EphemeralEvent) error

// EphemeralSubscription is a live ephemeral subscription; Close ends it.
type EphemeralSubscription struct {
	s       *Streams
	o       EphemeralOptions
	h       EphemeralHandler
	q       *queue[*EphemeralEvent]
	stops   []func()
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	once    sync.Once
	running atomic.Bool
}

// SubscribeEphemeral calls h with the ephemeral events of o.Rooms
// published from now on, one at a time, on a goroutine of the
// subscription. A room covered by one of the patterns is delivered once.
func (s *Streams) SubscribeEphemeral(ctx context.Context, o EphemeralOptions, h EphemeralHandler) (*EphemeralSubscription, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("streams: subscribe ephemeral: %w", err)
	}
	if len(o.Rooms) == 0 || h == nil || o.QueueSize < 0 {
		return nil, fmt.Errorf("streams: subscribe ephemeral: %w: no rooms, no handler or a negative queue", ErrInvalidOptions)
	}
	rooms, err := coverRooms(o.Rooms)
	if err != nil {
		return nil, fmt.Errorf("streams: subscribe ephemeral: %w", err)
	}
	if o.QueueSize == 0 {
		o.QueueSize = s.opts.QueueSize
	}
	sub := &EphemeralSubscription{s: s, o: o, h: h, q: newQueue[*EphemeralEvent](o.QueueSize), done: make(chan struct{})}
	sub.ctx, sub.cancel = context.WithCancel(context.WithoutCancel(ctx))
	push := func(ev *EphemeralEvent) {
		if !matchType(o.EventTypes, ev.Type) {
			return
		}
		if !sub.q.push(ev) {
			s.m.ephDropped.Inc()
		}
	}
	for _, r := range rooms {
		stop, err := s.ListenEphemeral(ctx, r, push)
		if err != nil {
			sub.stopAll()
			return nil, err
		}
		sub.stops = append(sub.stops, stop)
	}
	if !s.track(sub) {
		sub.stopAll()
		return nil, fmt.Errorf("streams: subscribe ephemeral: %w", ErrClosed)
	}
	go sub.run()
	return sub, nil
}

// coverRooms validates rooms and patterns and leaves out rooms a pattern
// of the list covers, and repeats.
func coverRooms(in []string) ([]string, error) {
	scopes := map[string]bool{}
	for _, r := range in {
		scope, wc, err := zps.ParsePattern(r)
		if err != nil {
			return nil, err
		}
		if wc {
			scopes[scope] = true
		}
	}
	var out []string
	for _, r := range in {
		scope, wc, _ := zps.ParsePattern(r)
		if (!wc && scopes[scope]) || slices.Contains(out, r) {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

func matchType(types []string, t string) bool {
	return len(types) == 0 || slices.Contains(types, t)
}

func (sub *EphemeralSubscription) stopAll() {
	for _, stop := range sub.stops {
		stop()
	}
}

func (sub *EphemeralSubscription) run() {
	defer close(sub.done)
	s := sub.s
	for {
		select {
		case <-sub.ctx.Done():
			return
		case <-sub.q.wake:
		}
		evs, _ := sub.q.take()
		for _, ev := range evs {
			if sub.ctx.Err() != nil {
				return
			}
			sub.running.Store(true)
			var err error
			if s.hasMiddleware() {
				err = s.intercept(sub.ctx, &Op{Action: ActionEphemeralDeliver, Room: ev.Room, Ephemeral: ev},
					func(ctx context.Context) error { return sub.h(ctx, ev) })
			} else {
				err = sub.h(sub.ctx, ev)
			}
			sub.running.Store(false)
			s.m.ephDelivered.Inc()
			if err != nil {
				s.m.errors.Inc()
				if sub.o.OnError != nil {
					sub.o.OnError(err)
				} else {
					s.opts.Logger.Warn("streams: ephemeral handler failed", "room", ev.Room, "err", err)
				}
			}
		}
	}
}

// Close ends the subscription: no handler call starts after it returns,
// and it waits for a running one unless that is the caller (a handler
// closing its own subscription). Idempotent.
func (sub *EphemeralSubscription) Close() error {
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
