package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/meshfast/meshfast/features/streams/store"
	"github.com/meshfast/meshfast/protocol/zps"
)

// Store is the Redis store. Create it with New.
type Store struct {
	opts    Options
	client  rueidis.Client
	own     bool // Close closes client
	cluster bool

	closed    atomic.Bool
	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// New connects to Redis (or takes Options.Client) and loads the scripts.
// It fails with an error wrapping store.ErrUnavailable when Redis cannot
// be reached.
func New(ctx context.Context, o Options) (*Store, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	s := &Store{opts: o, client: o.Client}
	if s.client == nil {
		c, err := rueidis.NewClient(rueidis.ClientOption{
			InitAddress:      o.Addrs,
			Username:         o.Username,
			Password:         o.Password,
			SelectDB:         o.DB,
			ClientName:       "meshfast-streams",
			Dialer:           net.Dialer{Timeout: o.DialTimeout},
			ConnWriteTimeout: o.WriteTimeout,
			// A failed call fails fast and the caller decides; an append
			// must not be retried behind its caller's back.
			DisableRetry: true,
			// Reads must see every write that returned (store contract).
			DisableCache: true,
		})
		if err != nil {
			return nil, fmt.Errorf("streams/store/redis: connect %v: %w: %w", o.Addrs, store.ErrUnavailable, err)
		}
		s.client, s.own = c, true
	}
	s.cluster = s.client.Mode() == rueidis.ClientModeCluster
	if err := s.loadScripts(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("streams/store/redis: load scripts: %w: %w", store.ErrUnavailable, err)
	}
	return s, nil
}

// loadScripts loads every script on every node, so that the first calls
// do not each pay a NOSCRIPT.
func (s *Store) loadScripts(ctx context.Context) error {
	for _, n := range s.client.Nodes() {
		cmds := make(rueidis.Commands, len(scripts))
		for i, sc := range scripts {
			cmds[i] = n.B().ScriptLoad().Script(sc.src).Build()
		}
		for _, r := range n.DoMulti(ctx, cmds...) {
			if err := r.Error(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Name implements store.Store.
func (s *Store) Name() string { return "redis" }

// Cluster reports whether the store runs on a Redis Cluster.
func (s *Store) Cluster() bool { return s.cluster }

// Close implements store.Store.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if s.own {
			s.client.Close()
		}
	})
	return nil
}

func (s *Store) check(ctx context.Context, op string) error {
	if s.closed.Load() {
		return fmt.Errorf("streams/store/redis: %s: %w", op, store.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("streams/store/redis: %s: %w", op, err)
	}
	return nil
}

// fail maps a rueidis error to the store contract.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	switch {
	case s.closed.Load():
		return fmt.Errorf("streams/store/redis: %s: %w", op, store.ErrClosed)
	case ctx.Err() != nil:
		return fmt.Errorf("streams/store/redis: %s: %w", op, ctx.Err())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("streams/store/redis: %s: %w", op, err)
	}
	return fmt.Errorf("streams/store/redis: %s: %w: %w", op, store.ErrUnavailable, err)
}

// call builds one EVALSHA of sc.
type call struct {
	sc   *script
	keys []string
	args []string
}

func (s *Store) cmd(c *call) rueidis.Completed {
	return s.client.B().Evalsha().Sha1(c.sc.sha).Numkeys(int64(len(c.keys))).Key(c.keys...).Arg(c.args...).Build()
}

// run sends calls in one round trip and retries a NOSCRIPT through EVAL.
// A NOSCRIPT is refused before the script runs, so the retry cannot apply
// anything twice.
func (s *Store) run(ctx context.Context, calls []call) []rueidis.RedisResult {
	var res []rueidis.RedisResult
	if len(calls) == 1 {
		res = []rueidis.RedisResult{s.client.Do(ctx, s.cmd(&calls[0]))}
	} else {
		cmds := make(rueidis.Commands, len(calls))
		for i := range calls {
			cmds[i] = s.cmd(&calls[i])
		}
		res = s.client.DoMulti(ctx, cmds...)
	}
	for i := range res {
		if re, ok := rueidis.IsRedisErr(res[i].Error()); ok && re.IsNoScript() {
			res[i] = calls[i].sc.lua.Exec(ctx, s.client, calls[i].keys, calls[i].args)
		}
	}
	return res
}

