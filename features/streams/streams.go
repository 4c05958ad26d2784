package streams

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/coord/memory"
	"github.com/meshfast/meshfast/features/streams/store"
	memstore "github.com/meshfast/meshfast/features/streams/store/memory"
	"github.com/meshfast/meshfast/protocol/zps"
)

// The wire types, under the feature's names.
type (
	Event          = zps.Event
	EphemeralEvent = zps.EphemeralEvent
	PresenceUser   = zps.PresenceUser
	Snapshot       = zps.Snapshot
)

// fanoutTimeout bounds the live publish of events already stored: it
// outlives the publisher's context, since the event is durable whatever
// the publisher does next.
const fanoutTimeout = 5 * time.Second

// Streams is one node's durable event streams. Create it with New; every
// method is safe from any goroutine.
type Streams struct {
	opts     Options
	st       store.Store
	ownStore bool
	ps       coord.PubSub
	ownPS    *memory.Memory

	mwMu sync.Mutex // serializes Use
	mw   atomic.Pointer[[]Middleware]

	m    *metrics
	subs *nodeSubs
	hub  *hub
	eph  *ephHub
	pres *presence

	idPrefix string
	idSeq    atomic.Uint64

	subscriptions atomic.Int64

	// open are the subscriptions Close must close; closed is set under it.
	openMu sync.Mutex
	open   map[closer]struct{}
	closed atomic.Bool

	removeReconnect func()
}

type closer interface{ Close() error }

// New starts a node's streams: the hub goroutines, and the presence
// heartbeat. Close releases them.
func New(o Options) (*Streams, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	s := &Streams{opts: o, st: o.Store, ps: o.PubSub, open: make(map[closer]struct{})}
	if s.st == nil {
		s.st, s.ownStore = memstore.New(memstore.Options{}), true
	}
	if s.ps == nil {
		s.ownPS = memory.New(memory.Options{})
		s.ps = s.ownPS
	}
	mws := append([]Middleware(nil), o.Middleware...)
	s.mw.Store(&mws)
	s.idPrefix = "evt_" + rand.Text()[:16] + "_"
	s.subs = newNodeSubs(s.ps, o.Logger.Warn)
	s.hub = newHub(s)
	s.m = newMetrics(o.Metrics, s)
	s.eph = newEphHub(s)
	s.pres = newPresence(s)
	if r, ok := s.ps.(coord.Recovery); ok {
		// Pub/sub messages may have been lost while the link was down.
		s.removeReconnect = r.OnReconnect(s.hub.checkAll)
	}
	s.hub.start()
	s.pres.start()
	return s, nil
}

// Store returns the store the node keeps events in.
func (s *Streams) Store() store.Store { return s.st }

func (s *Streams) newID() string {
	return s.idPrefix + strconv.FormatUint(s.idSeq.Add(1), 36)
}

