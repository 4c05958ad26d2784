package coord

import (
	"context"
	"time"
)

// Presence tracks which connections are present in a room, each with a TTL
// that the server refreshes (on pongs, in batches), and an optional JSON
// state per (room, connection). Mesh keeps the set
// mesh:presence:room:<room> of present connections, one key
// mesh:presence:room:<room>:conn:<id> per entry (empty, carrying the TTL),
// and one key mesh:presence:state:<room>:conn:<id> per state (the JSON,
// carrying expireAfter); coord/redis keeps Mesh's set and state keys and,
// instead of a key per entry, a sorted set of deadlines per room (see its
// package documentation).
//
// Presence is independent of room membership: the server calls JoinPresence
// when a connection joins a tracked room. The coordinator publishes no
// presence events itself, except JoinRoom's join event (coord.Joins); the
// caller publishes join/leave/state events on PresenceTopic(room). Only
// expiries, which no caller sees happen, are reported through
// OnPresenceExpiry.
//
// Lapsed entries: an entry whose TTL has lapsed is no longer present, and
// reads leave it out at once (Redis compares deadlines in Redis time), even
// before the expiry is reported. A lapsed entry is never refreshed;
// JoinPresence revives it and reports false.
//
// Exactly one ending per entry: every presence entry ends in exactly one of
// LeavePresence returning true, a RemovedConnection.Present naming its room,
// or an ExpiredPresence report (a lapsed, unreported entry removed by
// LeavePresence or RemoveConnection counts there and is not reported). So the
// caller that publishes one "leave" per ending publishes exactly one per
// entry, cluster-wide. The same holds for a state with expireAfter:
// ClearPresenceState returning true or one ExpiredState report, unless it is
// replaced or removed with its presence first (then nothing is reported:
// the leave covers it).
type Presence interface {
	// JoinPresence marks connID present in room for ttl (> 0) and reports
	// whether it was not present yet. Joining again re-arms the TTL.
	// Atomic per entry (Redis: SADD to the room's set and SET of the
	// entry's key with its TTL, in one MULTI or script; the SADD's answer is
	// the result). One round trip.
	JoinPresence(ctx context.Context, room, connID string, ttl time.Duration) (bool, error)

	// RefreshPresence re-arms the TTL of every entry, each on its own: it is
	// the server's batch of pongs, one call per flush for all of a node's
	// connections. Entries that are not present (never joined, left or
	// lapsed) are skipped, not created (Redis: PEXPIRE, never SET). A
	// non-positive TTL is ErrInvalidArgument. One round trip for the whole
	// batch (one pipeline); not atomic across entries.
	RefreshPresence(ctx context.Context, entries []PresenceEntry) error

	// LeavePresence removes connID's presence and presence state in room,
	// without a state event, and reports whether it removed a presence
	// entry (lapsed or not: see "Exactly one ending"). Atomic per entry:
	// true for exactly one of racing removals (Redis: the SREM that
	// returned 1). One round trip.
	LeavePresence(ctx context.Context, room, connID string) (bool, error)

	// PresentConnections returns room's present connections in no
	// particular order (Mesh's getPresentConnections / the "present" list of
	// join-room and subscribe-presence replies; SMEMBERS).
	PresentConnections(ctx context.Context, room string) ([]string, error)

	// SetPresenceState stores connID's state in room (replacing any
	// previous one). If expireAfter > 0 the state expires after it and the
	// expiry is reported (ExpiredState); zero means no expiry. The
	// connection need not be present (the server checks membership), but
	// PresenceStates only returns states of present connections. One
	// command (SET, with PX when it expires).
	SetPresenceState(ctx context.Context, room, connID string, state []byte, expireAfter time.Duration) error

	// ClearPresenceState deletes connID's state in room and reports whether
	// it removed one (lapsed or not); true for exactly one of racing
	// removals, as for LeavePresence (DEL's answer).
	ClearPresenceState(ctx context.Context, room, connID string) (bool, error)

	// PresenceStates returns the states of room's present connections, keyed
	// by connection id; connections without a state are omitted. Not
	// atomic; two round trips (the members, then their states in one
	// pipeline).
	PresenceStates(ctx context.Context, room string) (map[string][]byte, error)

	// PresenceSnapshot returns PresentConnections and PresenceStates
	// together (the subscribe-presence reply): States only names
	// connections in Present. Two round trips as PresenceStates; a
	// connection leaving in between may be in Present without its state.
	PresenceSnapshot(ctx context.Context, room string) (PresenceSnapshot, error)

	// OnPresenceExpiry registers h to be told about expiries, and returns a
	// function that unregisters it; neither does I/O. Every expiry is
	// reported ONCE in the whole cluster, to one registered handler
	// (memory: the earliest registered; Redis: the node that wins the
	// removal), so the receiver must publish the resulting event on
	// PresenceTopic for every node. An expiry that happens while no handler
	// is registered is not reported, but the entry is still removed.
	OnPresenceExpiry(h ExpiryHandler) (remove func())
}

// PresenceEntry names one (room, connection) presence entry and the TTL to
// re-arm it with (TTLs are per tracked room pattern, so one batch may mix
// them).
type PresenceEntry struct {
	Room   string
	ConnID string
	TTL    time.Duration
}

// PresenceSnapshot is a room's presence at one instant.
type PresenceSnapshot struct {
	// Present lists the present connections, in no particular order.
	Present []string
	// States maps present connections that have a state to it. Never nil.
	States map[string][]byte
}

// ExpiryKind says what expired.
type ExpiryKind uint8

const (
	// ExpiredPresence: a presence entry's TTL lapsed. The entry and the
	// connection's state in the room are removed; the receiver publishes a
	// "leave". Room membership is not touched.
	ExpiredPresence ExpiryKind = iota + 1
	// ExpiredState: a presence state's expireAfter lapsed. The state is
	// removed; the receiver publishes a "state" event with a null state.
	ExpiredState
)

// String returns "presence" or "state".
func (k ExpiryKind) String() string {
	switch k {
	case ExpiredPresence:
		return "presence"
	case ExpiredState:
		return "state"
	default:
		return "unknown"
	}
}

// Expiry is one expiry reported to an ExpiryHandler.
type Expiry struct {
	Kind   ExpiryKind
	Room   string
	ConnID string
	// At is when the coordinator removed the entry (its clock).
	At time.Time
}

// ExpiryHandler receives expiries. It is called from a goroutine of the
// coordinator and MUST NOT block: it must not call Coordinator methods
// (which may wait for the backend, or for the very goroutine that runs the
// handler) but hand the event off, for example to the event loop or to a
// goroutine that publishes it.
type ExpiryHandler func(Expiry)