// Append implements store.Store: one append.lua per room of the batch, all
// in one round trip.
func (s *Store) Append(ctx context.Context, reqs []store.AppendRequest) ([]store.Appended, error) {
	const op = "append"
	if err := s.check(ctx, op); err != nil {
		return nil, err
	}
	for i := range reqs {
		if err := reqs[i].Check(); err != nil {
			return nil, fmt.Errorf("streams/store/redis: %s: %w", op, err)
		}
	}
	if len(reqs) == 0 {
		return []store.Appended{}, nil
	}
	// Group by room, keeping each room's order; idx[g] lists the requests
	// of group g.
	var (
		calls []call
		idx   [][]int
		group = make(map[string]int, 1)
	)
	for i := range reqs {
		r := &reqs[i]
		g, ok := group[r.Event.Room]
		if !ok {
			g = len(calls)
			group[r.Event.Room] = g
			k := roomKeys(s.opts.Prefix, r.Event.Room)
			calls = append(calls, call{sc: scriptAppend,
				keys: []string{k.seq(), k.events()},
				args: []string{strconv.Itoa(r.MaxLen), k.idPrefix(), strconv.Itoa(s.opts.AppendPrune)}})
			idx = append(idx, nil)
		}
		c := &calls[g]
		if r.MaxLen > 0 && (c.args[0] == "0" || r.MaxLen < atoi(c.args[0])) {
			c.args[0] = strconv.Itoa(r.MaxLen)
		}
		flags := make([]byte, 0, 4)
		if r.Dedupe {
			flags = append(flags, 'd')
			c.keys = append(c.keys, c.args[1]+r.Event.ID) // the room's id prefix
		}
		if r.Event.Payload != nil {
			flags = append(flags, 'p')
		}
		if r.Event.Metadata != nil {
			flags = append(flags, 'm')
		}
		if r.Event.Encrypted {
			flags = append(flags, 'c')
		}
		c.args = append(c.args, r.Event.ID, r.Event.Type, strconv.FormatInt(r.TTL.Milliseconds(), 10), string(flags),
			rueidis.BinaryString(r.Event.Payload), rueidis.BinaryString(r.Event.Metadata))
		idx[g] = append(idx[g], i)
	}
	res := s.run(ctx, calls)
	out := make([]store.Appended, len(reqs))
	for g := range calls {
		arr, err := res[g].ToArray()
		if err == nil && len(arr) != len(idx[g]) {
			err = fmt.Errorf("append script returned %d results for %d events", len(arr), len(idx[g]))
		}
		if err != nil {
			return nil, s.fail(ctx, op, err)
		}
		for j, i := range idx[g] {
			if out[i], err = appended(&reqs[i], arr[j]); err != nil {
				return nil, s.fail(ctx, op, err)
			}
		}
	}
	return out, nil
}

// appended decodes one result of append.lua.
func appended(r *store.AppendRequest, m rueidis.RedisMessage) (store.Appended, error) {
	a, err := m.ToArray()
	if err != nil || len(a) < 3 {
		return store.Appended{}, fmt.Errorf("append script result: %v %w", len(a), err)
	}
	fresh, err1 := a[0].AsInt64()
	seq, err2 := a[1].AsUint64()
	if err := errors.Join(err1, err2); err != nil {
		return store.Appended{}, err
	}
	if fresh == 0 {
		ev, err := decodeFields(r.Event.Room, seq, a[2])
		return store.Appended{Event: ev, Duplicate: true}, err
	}
	if len(a) != 4 {
		return store.Appended{}, fmt.Errorf("append script result of %d values", len(a))
	}
	w, err1 := a[2].AsInt64()
	x, err2 := a[3].AsInt64()
	if err := errors.Join(err1, err2); err != nil {
		return store.Appended{}, err
	}
	ev := r.Event
	ev.Sequence = seq
	ev.EmittedAt = time.UnixMilli(w).UTC()
	ev.ExpiresAt = time.UnixMilli(x).UTC()
	// The caller may reuse its buffers once Append returns.
	ev.Payload = clone(ev.Payload)
	ev.Metadata = clone(ev.Metadata)
	return store.Appended{Event: ev}, nil
}

// decodeFields reads a stream entry's fields into an event of room at seq.
// Byte slices alias the reply's strings, which nothing modifies.
func decodeFields(room string, seq uint64, m rueidis.RedisMessage) (zps.Event, error) {
	f, err := m.ToArray()
	if err != nil {
		return zps.Event{}, err
	}
	ev := zps.Event{Room: room, Sequence: seq}
	for j := 0; j+1 < len(f); j += 2 {
		k, err := f[j].ToString()
		if err != nil {
			return zps.Event{}, err
		}
		// The reply's strings are immutable and not reused: the event
		// takes them as they are.
		v, err := f[j+1].AsBytes()
		if err != nil {
			return zps.Event{}, err
		}
		switch k {
		case "i":
			ev.ID, _ = f[j+1].ToString()
		case "t":
			ev.Type, _ = f[j+1].ToString()
		case "w", "x":
			ms, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return zps.Event{}, fmt.Errorf("event %s of %q: field %s: %w", room, strconv.FormatUint(seq, 10), k, err)
			}
			if k == "w" {
				ev.EmittedAt = time.UnixMilli(ms).UTC()
			} else {
				ev.ExpiresAt = time.UnixMilli(ms).UTC()
			}
		case "p":
			ev.Payload = v
		case "m":
			ev.Metadata = v
		case "c":
			ev.Encrypted = true
		}
	}
	return ev, nil
}