func (s *Streams) check(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// track registers c to be closed by Close; false if Streams is closed.
func (s *Streams) track(c closer) bool {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	if s.closed.Load() {
		return false
	}
	s.open[c] = struct{}{}
	return true
}

func (s *Streams) untrack(c closer) {
	s.openMu.Lock()
	delete(s.open, c)
	s.openMu.Unlock()
}

// Close leaves the presence this node entered, closes every subscription,
// stops the hub and releases what Streams owns (a default store and
// coordinator). Idempotent; later calls fail with ErrClosed.
func (s *Streams) Close() error {
	s.openMu.Lock()
	if s.closed.Load() {
		s.openMu.Unlock()
		return nil
	}
	s.openMu.Unlock()
	return s.intercept(context.Background(), &Op{Action: ActionClose}, func(ctx context.Context) error {
		s.pres.leaveAll(ctx)
		s.openMu.Lock()
		if s.closed.Swap(true) {
			s.openMu.Unlock()
			return nil
		}
		open := s.open
		s.open = nil
		s.openMu.Unlock()
		for c := range open {
			_ = c.Close()
		}
		if s.removeReconnect != nil {
			s.removeReconnect()
		}
		s.pres.stop()
		s.hub.stop()
		s.subs.closeAll(ctx)
		var err error
		if s.ownStore {
			err = s.st.Close()
		}
		if s.ownPS != nil {
			err = errors.Join(err, s.ownPS.Close())
		}
		return err
	})
}

// Message is what a publisher gives: the envelope without what the store
// assigns.
type Message struct {
	// ID, if set, is the event's idempotency key: publishing the same id
	// to the same room again, while the first event is retained, returns
	// that event and stores nothing. Empty means a generated, unique id.
	ID        string
	Room      string
	Type      string
	Payload   json.RawMessage // any JSON value; nil is null
	Metadata  json.RawMessage // a JSON object, or nil
	Encrypted bool
	// TTL is how long the event stays in replay (the document's ttlMs).
	// Zero means Options.TTL.
	TTL time.Duration
}

func (m *Message) check() error {
	if _, _, err := zps.ParseRoom(m.Room); err != nil {
		return err
	}
	if err := zps.CheckName("event type", m.Type); err != nil {
		return err
	}
	if m.ID != "" {
		if err := zps.CheckName("event id", m.ID); err != nil {
			return err
		}
	}
	if m.TTL < 0 || m.TTL > 0 && m.TTL < time.Millisecond {
		return fmt.Errorf("%w: ttl %v", ErrInvalidOptions, m.TTL)
	}
	return zps.CheckPayload(m.Payload, m.Metadata)
}

// Published is the result of a publish: the stored event, which for a
// duplicate is the one stored first, unchanged.
type Published struct {
	*Event
	// Duplicate reports that the id was already stored and nothing new
	// was stored.
	Duplicate bool
}

// Publish stores an event at its room's next sequence and fans it out to
// the room's subscribers on every node. Once it returns without error the
// event is stored: a failure of the live fan-out is only counted
// (meshfast_streams_fanout_errors_total), since subscribers then read the
// event from the store (gap fill, tail check).
func (s *Streams) Publish(ctx context.Context, m Message) (Published, error) {
	out, err := s.PublishBatch(ctx, []Message{m})
	if err != nil {
		return Published{}, err
	}
	return out[0], nil
}

// PublishBatch publishes several events in one store round trip and one
// pub/sub round trip. Events of one room get ascending sequences in the
// order given. Each message passes the publish middleware; one refused
// fails the batch before anything is stored. On a store error, each event
// may or may not have been stored (Message.ID makes a retry safe).
func (s *Streams) PublishBatch(ctx context.Context, ms []Message) ([]Published, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("streams: publish: %w", err)
	}
	if len(ms) == 0 {
		return nil, nil
	}
	ms = append([]Message(nil), ms...) // middleware may change them
	out := make([]Published, len(ms))
	core := func(ctx context.Context) error { return s.publishCore(ctx, ms, out) }
	if !s.hasMiddleware() {
		if err := core(ctx); err != nil {
			return nil, err
		}
		return out, nil
	}
	ops := make([]Op, len(ms))
	for i := range ops {
		ops[i] = Op{Action: ActionPublish, Room: ms[i].Room, Message: &ms[i]}
	}
	// Nested: message 0's chain around message 1's … around the append,
	// so that each middleware sees each message, in onion order, and the
	// after-parts see the stored events.
	var nest func(ctx context.Context, i int) error
	nest = func(ctx context.Context, i int) error {
		if i == len(ms) {
			if err := core(ctx); err != nil {
				return err
			}
			for j := range ops {
				ops[j].Event = out[j].Event
			}
			return nil
		}
		return s.intercept(ctx, &ops[i], func(ctx context.Context) error { return nest(ctx, i+1) })
	}
	if err := nest(ctx, 0); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Streams) publishCore(ctx context.Context, ms []Message, out []Published) error {
	reqs := make([]store.AppendRequest, len(ms))
	for i := range ms {
		m := &ms[i]
		if err := m.check(); err != nil {
			return fmt.Errorf("streams: publish: %w", err)
		}
		r := &reqs[i]
		r.Event = Event{ID: m.ID, Type: m.Type, Room: m.Room, Payload: m.Payload, Metadata: m.Metadata, Encrypted: m.Encrypted}
		r.Dedupe = m.ID != ""
		if !r.Dedupe {
			r.Event.ID = s.newID()
		}
		r.TTL = m.TTL
		if r.TTL == 0 {
			r.TTL = s.opts.TTL
		}
		r.MaxLen = s.opts.MaxLen
	}
	res, err := s.st.Append(ctx, reqs)
	if err != nil {
		return fmt.Errorf("streams: publish: %w", err)
	}
	msgs := make([]coord.Message, 0, 2*len(res))
	for i := range res {
		ev := &res[i].Event
		out[i] = Published{Event: ev, Duplicate: res[i].Duplicate}
		if res[i].Duplicate {
			s.m.duplicates.Inc()
		} else {
			s.m.published.Inc()
		}
		// A duplicate is fanned out again: harmless (receivers drop what
		// they delivered) and it repairs a first publish whose fan-out was
		// lost.
		p := ev.AppendJSON(nil)
		msgs = append(msgs,
			coord.Message{Topic: topicRoomPrefix + ev.Room, Payload: p},
			coord.Message{Topic: topicScopePrefix + zps.ScopeOf(ev.Room), Payload: p})
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fanoutTimeout)
	defer cancel()
	if err := s.ps.PublishBatch(fctx, msgs); err != nil {
		s.m.fanoutErrors.Add(uint64(len(res)))
		s.opts.Logger.Warn("streams: live fan-out failed; subscribers will read the events from the store", "events", len(res), "err", err)
	}
	return nil
}

