package streams

import (
	"context"
	"errors"
	"fmt"
)

// Action names what a middleware intercepts: the document's actions.
// (dlqWrite and dlqReplay come with dead-letter queues, in a later part.)
type Action string

// The actions, with what the Op carries for each.
const (
	ActionPublish          Action = "publish"          // Room, Message (mutable before next); Event after next
	ActionSubscribe        Action = "subscribe"        // Room (a room or a scope:* pattern), SubscriberID
	ActionDeliver          Action = "deliver"          // Room, SubscriberID, Event: one event to one subscription's handler
	ActionReplay           Action = "replay"           // Room, Sequence (fromSequence)
	ActionCatchUp          Action = "catchUp"          // Room, SubscriberID, Sequence (fromSequence, if given): around the whole iteration
	ActionAck              Action = "ack"              // Room, SubscriberID, Sequence
	ActionSnapshot         Action = "snapshot"         // Room, Snapshot (mutable before next)
	ActionGetSnapshot      Action = "getSnapshot"      // Room; Snapshot after next (nil: none)
	ActionEphemeralPublish Action = "ephemeralPublish" // Room, Ephemeral (mutable before next)
	ActionEphemeralDeliver Action = "ephemeralDeliver" // Room, Ephemeral: one event to one ephemeral subscription
	ActionPresenceEnter    Action = "presenceEnter"    // Room, User (mutable before next)
	ActionPresenceLeave    Action = "presenceLeave"    // Room, User (UserID only)
	ActionClose            Action = "close"            // nothing: Streams.Close
)

// Op is what a middleware sees of one action (the document's ctx). Which
// fields are set depends on Action (see the constants). An Op and what it
// points to are valid until the middleware returns.
type Op struct {
	Action       Action
	Room         string
	SubscriberID string
	Message      *Message
	Event        *Event
	Ephemeral    *EphemeralEvent
	Sequence     uint64
	Snapshot     *Snapshot
	User         *PresenceUser
}

// Middleware intercepts an action: it may inspect or change op, then
// calls next to go on (the next middleware, finally the action itself) and
// returns its error, or returns an error of its own without calling next
// to block the action. Middlewares run in onion order: for [m1, m2],
// m1 → m2 → action → m2 → m1. An action a middleware blocked fails with an
// error wrapping ErrBlocked and the middleware's error; one whose
// middleware returned nil without calling next fails with ErrBlocked too.
// Middleware runs on the goroutine of the call (deliver: the
// subscription's), so it may block only as long as the action may.
type Middleware func(ctx context.Context, op *Op, next func(context.Context) error) error

// Use appends middlewares to the chain. Actions already running keep the
// chain they started with. Safe from any goroutine.
func (s *Streams) Use(mws ...Middleware) {
	s.mwMu.Lock()
	defer s.mwMu.Unlock()
	cur := s.mw.Load()
	next := make([]Middleware, 0, len(*cur)+len(mws))
	next = append(next, *cur...)
	for _, m := range mws {
		if m != nil {
			next = append(next, m)
		}
	}
	s.mw.Store(&next)
}

// Intercept runs op through the middleware chain around core, as the
// feature's own actions do. It is for protocols built on Listen, such as
// the gateway (features/streams/gateway), whose subscriptions are not
// Subscribe's: their subscribe action then passes the same middleware,
// which may block it. A middleware's refusal is an error wrapping
// ErrBlocked (a *BlockedError); core's own error comes back as it is. A
// nil core does nothing. Any goroutine; it blocks as the middleware does.
func (s *Streams) Intercept(ctx context.Context, op *Op, core func(context.Context) error) error {
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("streams: %s: %w", op.Action, err)
	}
	if core == nil {
		core = nopCore
	}
	return s.intercept(ctx, op, core)
}

// hasMiddleware reports whether any middleware is registered, so that hot
// paths skip building an Op.
func (s *Streams) hasMiddleware() bool { return len(*s.mw.Load()) > 0 }

// intercept runs op through the middleware chain around core and tells a
// middleware's refusal from core's own error.
func (s *Streams) intercept(ctx context.Context, op *Op, core func(context.Context) error) error {
	mws := *s.mw.Load()
	if len(mws) == 0 {
		return core(ctx)
	}
	var (
		reached bool
		coreErr error
	)
	wrapped := func(ctx context.Context) error {
		reached = true
		coreErr = core(ctx)
		return coreErr
	}
	err := chain(mws, ctx, op, wrapped)
	switch {
	case err == nil && !reached:
		return fmt.Errorf("%w: %s %q: a middleware returned without calling next", ErrBlocked, op.Action, op.Room)
	case err == nil:
		return nil
	case reached && coreErr != nil && errors.Is(err, coreErr):
		return err // the action's own error, maybe wrapped by a middleware
	}
	return &BlockedError{Action: op.Action, Room: op.Room, Err: err}
}

func chain(mws []Middleware, ctx context.Context, op *Op, core func(context.Context) error) error {
	if len(mws) == 0 {
		return core(ctx)
	}
	return mws[0](ctx, op, func(ctx context.Context) error { return chain(mws[1:], ctx, op, core) })
}

// BlockedError is a middleware's refusal of an action. It matches
// ErrBlocked and unwraps to the middleware's error.
type BlockedError struct {
	Action Action
	Room   string
	Err    error
}

func (e *BlockedError) Error() string {
	if e.Room == "" {
		return fmt.Sprintf("streams: %s blocked by middleware: %v", e.Action, e.Err)
	}
	return fmt.Sprintf("streams: %s %q blocked by middleware: %v", e.Action, e.Room, e.Err)
}

// Is makes errors.Is(err, ErrBlocked) true.
func (e *BlockedError) Is(target error) bool { return target == ErrBlocked }

func (e *BlockedError) Unwrap() error { return e.Err }
