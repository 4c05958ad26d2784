package redis

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/meshfast/meshfast/coord"
)

// JoinRoom is Mesh's join-room in one call (coord.Joins). Calls are
// batched as a group commit: a call queues its join and one of
// JoinBatches sender goroutines takes every join queued at that moment and
// sends them as one round trip. A lone join goes at once, alone; while
// batches are in flight, the joins that arrive meanwhile wait for a free
// sender and then go together, so the batch grows with the load and the
// round trips per join shrink with it (BenchmarkJoinStorm). A batch is,
// per partition, one room_add_many script (memberships live in the
// connection's partition) and one presence_join_many script (presence
// lives in the room's partition), all in one DoMulti. On a single Redis the
// presence script also publishes the join events; on a cluster a shard
// channel must share the script's slot, which the presence topic does not,
// so the sender publishes them in a second round trip (one pipeline).
func (c *Coordinator) JoinRoom(ctx context.Context, room, connID string, ttl time.Duration, joinEvent []byte) (coord.RoomJoin, error) {
	const op = "JoinRoom"
	if err := c.check(ctx, op); err != nil {
		return coord.RoomJoin{}, err
	}
	switch {
	case room == "":
		return coord.RoomJoin{}, invalid(op, "empty room")
	case connID == "":
		return coord.RoomJoin{}, invalid(op, "empty connection id")
	case ttl < 0:
		return coord.RoomJoin{}, invalid(op, "ttl "+ttl.String())
	}
	j := &joinReq{ctx: ctx, room: room, conn: connID, ttl: ttl, done: make(chan struct{})}
	if joinEvent != nil {
		j.event = string(joinEvent) // copied: the caller may reuse it once we return
	}
	if err := c.joins.queue(j); err != nil {
		return coord.RoomJoin{}, fmt.Errorf("coord/redis: %s: %w", op, err)
	}
	select {
	case <-j.done:
		return j.res, c.fail(ctx, op, j.err)
	case <-ctx.Done():
		return coord.RoomJoin{}, fmt.Errorf("coord/redis: %s: %w", op, ctx.Err())
	}
}

// joinReq is one queued JoinRoom. The sender that takes it sets res and
// err, then closes done.
type joinReq struct {
	ctx        context.Context
	room, conn string
	ttl        time.Duration
	event      string // "" for none

	res  coord.RoomJoin
	err  error
	done chan struct{}
}

// joiner is the group commit of JoinRoom: pending joins and the senders
// that take them. mu guards pending and closed; senders wait on cond.
type joiner struct {
	c       *Coordinator
	mu      sync.Mutex
	cond    *sync.Cond
	pending []*joinReq
	closed  bool
}

func (jn *joiner) init(c *Coordinator) {
	jn.c = c
	jn.cond = sync.NewCond(&jn.mu)
	for range c.opts.JoinBatches {
		c.wg.Add(1)
		go jn.sender()
	}
}

func (jn *joiner) queue(j *joinReq) error {
	jn.mu.Lock()
	defer jn.mu.Unlock()
	if jn.closed {
		return coord.ErrClosed
	}
	jn.pending = append(jn.pending, j)
	jn.cond.Signal()
	return nil
}

// close stops the senders; joins still queued fail with ErrClosed.
func (jn *joiner) close() {
	jn.mu.Lock()
	jn.closed = true
	pending := jn.pending
	jn.pending = nil
	jn.cond.Broadcast()
	jn.mu.Unlock()
	for _, j := range pending {
		j.err = coord.ErrClosed
		close(j.done)
	}
}

// sender takes every pending join and sends them as one batch, until
// closed.
func (jn *joiner) sender() {
	defer jn.c.wg.Done()
	for {
		jn.mu.Lock()
		for len(jn.pending) == 0 && !jn.closed {
			jn.cond.Wait()
		}
		if jn.closed {
			jn.mu.Unlock()
			return
		}
		batch := jn.pending
		jn.pending = nil
		jn.mu.Unlock()
		jn.send(batch)
	}
}