// ReplayOptions selects one page of a room's events.
type ReplayOptions struct {
	Room string
	// FromSequence: only events after it.
	FromSequence uint64
	// ToSequence, if not 0: only events up to it.
	ToSequence uint64
	// EventTypes, if not empty: only events of these types.
	EventTypes []string
	// Limit is the most events returned, 1..store.MaxLimit. Zero means
	// DefaultReplayLimit.
	Limit int
}

// ReplayResult is one page of events.
type ReplayResult struct {
	Events []Event
	// Next is where the next page starts (its FromSequence): the last
	// sequence this page examined.
	Next uint64
	// Head is the room's last sequence when it was read.
	Head uint64
	// More reports that events after Next (up to ToSequence) may remain.
	More bool
}

// Replay returns one page of room's events with sequence > FromSequence:
// up to Limit of them, in order. With EventTypes it looks through at most
// Options.ReplayScan sequences for them; More then says whether to go on.
// Use CatchUp to drain a backlog.
func (s *Streams) Replay(ctx context.Context, o ReplayOptions) (ReplayResult, error) {
	if err := s.check(ctx); err != nil {
		return ReplayResult{}, fmt.Errorf("streams: replay: %w", err)
	}
	if o.Limit == 0 {
		o.Limit = DefaultReplayLimit
	}
	if _, _, err := zps.ParseRoom(o.Room); err != nil {
		return ReplayResult{}, fmt.Errorf("streams: replay: %w", err)
	}
	if o.Limit < 0 || o.Limit > store.MaxLimit || o.ToSequence != 0 && o.ToSequence < o.FromSequence {
		return ReplayResult{}, fmt.Errorf("streams: replay %q: %w: limit %d, from %d to %d", o.Room, ErrInvalidOptions, o.Limit, o.FromSequence, o.ToSequence)
	}
	var res ReplayResult
	err := s.intercept(ctx, &Op{Action: ActionReplay, Room: o.Room, Sequence: o.FromSequence}, func(ctx context.Context) error {
		var err error
		res, err = s.replay(ctx, &o)
		return err
	})
	return res, err
}

func (s *Streams) replay(ctx context.Context, o *ReplayOptions) (ReplayResult, error) {
	req := store.ReadRequest{Room: o.Room, After: o.FromSequence, To: o.ToSequence, Limit: o.Limit, Types: o.EventTypes}
	res := ReplayResult{Next: o.FromSequence}
	for scanned := 0; ; {
		start := time.Now()
		p, err := s.st.Read(ctx, req)
		s.m.replayRead(start)
		if err != nil {
			return ReplayResult{}, fmt.Errorf("streams: replay %q: %w", o.Room, err)
		}
		res.Head = p.Head
		room := o.Limit - len(res.Events)
		if len(p.Events) > room {
			// More matched than fit: stop after the last one taken.
			p.Events = p.Events[:room]
			p.Last = p.Events[room-1].Sequence
		}
		if res.Events == nil {
			res.Events = p.Events
		} else {
			res.Events = append(res.Events, p.Events...)
		}
		res.Next = max(res.Next, p.Last)
		scanned += int(p.Last - req.After)
		req.After = p.Last
		done := p.Done(&req)
		if done || len(res.Events) == o.Limit || scanned >= s.opts.ReplayScan {
			res.More = !done
			s.m.replayed.Add(uint64(len(res.Events)))
			return res, nil
		}
	}
}

// Ack records that subscriberID processed room up to seq: its cursor
// moves there, never back. seq beyond the room's head fails with
// ErrAheadOfHead.
func (s *Streams) Ack(ctx context.Context, room string, seq uint64, subscriberID string) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("streams: ack: %w", err)
	}
	if _, _, err := zps.ParseRoom(room); err != nil {
		return fmt.Errorf("streams: ack: %w", err)
	}
	if err := zps.CheckName("subscriber id", subscriberID); err != nil {
		return fmt.Errorf("streams: ack: %w", err)
	}
	return s.intercept(ctx, &Op{Action: ActionAck, Room: room, SubscriberID: subscriberID, Sequence: seq}, func(ctx context.Context) error {
		if _, err := s.st.Ack(ctx, room, subscriberID, seq); err != nil {
			return fmt.Errorf("streams: ack: %w", err)
		}
		s.m.acked.Inc()
		return nil
	})
}

// Cursor returns the last sequence subscriberID acknowledged in room (0
// if none).
func (s *Streams) Cursor(ctx context.Context, room, subscriberID string) (uint64, error) {
	if err := s.check(ctx); err != nil {
		return 0, fmt.Errorf("streams: cursor: %w", err)
	}
	if _, _, err := zps.ParseRoom(room); err != nil {
		return 0, fmt.Errorf("streams: cursor: %w", err)
	}
	if err := zps.CheckName("subscriber id", subscriberID); err != nil {
		return 0, fmt.Errorf("streams: cursor: %w", err)
	}
	c, err := s.st.Cursor(ctx, room, subscriberID)
	if err != nil {
		return 0, fmt.Errorf("streams: cursor: %w", err)
	}
	return c, nil
}

