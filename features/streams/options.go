package streams

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/features/streams/store"
	"github.com/meshfast/meshfast/perf"
)

// Defaults of Options, each named after its field.
const (
	// DefaultTTL is how long an event published without a TTL stays in
	// replay (the document's 24 hours).
	DefaultTTL = 24 * time.Hour
	// DefaultGapTimeout is how long the node waits for a missing sequence
	// to arrive live (events of one room published on different nodes
	// arrive in any order) before it reads it from the store.
	DefaultGapTimeout = 50 * time.Millisecond
	// DefaultTailCheckInterval is how often the node compares the rooms it
	// has listeners for, idle since the last check, with their heads in
	// the store: an event whose fan-out was lost (its publisher died
	// between storing and publishing it, pub/sub dropped it) reaches the
	// listeners within about this long even if nothing follows it.
	DefaultTailCheckInterval = time.Second
	// DefaultFillBatch is the most events one read of a gap takes.
	DefaultFillBatch = 1000
	// DefaultMaxPending is the most out-of-order events the node buffers
	// per room; beyond it, it reads the gap from the store at once and
	// drops the surplus (stored, so read again).
	DefaultMaxPending = 1024
	// DefaultInboxSize is the most live events a hub shard queues; beyond
	// it they are dropped and read back from the store.
	DefaultInboxSize = 1 << 16
	// DefaultQueueSize is the default of SubscribeOptions.QueueSize and
	// EphemeralOptions.QueueSize.
	DefaultQueueSize = 1024
	// DefaultReplayLimit is the default of ReplayOptions.Limit.
	DefaultReplayLimit = 100
	// DefaultReplayScan is the most sequences one Replay examines looking
	// for Limit events of the wanted types.
	DefaultReplayScan = 100 * store.MaxLimit
	// DefaultBatchSize is the default page of a catch-up (the document's
	// 500; at most store.MaxLimit).
	DefaultBatchSize = 500
	// DefaultRetryDelay is the first wait of a subscription after its
	// store failed; it doubles up to DefaultMaxRetryDelay.
	DefaultRetryDelay    = 100 * time.Millisecond
	DefaultMaxRetryDelay = 2 * time.Second
	// DefaultPresenceHeartbeat is how often a node re-announces the users
	// it entered into presence.
	DefaultPresenceHeartbeat = 10 * time.Second
	// DefaultPresenceTTL is how long a user stays present without an
	// announcement (three heartbeats: a node that died takes its users
	// with it within this).
	DefaultPresenceTTL = 30 * time.Second
	// DefaultWildcardRoomIdle is how long the node keeps ordering state
	// for a room it only follows through a scope:* subscription after the
	// room's last event.
	DefaultWildcardRoomIdle = time.Minute
)

// Options configures Streams. The zero value works: one node, memory
// storage, events kept DefaultTTL.
type Options struct {
	// Store keeps the events. Nil means a memory store owned (and closed)
	// by Streams.
	Store store.Store

	// PubSub carries live events between nodes (a coord.Coordinator, of
	// which only pub/sub is used). Nil means an in-memory coordinator
	// owned by Streams: one node. Several nodes share a Redis coordinator
	// and a Redis (or other shared) store.
	PubSub coord.PubSub

	// Metrics receives the feature's metrics (names in metrics.go); one
	// Streams per registry (its gauges register once). Nil means a
	// registry of its own, read with Metrics.
	Metrics *perf.Metrics

	// Logger: nil discards.
	Logger *slog.Logger

	// Middleware runs around every action, first to last on the way in
	// (see Use).
	Middleware []Middleware

	// TTL is the time to live of an event published without one. Zero
	// means DefaultTTL.
	TTL time.Duration
	// MaxLen, if positive, keeps at most the newest MaxLen events of each
	// room (retention by length).
	MaxLen int

	// Workers is the number of hub goroutines that order live events; a
	// room always goes to the same one. Zero means GOMAXPROCS.
	Workers int
	// GapTimeout: see DefaultGapTimeout.
	GapTimeout time.Duration
	// TailCheckInterval: see DefaultTailCheckInterval. Negative turns it
	// off (tests of the gap path).
	TailCheckInterval time.Duration
	// FillBatch: see DefaultFillBatch (at most store.MaxLimit).
	FillBatch int
	// MaxPending: see DefaultMaxPending.
	MaxPending int
	// InboxSize: see DefaultInboxSize.
	InboxSize int
	// QueueSize is the default queue of a subscription. Zero means
	// DefaultQueueSize.
	QueueSize int
	// ReplayScan: see DefaultReplayScan.
	ReplayScan int
	// RetryDelay and MaxRetryDelay: see DefaultRetryDelay.
	RetryDelay    time.Duration
	MaxRetryDelay time.Duration
	// PresenceHeartbeat and PresenceTTL: see their defaults. PresenceTTL
	// must exceed PresenceHeartbeat.
	PresenceHeartbeat time.Duration
	PresenceTTL       time.Duration
	// WildcardRoomIdle: see DefaultWildcardRoomIdle.
	WildcardRoomIdle time.Duration
}

// Validate reports options that conflict or are out of range.
func (o Options) Validate() error {
	if o.TTL < 0 || o.MaxLen < 0 || o.Workers < 0 || o.FillBatch < 0 || o.MaxPending < 0 ||
		o.InboxSize < 0 || o.QueueSize < 0 || o.ReplayScan < 0 || o.GapTimeout < 0 || o.RetryDelay < 0 ||
		o.MaxRetryDelay < 0 || o.PresenceHeartbeat < 0 || o.PresenceTTL < 0 || o.WildcardRoomIdle < 0 {
		return errors.New("streams: negative option")
	}
	if o.TTL != 0 && o.TTL < time.Millisecond {
		return fmt.Errorf("streams: TTL %v below a millisecond", o.TTL)
	}
	if o.FillBatch > store.MaxLimit {
		return fmt.Errorf("streams: FillBatch %d above %d", o.FillBatch, store.MaxLimit)
	}
	d := o.withDefaults()
	if d.PresenceTTL <= d.PresenceHeartbeat {
		return fmt.Errorf("streams: PresenceTTL %v must exceed PresenceHeartbeat %v", d.PresenceTTL, d.PresenceHeartbeat)
	}
	for i, m := range o.Middleware {
		if m == nil {
			return fmt.Errorf("streams: middleware %d is nil", i)
		}
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.GapTimeout == 0 {
		o.GapTimeout = DefaultGapTimeout
	}
	if o.TailCheckInterval == 0 {
		o.TailCheckInterval = DefaultTailCheckInterval
	}
	if o.FillBatch == 0 {
		o.FillBatch = DefaultFillBatch
	}
	if o.MaxPending == 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.InboxSize == 0 {
		o.InboxSize = DefaultInboxSize
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.ReplayScan == 0 {
		o.ReplayScan = DefaultReplayScan
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = DefaultRetryDelay
	}
	if o.MaxRetryDelay == 0 {
		o.MaxRetryDelay = DefaultMaxRetryDelay
	}
	if o.PresenceHeartbeat == 0 {
		o.PresenceHeartbeat = DefaultPresenceHeartbeat
	}
	if o.PresenceTTL == 0 {
		o.PresenceTTL = DefaultPresenceTTL
	}
	if o.WildcardRoomIdle == 0 {
		o.WildcardRoomIdle = DefaultWildcardRoomIdle
	}
	return o
}