// send runs one batch: its scripts in one round trip and, on a cluster,
// its events in a second; then every join learns its outcome.
func (jn *joiner) send(batch []*joinReq) {
	c := jn.c
	live := batch[:0]
	for _, j := range batch {
		if j.ctx.Err() != nil {
			close(j.done) // its caller has returned already
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(c.bg, c.opts.WriteTimeout)
	defer cancel()
	var ops []rop
	var parts []joinPart
	addPart := func(p joinPart, o rop) {
		parts = append(parts, p)
		ops = append(ops, o)
	}
	// Memberships, by the connection's partition.
	for _, group := range jn.groups(live, func(j *joinReq) int { return c.l.part(j.conn) }, false) {
		keys := make([]string, 0, 2*len(group))
		args := make([]string, 0, 2*len(group))
		for _, j := range group {
			keys = append(keys, c.l.memberKey(j.room, j.conn), c.l.connRooms(j.conn))
			args = append(args, j.conn, j.room)
		}
		addPart(joinPart{joins: group}, c.call(scriptRoomAddMany, keys, args...))
	}
	// Presence, by the room's partition, for the tracked joins.
	publish := c.publishName()
	if c.cluster {
		publish = ""
	}
	var earliest time.Duration
	for _, group := range jn.groups(live, func(j *joinReq) int { return c.l.presencePart(j.room) }, true) {
		p := c.l.presencePart(group[0].room)
		keys := make([]string, 0, 1+2*len(group))
		keys = append(keys, c.l.presenceDue(p))
		args := make([]string, 0, 2+4*len(group))
		args = append(args, publish, coord.PresenceTopicPrefix)
		for _, j := range group {
			keys = append(keys, c.l.presenceDeadlinesPrefix(p)+j.room, c.l.presenceMembersPrefix(p)+j.room)
			args = append(args, j.conn, ms(j.ttl), j.room, j.event)
			if earliest == 0 || j.ttl < earliest {
				earliest = j.ttl
			}
		}
		addPart(joinPart{joins: group, presence: true}, c.call(scriptPresenceJoinMany, keys, args...))
	}
	res := c.run(ctx, ops...)
	for i, r := range res {
		parts[i].apply(r)
	}
	if earliest > 0 {
		c.sweep.arm(earliest)
	}
	if c.cluster {
		jn.publishEvents(ctx, live)
	}
	for _, j := range live {
		close(j.done)
	}
}

// groups splits joins by partition (tracked joins only, if tracked) into
// chunks of at most JoinBatch, keeping their order.
func (jn *joiner) groups(joins []*joinReq, part func(*joinReq) int, tracked bool) [][]*joinReq {
	byPart := make(map[int][]*joinReq)
	var order []int
	for _, j := range joins {
		if tracked && j.ttl == 0 {
			continue
		}
		p := part(j)
		if _, ok := byPart[p]; !ok {
			order = append(order, p)
		}
		byPart[p] = append(byPart[p], j)
	}
	var out [][]*joinReq
	n := jn.c.opts.JoinBatch
	for _, p := range order {
		g := byPart[p]
		for len(g) > n {
			out = append(out, g[:n:n])
			g = g[n:]
		}
		out = append(out, g)
	}
	return out
}

// publishEvents publishes the join events of a cluster's fresh joins, in
// one round trip.
func (jn *joiner) publishEvents(ctx context.Context, joins []*joinReq) {
	c := jn.c
	var ops []rop
	var from []*joinReq
	for _, j := range joins {
		if j.err == nil && j.res.Fresh && j.event != "" {
			ops = append(ops, cmdOp(c.client.B().Spublish().Channel(coord.PresenceTopic(j.room)).Message(j.event).Build()))
			from = append(from, j)
		}
	}
	if len(ops) == 0 {
		return
	}
	for i, r := range c.run(ctx, ops...) {
		if err := r.Error(); err != nil {
			from[i].err = err
		}
	}
}

// joinPart is one script of a batch and the joins it carries.
type joinPart struct {
	joins    []*joinReq
	presence bool
}

// apply hands each join its part of the script's reply.
func (p joinPart) apply(r rueidis.RedisResult) {
	fail := func(err error) {
		for _, j := range p.joins {
			if j.err == nil {
				j.err = err
			}
		}
	}
	if !p.presence {
		flags, err := r.AsIntSlice()
		if err == nil && len(flags) != len(p.joins) {
			err = fmt.Errorf("room_add_many returned %d flags for %d joins", len(flags), len(p.joins))
		}
		if err != nil {
			fail(err)
			return
		}
		for i, j := range p.joins {
			j.res.Added = flags[i] == 1
		}
		return
	}
	v, err := r.ToArray()
	if err == nil && len(v) != 2 {
		err = fmt.Errorf("presence_join_many returned %d values", len(v))
	}
	var fresh []int64
	var lists []rueidis.RedisMessage
	if err == nil {
		fresh, err = v[0].AsIntSlice()
	}
	if err == nil {
		lists, err = v[1].ToArray()
	}
	if err == nil && len(fresh) != len(p.joins) {
		err = fmt.Errorf("presence_join_many returned %d flags for %d joins", len(fresh), len(p.joins))
	}
	if err != nil {
		fail(err)
		return
	}
	present := make(map[string][]string)
	for i, j := range p.joins {
		j.res.Fresh = fresh[i] == 1
		ids, ok := present[j.room]
		if !ok {
			k := len(present)
			if k >= len(lists) {
				fail(fmt.Errorf("presence_join_many returned %d lists, want more", len(lists)))
				return
			}
			if ids, err = lists[k].AsStrSlice(); err != nil {
				fail(err)
				return
			}
			if ids == nil {
				ids = []string{}
			}
			present[j.room] = ids
		}
		j.res.Present = ids
	}
}
