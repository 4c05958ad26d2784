package memory

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshfast/meshfast/features/streams/store"
	"github.com/meshfast/meshfast/protocol/zps"
)

// Options configures a memory store. The zero value works.
type Options struct {
	// Now is the clock of EmittedAt and expiry. Nil means time.Now; tests
	// inject a fake clock.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// appendPrune is how many expired events an append removes from its room
// at most, so that an active room stays near its retention without a
// pruner and no append does unbounded work.
const appendPrune = 16

const shards = 64

// Store is the memory store. Create it with New.
type Store struct {
	opts   Options
	seed   maphash.Seed
	shards [shards]shard
	closed atomic.Bool
}

type shard struct {
	mu    sync.Mutex
	rooms map[string]*room
}

// room is one room's state. Its events are a deque: events[i] has sequence
// first+i, and the sequences first..head are all there (retention only
// removes from the front).
type room struct {
	mu      sync.Mutex
	head    uint64
	first   uint64 // sequence of events[0]; head+1 when empty
	events  []zps.Event
	ids     map[string]uint64 // idempotency keys (Dedupe) → sequence
	cursors map[string]uint64
	snap    *zps.Snapshot
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New(o Options) *Store {
	s := &Store{opts: o.withDefaults(), seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].rooms = make(map[string]*room)
	}
	return s
}

// Name implements store.Store.
func (s *Store) Name() string { return "memory" }

// room returns name's room, creating it when create is set (else nil if
// it does not exist).
func (s *Store) room(name string, create bool) *room {
	sh := &s.shards[maphash.String(s.seed, name)%shards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r := sh.rooms[name]
	if r == nil && create {
		r = &room{first: 1}
		sh.rooms[name] = r
	}
	return r
}

func (s *Store) check(ctx context.Context, op string) error {
	if s.closed.Load() {
		return fmt.Errorf("streams/store/memory: %s: %w", op, store.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("streams/store/memory: %s: %w", op, err)
	}
	return nil
}

// Append implements store.Store.
func (s *Store) Append(ctx context.Context, reqs []store.AppendRequest) ([]store.Appended, error) {
	if err := s.check(ctx, "append"); err != nil {
		return nil, err
	}
	for i := range reqs {
		if err := reqs[i].Check(); err != nil {
			return nil, fmt.Errorf("streams/store/memory: append: %w", err)
		}
	}
	var maxLen map[string]int // the smallest positive MaxLen of each room
	for i := range reqs {
		if m := reqs[i].MaxLen; m > 0 {
			if maxLen == nil {
				maxLen = make(map[string]int)
			}
			if cur, ok := maxLen[reqs[i].Event.Room]; !ok || m < cur {
				maxLen[reqs[i].Event.Room] = m
			}
		}
	}
	out := make([]store.Appended, len(reqs))
	for i := range reqs {
		out[i] = s.append1(&reqs[i], maxLen[reqs[i].Event.Room])
	}
	return out, nil
}

func (s *Store) append1(req *store.AppendRequest, maxLen int) store.Appended {
	r := s.room(req.Event.Room, true)
	now := s.opts.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(now, appendPrune, 0)
	if req.Dedupe {
		if seq, ok := r.ids[req.Event.ID]; ok {
			if ev := r.at(seq); ev != nil && now.Before(ev.ExpiresAt) {
				return store.Appended{Event: *ev, Duplicate: true}
			}
		}
	}
	ev := req.Event
	ev.Payload = clone(ev.Payload)
	ev.Metadata = clone(ev.Metadata)
	r.head++
	ev.Sequence = r.head
	ev.EmittedAt = zps.Millis(now)
	ev.ExpiresAt = zps.Millis(ev.EmittedAt.Add(req.TTL))
	r.events = append(r.events, ev)
	if req.Dedupe {
		if r.ids == nil {
			r.ids = make(map[string]uint64)
		}
		r.ids[ev.ID] = ev.Sequence
	}
	if maxLen > 0 && len(r.events) > maxLen {
		r.dropLocked(len(r.events) - maxLen)
	}
	return store.Appended{Event: ev}
}

// at returns the stored event of sequence seq, nil if it is not (any
// more) stored. r.mu is held.
func (r *room) at(seq uint64) *zps.Event {
	if seq < r.first || seq > r.head {
		return nil
	}
	return &r.events[seq-r.first]
}

// pruneLocked removes up to limit expired events from the front (limit 0:
// no limit), then all but the newest maxLen (0: none). r.mu is held.
func (r *room) pruneLocked(now time.Time, limit, maxLen int) int {
	n := 0
	for n < len(r.events) && (limit == 0 || n < limit) && !now.Before(r.events[n].ExpiresAt) {
		n++
	}
	if maxLen > 0 && len(r.events)-n > maxLen {
		n = len(r.events) - maxLen
	}
	r.dropLocked(n)
	return n
}

// dropLocked removes the n oldest events and their idempotency keys.
// r.mu is held.
func (r *room) dropLocked(n int) {
	if n == 0 {
		return
	}
	for i := range n {
		ev := &r.events[i]
		if seq, ok := r.ids[ev.ID]; ok && seq == ev.Sequence {
			delete(r.ids, ev.ID)
		}
		*ev = zps.Event{} // let the payload go now, not when the array is reallocated
	}
	r.events = r.events[n:]
	r.first += uint64(n)
	if len(r.events) == 0 {
		r.events = nil
	}
}

// Read implements store.Store.
func (s *Store) Read(ctx context.Context, req store.ReadRequest) (store.Page, error) {
	if err := s.check(ctx, "read"); err != nil {
		return store.Page{}, err
	}
	if err := req.Check(); err != nil {
		return store.Page{}, fmt.Errorf("streams/store/memory: read: %w", err)
	}
	p := store.Page{Last: req.After}
	r := s.room(req.Room, false)
	if r == nil {
		return p, nil
	}
	now := s.opts.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	p.Head = r.head
	end := r.head
	if req.To != 0 && req.To < end {
		end = req.To
	}
	if req.After >= end {
		return p, nil
	}
	from := req.After + 1
	if from < r.first {
		from = r.first // removed by retention: examined, nothing there
	}
	last := min(end, from+uint64(req.Limit)-1)
	for seq := from; seq <= last; seq++ {
		ev := &r.events[seq-r.first]
		if now.Before(ev.ExpiresAt) && store.MatchType(req.Types, ev.Type) {
			if p.Events == nil {
				p.Events = make([]zps.Event, 0, min(int(last-seq+1), req.Limit))
			}
			p.Events = append(p.Events, *ev)
		}
	}
	p.Last = last
	return p, nil
}

// Heads implements store.Store.
func (s *Store) Heads(ctx context.Context, rooms []string) ([]uint64, error) {
	if err := s.check(ctx, "heads"); err != nil {
		return nil, err
	}
	out := make([]uint64, len(rooms))
	for i, name := range rooms {
		if r := s.room(name, false); r != nil {
			r.mu.Lock()
			out[i] = r.head
			r.mu.Unlock()
		}
	}
	return out, nil
}

// Ack implements store.Store.
func (s *Store) Ack(ctx context.Context, room, subscriber string, seq uint64) (uint64, error) {
	if err := s.check(ctx, "ack"); err != nil {
		return 0, err
	}
	if room == "" || subscriber == "" {
		return 0, fmt.Errorf("streams/store/memory: ack: %w: empty room or subscriber", store.ErrInvalidArgument)
	}
	r := s.room(room, seq > 0)
	if r == nil {
		return 0, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq > r.head {
		return 0, fmt.Errorf("streams/store/memory: ack %q at %d, head %d: %w", room, seq, r.head, store.ErrAheadOfHead)
	}
	cur := r.cursors[subscriber]
	if seq > cur {
		if r.cursors == nil {
			r.cursors = make(map[string]uint64)
		}
		r.cursors[subscriber] = seq
		cur = seq
	}
	return cur, nil
}

// Cursor implements store.Store.
func (s *Store) Cursor(ctx context.Context, room, subscriber string) (uint64, error) {
	return s.Ack(ctx, room, subscriber, 0)
}

// SetSnapshot implements store.Store.
func (s *Store) SetSnapshot(ctx context.Context, room string, snap zps.Snapshot) error {
	if err := s.check(ctx, "set snapshot"); err != nil {
		return err
	}
	if room == "" {
		return fmt.Errorf("streams/store/memory: set snapshot: %w: empty room", store.ErrInvalidArgument)
	}
	r := s.room(room, true)
	r.mu.Lock()
	defer r.mu.Unlock()
	if snap.LastSequence > r.head {
		return fmt.Errorf("streams/store/memory: snapshot of %q at %d, head %d: %w", room, snap.LastSequence, r.head, store.ErrAheadOfHead)
	}
	if r.snap != nil && r.snap.LastSequence > snap.LastSequence {
		return fmt.Errorf("streams/store/memory: snapshot of %q at %d, stored %d: %w", room, snap.LastSequence, r.snap.LastSequence, store.ErrStaleSnapshot)
	}
	r.snap = &zps.Snapshot{LastSequence: snap.LastSequence, State: clone(snap.State)}
	return nil
}

// Snapshot implements store.Store.
func (s *Store) Snapshot(ctx context.Context, room string) (zps.Snapshot, bool, error) {
	if err := s.check(ctx, "snapshot"); err != nil {
		return zps.Snapshot{}, false, err
	}
	r := s.room(room, false)
	if r == nil {
		return zps.Snapshot{}, false, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.snap == nil {
		return zps.Snapshot{}, false, nil
	}
	return *r.snap, true, nil
}

// Prune implements store.Store.
func (s *Store) Prune(ctx context.Context, room string, maxLen int) (int, error) {
	if err := s.check(ctx, "prune"); err != nil {
		return 0, err
	}
	if maxLen < 0 {
		return 0, fmt.Errorf("streams/store/memory: prune: %w: max length %d", store.ErrInvalidArgument, maxLen)
	}
	r := s.room(room, false)
	if r == nil {
		return 0, nil
	}
	now := s.opts.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pruneLocked(now, 0, maxLen), nil
}

// Health implements store.Store: a memory store is always up until
// closed.
func (s *Store) Health(ctx context.Context) error { return s.check(ctx, "health") }

// Close implements store.Store. The data is kept until the Store is
// garbage collected; every later call fails with store.ErrClosed.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}