// Read implements store.Store (read.lua).
func (s *Store) Read(ctx context.Context, req store.ReadRequest) (store.Page, error) {
	const op = "read"
	if err := s.check(ctx, op); err != nil {
		return store.Page{}, err
	}
	if err := req.Check(); err != nil {
		return store.Page{}, fmt.Errorf("streams/store/redis: %s: %w", op, err)
	}
	k := roomKeys(s.opts.Prefix, req.Room)
	args := make([]string, 3, 3+len(req.Types))
	args[0] = strconv.FormatUint(req.After, 10)
	args[1] = strconv.FormatUint(req.To, 10)
	args[2] = strconv.Itoa(req.Limit)
	args = append(args, req.Types...)
	res := s.run(ctx, []call{{sc: scriptRead, keys: []string{k.seq(), k.events()}, args: args}})
	arr, err := res[0].ToArray()
	if err == nil && len(arr) < 2 {
		err = fmt.Errorf("read script returned %d values", len(arr))
	}
	if err != nil {
		return store.Page{}, s.fail(ctx, op, err)
	}
	var p store.Page
	h, err1 := arr[0].AsUint64()
	l, err2 := arr[1].AsUint64()
	if err := errors.Join(err1, err2); err != nil {
		return store.Page{}, s.fail(ctx, op, err)
	}
	p.Head, p.Last = h, l
	if n := (len(arr) - 2) / 2; n > 0 {
		p.Events = make([]zps.Event, n)
		for i := range n {
			id, err := arr[2+2*i].ToString()
			if err != nil {
				return store.Page{}, s.fail(ctx, op, err)
			}
			seq, err := entrySeq(id)
			if err != nil {
				return store.Page{}, s.fail(ctx, op, err)
			}
			if p.Events[i], err = decodeFields(req.Room, seq, arr[3+2*i]); err != nil {
				return store.Page{}, s.fail(ctx, op, err)
			}
		}
	}
	return p, nil
}

// entrySeq reads the sequence of a stream entry id "<seq>-0".
func entrySeq(id string) (uint64, error) {
	for i := 0; i < len(id); i++ {
		if id[i] == '-' {
			return strconv.ParseUint(id[:i], 10, 64)
		}
	}
	return 0, fmt.Errorf("stream entry id %q", id)
}

// Heads implements store.Store: one GET per room, in one round trip.
func (s *Store) Heads(ctx context.Context, rooms []string) ([]uint64, error) {
	const op = "heads"
	if err := s.check(ctx, op); err != nil {
		return nil, err
	}
	out := make([]uint64, len(rooms))
	if len(rooms) == 0 {
		return out, nil
	}
	cmds := make(rueidis.Commands, len(rooms))
	for i, r := range rooms {
		cmds[i] = s.client.B().Get().Key(roomKeys(s.opts.Prefix, r).seq()).Build()
	}
	for i, r := range s.client.DoMulti(ctx, cmds...) {
		v, err := r.AsUint64()
		if rueidis.IsRedisNil(err) {
			continue
		}
		if err != nil {
			return nil, s.fail(ctx, op, err)
		}
		out[i] = v
	}
	return out, nil
}

// Ack implements store.Store (ack.lua).
func (s *Store) Ack(ctx context.Context, room, subscriber string, seq uint64) (uint64, error) {
	const op = "ack"
	if err := s.check(ctx, op); err != nil {
		return 0, err
	}
	if room == "" || subscriber == "" {
		return 0, fmt.Errorf("streams/store/redis: %s: %w: empty room or subscriber", op, store.ErrInvalidArgument)
	}
	if seq == 0 {
		return s.Cursor(ctx, room, subscriber)
	}
	k := roomKeys(s.opts.Prefix, room)
	res := s.run(ctx, []call{{sc: scriptAck, keys: []string{k.seq(), k.cursors()}, args: []string{subscriber, strconv.FormatUint(seq, 10)}}})
	code, v, err := pair(res[0])
	if err != nil {
		return 0, s.fail(ctx, op, err)
	}
	if code == -1 {
		return 0, fmt.Errorf("streams/store/redis: ack %q at %d, head %d: %w", room, seq, v, store.ErrAheadOfHead)
	}
	return uint64(v), nil
}

// pair reads a script's {code, value} reply.
func pair(r rueidis.RedisResult) (code, v int64, err error) {
	arr, err := r.ToArray()
	if err != nil {
		return 0, 0, err
	}
	if len(arr) < 1 || len(arr) > 2 {
		return 0, 0, fmt.Errorf("script returned %d values", len(arr))
	}
	if code, err = arr[0].AsInt64(); err != nil || len(arr) == 1 {
		return code, 0, err
	}
	v, err = arr[1].AsInt64()
	return code, v, err
}

