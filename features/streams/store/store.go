package store

import (
	"context"
	"fmt"
	"time"

	"github.com/meshfast/meshfast/protocol/zps"
)

// MaxLimit is the most sequences one Read may examine (the document's cap
// on a catch-up batch).
const MaxLimit = 10000

// Store keeps a node's durable events. See the package documentation for
// what every method must guarantee, whatever the backend.
type Store interface {
	// Name is the backend's name ("memory", "redis"), for health and
	// metrics.
	Name() string

	// Append stores each request's event at the next sequence of its room,
	// or finds its duplicate, and returns one result per request, in
	// order. Requests of one room are applied in the order given; a
	// backend should apply a whole batch in one round trip.
	Append(ctx context.Context, reqs []AppendRequest) ([]Appended, error)

	// Read returns a page of the room's events (see ReadRequest and Page).
	Read(ctx context.Context, req ReadRequest) (Page, error)

	// Heads returns the head of each room (0 for a room without events),
	// in one round trip.
	Heads(ctx context.Context, rooms []string) ([]uint64, error)

	// Ack moves subscriber's cursor in room to seq if that is forward, and
	// returns the cursor. seq beyond the head fails with ErrAheadOfHead;
	// seq 0 only reads the cursor.
	Ack(ctx context.Context, room, subscriber string, seq uint64) (uint64, error)

	// Cursor returns subscriber's cursor in room: the highest sequence it
	// acknowledged, 0 if none.
	Cursor(ctx context.Context, room, subscriber string) (uint64, error)

	// SetSnapshot stores room's snapshot (see the package documentation).
	SetSnapshot(ctx context.Context, room string, s zps.Snapshot) error

	// Snapshot returns room's snapshot; ok is false when it has none.
	Snapshot(ctx context.Context, room string) (s zps.Snapshot, ok bool, err error)

	// Prune removes room's expired events from the oldest end, then, if
	// maxLen > 0, all but the newest maxLen, with their idempotency keys,
	// and returns how many it removed.
	Prune(ctx context.Context, room string, maxLen int) (int, error)

	// Health reports whether the backend answers: nil, or an error
	// wrapping ErrUnavailable that says what is down.
	Health(ctx context.Context) error

	// Close releases what the store owns. Later calls fail with ErrClosed.
	// Idempotent.
	Close() error
}

// AppendRequest is one event to append.
type AppendRequest struct {
	// Event gives ID, Type, Room, Payload, Metadata and Encrypted; the
	// store sets Sequence, EmittedAt and ExpiresAt.
	Event zps.Event
	// TTL is how long the event stays in replay: ExpiresAt = EmittedAt +
	// TTL, EmittedAt being the store's clock when it appends, both to the
	// millisecond. At least a millisecond. An event is expired from
	// ExpiresAt on.
	TTL time.Duration
	// Dedupe makes Event.ID an idempotency key (the publisher gave it).
	// Without it the id is assumed unique (generated) and costs nothing.
	Dedupe bool
	// MaxLen, if positive, trims the room to its newest MaxLen events
	// once this one is stored. Among the requests of one room in one
	// Append, the smallest positive MaxLen applies to them all.
	MaxLen int
}

// Appended is the result of one AppendRequest.
type Appended struct {
	// Event is the stored event: the new one, or for a duplicate the one
	// stored first, unchanged.
	Event zps.Event
	// Duplicate reports that the id was already stored: nothing was
	// appended.
	Duplicate bool
}

// ReadRequest asks for the events of Room with After < Sequence ≤ To.
type ReadRequest struct {
	Room string
	// After: only events with a higher sequence.
	After uint64
	// To, if not 0, is the highest sequence wanted.
	To uint64
	// Limit is the most sequences the read examines, 1..MaxLimit; the page
	// holds at most Limit events.
	Limit int
	// Types, if not empty, keeps only events of these types (the others
	// still count as examined).
	Types []string
}

// Page is the result of a Read.
type Page struct {
	// Events are every retained, unexpired event with After < Sequence ≤
	// Last whose type matches, in ascending order.
	Events []zps.Event
	// Last is the highest sequence the read examined (After if none):
	// the next page starts after it. If Last < min(To, Head) the read
	// stopped at Limit and there may be more.
	Last uint64
	// Head is the room's head when the read was made; Head ≥ Last unless
	// After was beyond the head.
	Head uint64
}

// Done reports whether a reader paging with req has nothing more to read
// (until the room grows): the page reached the head, or To.
func (p *Page) Done(req *ReadRequest) bool {
	end := p.Head
	if req.To != 0 && req.To < end {
		end = req.To
	}
	return p.Last >= end
}

// Check validates a read request against the contract (every backend
// calls it first). Errors wrap ErrInvalidArgument.
func (r *ReadRequest) Check() error {
	if r.Room == "" {
		return fmt.Errorf("%w: empty room", ErrInvalidArgument)
	}
	if r.Limit < 1 || r.Limit > MaxLimit {
		return fmt.Errorf("%w: limit %d not in 1..%d", ErrInvalidArgument, r.Limit, MaxLimit)
	}
	if r.To != 0 && r.To < r.After {
		return fmt.Errorf("%w: to %d before after %d", ErrInvalidArgument, r.To, r.After)
	}
	return nil
}

// Check validates an append request (every backend calls it first).
// Errors wrap ErrInvalidArgument.
func (r *AppendRequest) Check() error {
	switch {
	case r.Event.Room == "":
		return fmt.Errorf("%w: empty room", ErrInvalidArgument)
	case r.Event.ID == "":
		return fmt.Errorf("%w: empty event id", ErrInvalidArgument)
	case r.Event.Type == "":
		return fmt.Errorf("%w: empty event type", ErrInvalidArgument)
	case r.TTL < time.Millisecond:
		return fmt.Errorf("%w: ttl %v (at least 1ms)", ErrInvalidArgument, r.TTL)
	case r.MaxLen < 0:
		return fmt.Errorf("%w: max length %d", ErrInvalidArgument, r.MaxLen)
	}
	return nil
}

// MatchType reports whether typ is one of types (all when empty).
func MatchType(types []string, typ string) bool {
	if len(types) == 0 {
		return true
	}
	for _, t := range types {
		if t == typ {
			return true
		}
	}
	return false
}