// SetSnapshot stores room's snapshot (the document's snapshot(room,
// {lastSequence, state})): a subscriber syncing from it applies State,
// then the events after LastSequence. It fails with ErrAheadOfHead beyond
// the room's head and ErrStaleSnapshot when a newer one is stored.
func (s *Streams) SetSnapshot(ctx context.Context, room string, snap Snapshot) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("streams: snapshot: %w", err)
	}
	if _, _, err := zps.ParseRoom(room); err != nil {
		return fmt.Errorf("streams: snapshot: %w", err)
	}
	return s.intercept(ctx, &Op{Action: ActionSnapshot, Room: room, Snapshot: &snap}, func(ctx context.Context) error {
		state := snap.State
		if state == nil {
			state = json.RawMessage("null")
		}
		if err := zps.CheckPayload(state, nil); err != nil {
			return fmt.Errorf("streams: snapshot of %q: state: %w", room, err)
		}
		if err := s.st.SetSnapshot(ctx, room, Snapshot{LastSequence: snap.LastSequence, State: state}); err != nil {
			return fmt.Errorf("streams: snapshot: %w", err)
		}
		return nil
	})
}

// Snapshot returns room's snapshot, nil if it has none (the document's
// getSnapshot).
func (s *Streams) Snapshot(ctx context.Context, room string) (*Snapshot, error) {
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("streams: get snapshot: %w", err)
	}
	if _, _, err := zps.ParseRoom(room); err != nil {
		return nil, fmt.Errorf("streams: get snapshot: %w", err)
	}
	op := &Op{Action: ActionGetSnapshot, Room: room}
	err := s.intercept(ctx, op, func(ctx context.Context) error {
		var err error
		op.Snapshot, err = s.readSnapshot(ctx, room)
		return err
	})
	if err != nil {
		return nil, err
	}
	return op.Snapshot, nil
}

func (s *Streams) readSnapshot(ctx context.Context, room string) (*Snapshot, error) {
	snap, ok, err := s.st.Snapshot(ctx, room)
	if err != nil {
		return nil, fmt.Errorf("streams: get snapshot: %w", err)
	}
	s.m.snapshotUsage.Inc()
	if !ok {
		return nil, nil
	}
	return &snap, nil
}

// Prune removes room's expired events and, with Options.MaxLen, all but
// the newest MaxLen, and returns how many it removed (the document's
// retention cleanup; appends prune their room a little as they go, and a
// Redis store lets an idle room's events expire by themselves).
func (s *Streams) Prune(ctx context.Context, room string) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, fmt.Errorf("streams: prune: %w", err)
	}
	if _, _, err := zps.ParseRoom(room); err != nil {
		return 0, fmt.Errorf("streams: prune: %w", err)
	}
	n, err := s.st.Prune(ctx, room, s.opts.MaxLen)
	if err != nil {
		return n, fmt.Errorf("streams: prune: %w", err)
	}
	return n, nil
}

// Health is the document's health(): whether the node can serve.
type Health struct {
	Status   string        `json:"status"` // "healthy" or "unhealthy"
	Provider string        `json:"provider"`
	Error    string        `json:"error,omitempty"`
	Details  HealthDetails `json:"details"`
}

// HealthDetails are the node's live figures.
type HealthDetails struct {
	ListenerReady   bool `json:"listenerReady"` // pub/sub is up
	ActiveRooms     int  `json:"activeRooms"`
	ActiveListeners int  `json:"activeListeners"`
	Subscriptions   int  `json:"subscriptions"`
}

// Health checks the store and, when the coordinator reports its own
// health (coord.Observed), pub/sub. It may wait for both.
func (s *Streams) Health(ctx context.Context) Health {
	h := Health{Status: "healthy", Provider: s.st.Name(), Details: HealthDetails{
		ListenerReady:   true,
		ActiveRooms:     int(s.hub.activeRooms.Load()),
		ActiveListeners: int(s.hub.activeListeners.Load()),
		Subscriptions:   int(s.subscriptions.Load()),
	}}
	var errs []error
	if s.closed.Load() {
		errs = append(errs, ErrClosed)
	}
	if err := s.st.Health(ctx); err != nil {
		errs = append(errs, err)
	}
	if o, ok := s.ps.(coord.Observed); ok {
		if err := o.Health(ctx); err != nil {
			h.Details.ListenerReady = false
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		h.Status, h.Error = "unhealthy", err.Error()
	}
	return h
}