// Cursor implements store.Store (HGET).
func (s *Store) Cursor(ctx context.Context, room, subscriber string) (uint64, error) {
	const op = "cursor"
	if err := s.check(ctx, op); err != nil {
		return 0, err
	}
	if room == "" || subscriber == "" {
		return 0, fmt.Errorf("streams/store/redis: %s: %w: empty room or subscriber", op, store.ErrInvalidArgument)
	}
	v, err := s.client.Do(ctx, s.client.B().Hget().Key(roomKeys(s.opts.Prefix, room).cursors()).Field(subscriber).Build()).AsUint64()
	if rueidis.IsRedisNil(err) {
		return 0, nil
	}
	if err != nil {
		return 0, s.fail(ctx, op, err)
	}
	return v, nil
}

// SetSnapshot implements store.Store (snapshot_set.lua).
func (s *Store) SetSnapshot(ctx context.Context, room string, snap zps.Snapshot) error {
	const op = "set snapshot"
	if err := s.check(ctx, op); err != nil {
		return err
	}
	if room == "" {
		return fmt.Errorf("streams/store/redis: %s: %w: empty room", op, store.ErrInvalidArgument)
	}
	k := roomKeys(s.opts.Prefix, room)
	res := s.run(ctx, []call{{sc: scriptSnapshotSet, keys: []string{k.seq(), k.snapshot()},
		args: []string{strconv.FormatUint(snap.LastSequence, 10), rueidis.BinaryString(snap.State)}}})
	code, v, err := pair(res[0])
	if err != nil {
		return s.fail(ctx, op, err)
	}
	switch code {
	case -1:
		return fmt.Errorf("streams/store/redis: snapshot of %q at %d, head %d: %w", room, snap.LastSequence, v, store.ErrAheadOfHead)
	case -2:
		return fmt.Errorf("streams/store/redis: snapshot of %q at %d, stored %d: %w", room, snap.LastSequence, v, store.ErrStaleSnapshot)
	}
	return nil
}

// Snapshot implements store.Store (HMGET).
func (s *Store) Snapshot(ctx context.Context, room string) (zps.Snapshot, bool, error) {
	const op = "snapshot"
	if err := s.check(ctx, op); err != nil {
		return zps.Snapshot{}, false, err
	}
	arr, err := s.client.Do(ctx, s.client.B().Hmget().Key(roomKeys(s.opts.Prefix, room).snapshot()).Field("s", "v").Build()).ToArray()
	if err == nil && len(arr) != 2 {
		err = fmt.Errorf("HMGET returned %d values", len(arr))
	}
	if err != nil {
		return zps.Snapshot{}, false, s.fail(ctx, op, err)
	}
	if arr[0].IsNil() {
		return zps.Snapshot{}, false, nil
	}
	seq, err1 := arr[0].AsUint64()
	state, err2 := arr[1].AsBytes()
	if err := errors.Join(err1, err2); err != nil {
		return zps.Snapshot{}, false, s.fail(ctx, op, err)
	}
	return zps.Snapshot{LastSequence: seq, State: state}, true, nil
}

// Prune implements store.Store: prune.lua steps of PruneBatch until one
// removes nothing.
func (s *Store) Prune(ctx context.Context, room string, maxLen int) (int, error) {
	const op = "prune"
	if err := s.check(ctx, op); err != nil {
		return 0, err
	}
	if room == "" || maxLen < 0 {
		return 0, fmt.Errorf("streams/store/redis: %s: %w: room %q, max length %d", op, store.ErrInvalidArgument, room, maxLen)
	}
	k := roomKeys(s.opts.Prefix, room)
	c := []call{{sc: scriptPrune, keys: []string{k.events()},
		args: []string{strconv.Itoa(maxLen), k.idPrefix(), strconv.Itoa(s.opts.PruneBatch)}}}
	total := 0
	for {
		n, err := s.run(ctx, c)[0].AsInt64()
		if err != nil {
			return total, s.fail(ctx, op, err)
		}
		if n == 0 {
			return total, nil
		}
		total += int(n)
	}
}

// Health implements store.Store: one PING (per node on a cluster).
func (s *Store) Health(ctx context.Context) error {
	const op = "health"
	if err := s.check(ctx, op); err != nil {
		return err
	}
	for addr, n := range s.client.Nodes() {
		if err := n.Do(ctx, n.B().Ping().Build()).Error(); err != nil {
			return fmt.Errorf("streams/store/redis: %s: %s: %w: %w", op, addr, store.ErrUnavailable, err)
		}
	}
	return nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}
