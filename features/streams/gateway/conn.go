package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/streams"
	"github.com/meshfast/meshfast/features/streams/store"
	"github.com/meshfast/meshfast/protocol/zps"
)

// conn is one gateway connection. Its messages are handled in order by a
// worker goroutine that exists while some wait (none for an idle
// connection), so that storage and the application's hooks never run on
// the event loop; every message is answered, in order, by one reply or
// one error (the events of its subscriptions come between them).
type conn struct {
	g   *Gateway
	ec  *engine.Conn
	ctx context.Context // ends with the connection
	end context.CancelFunc

	// The loop's.
	openedAt    int64
	windowStart int64
	windowCount int
	pingAt      int64 // when the unanswered ping was sent; 0: none

	initialized atomic.Bool
	closed      atomic.Bool

	mu      sync.Mutex // guards the rest; never held across a wait
	queue   []queued
	running bool // a worker is draining queue
	paused  bool // reading paused until the worker catches up
	subs    map[string]*sub
	esubs   map[string]*esub

	// The worker's, set by init.
	subscriberID string
	claims       map[string]any
}

// queued is a message waiting for the worker, or a refusal of one made on
// the loop (kept in line so that replies keep the messages' order).
type queued struct {
	msg  []byte
	code string
	text string
}

// sub is one subscription of a connection: a room (or pattern) the node
// follows, through one of its engine topics.
type sub struct {
	r     *room
	topic string
}

func newConn(g *Gateway, ec *engine.Conn) *conn {
	c := &conn{g: g, ec: ec}
	c.ctx, c.end = context.WithCancel(context.Background())
	return c
}

func (c *conn) isClosed() bool { return c.closed.Load() }

// onMessage queues a message for the worker, or its refusal. Loop only.
func (c *conn) onMessage(op engine.OpCode, p []byte) {
	l := &c.g.o.Limits
	q := queued{}
	if l.MaxMessagesPerWindow > 0 {
		now := c.ec.LastRead()
		if now-c.windowStart >= int64(l.RateLimitWindow) {
			c.windowStart, c.windowCount = now, 0
		}
		c.windowCount++
	}
	switch {
	case l.MaxMessagesPerWindow > 0 && c.windowCount > l.MaxMessagesPerWindow:
		q.code, q.text = zps.CodeRateLimited, fmt.Sprintf("Rate limit exceeded: at most %d messages per %v", l.MaxMessagesPerWindow, l.RateLimitWindow)
	case l.MaxPayloadBytes > 0 && len(p) > l.MaxPayloadBytes:
		q.code, q.text = zps.CodePayloadTooLarge, fmt.Sprintf("Payload too large: %d bytes, at most %d", len(p), l.MaxPayloadBytes)
	case op != engine.OpText:
		q.code, q.text = zps.CodeInvalidMessage, "Invalid message: messages are JSON text"
	default:
		q.msg = bytes.Clone(p)
	}
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		return
	}
	c.queue = append(c.queue, q)
	start := !c.running
	c.running = true
	pause := !c.paused && len(c.queue) >= c.g.o.QueueSize
	if pause {
		c.paused = true
	}
	c.mu.Unlock()
	if pause {
		c.ec.PauseReading()
	}
	if start {
		go c.work()
	}
}

// work handles queued messages until none is left.
func (c *conn) work() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 || c.closed.Load() {
			c.running = false
			c.mu.Unlock()
			return
		}
		q := c.queue[0]
		c.queue[0] = queued{}
		c.queue = c.queue[1:]
		resume := c.paused && len(c.queue) <= c.g.o.QueueSize/2
		if resume {
			c.paused = false
		}
		c.mu.Unlock()
		if resume {
			c.ec.ResumeReading()
		}
		c.handle(q)
	}
}

// onClose ends the connection's subscriptions. Loop only: what may wait
// runs on a goroutine.
func (c *conn) onClose() {
	c.mu.Lock()
	c.closed.Store(true)
	subs, esubs := c.subs, c.esubs
	c.subs, c.esubs, c.queue = nil, nil, nil
	c.mu.Unlock()
	c.end()
	if len(subs) == 0 && len(esubs) == 0 {
		return
	}
	go func() {
		for _, s := range subs {
			s.r.sh.post(item{kind: itemForget, r: s.r, c: c})
			c.g.release(s.r)
		}
		c.g.releaseEphs(esubs)
	}()
}

// onTimer enforces the init timeout and the heartbeat. Loop only.
func (c *conn) onTimer(now int64) {
	l := &c.g.o.Limits
	if !c.initialized.Load() && l.InitTimeout > 0 && now-c.openedAt >= int64(l.InitTimeout) {
		c.fatalLoop(zps.CodeInitTimeout, fmt.Sprintf("Init timeout: no init within %v", l.InitTimeout))
		return
	}
	if l.HeartbeatInterval > 0 {
		last := c.ec.LastRead()
		if c.pingAt != 0 {
			if last > c.pingAt {
				c.pingAt = 0
			} else if now-c.pingAt >= int64(l.HeartbeatTimeout) {
				c.ec.Close(engine.CloseGoingAway, "heartbeat timeout")
				return
			}
		}
		if c.pingAt == 0 && now-last >= int64(l.HeartbeatInterval) {
			_ = c.ec.WriteRaw(c.g.pingFrame)
			c.pingAt = now
		}
	}
	c.schedule(now)
}

// schedule sets the connection's timer to its next deadline. Loop only.
func (c *conn) schedule(now int64) {
	l := &c.g.o.Limits
	var next int64
	at := func(t int64) {
		if t <= now {
			t = now + 1
		}
		if next == 0 || t < next {
			next = t
		}
	}
	if !c.initialized.Load() && l.InitTimeout > 0 {
		at(c.openedAt + int64(l.InitTimeout))
	}
	if l.HeartbeatInterval > 0 {
		if c.pingAt != 0 {
			at(c.pingAt + int64(l.HeartbeatTimeout))
		} else {
			at(c.ec.LastRead() + int64(l.HeartbeatInterval))
		}
	}
	c.ec.SetTimer(next)
}

func (c *conn) reply(b []byte) { c.ec.SendText(b) }

// refuse answers the current message with an error.
func (c *conn) refuse(code, text string) {
	c.g.m.refused(code)
	c.reply(zps.AppendError(nil, text, code))
}

// fatal answers with an error and closes the connection with its code.
// Any goroutine.
func (c *conn) fatal(code, text string) {
	c.refuse(code, text)
	n, _ := strconv.Atoi(code)
	c.ec.CloseAsync(engine.CloseCode(n), closeReason(text))
}

// fatalLoop is fatal on the loop.
func (c *conn) fatalLoop(code, text string) {
	c.g.m.refused(code)
	_ = c.ec.WriteText(zps.AppendError(nil, text, code))
	n, _ := strconv.Atoi(code)
	c.ec.Close(engine.CloseCode(n), closeReason(text))
}

// closeReason fits text in a close frame's 123 bytes.
func closeReason(text string) string {
	if len(text) > 120 {
		return text[:120]
	}
	return text
}

// handle answers one message. Worker only.
func (c *conn) handle(q queued) {
	c.g.m.messages.Inc()
	if q.code != "" {
		c.refuse(q.code, q.text)
		return
	}
	var m zps.ClientMessage
	if err := zps.DecodeClientMessage(q.msg, &m); err != nil {
		c.refuse(zps.CodeInvalidMessage, "Invalid message: "+strings.TrimPrefix(err.Error(), zps.ErrInvalidMessage.Error()+": "))
		return
	}
	if m.Type != zps.TypeInit && !c.initialized.Load() {
		c.refuse(zps.CodeInitRequired, "Realtime connection must send init first")
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.g.o.RequestTimeout)
	defer cancel()
	switch m.Type {
	case zps.TypeInit:
		c.init(ctx, &m)
	case zps.TypeSubscribe:
		c.subscribe(ctx, &m)
	case zps.TypeUnsubscribe:
		c.unsubscribe(&m)
	case zps.TypePublish:
		c.publish(ctx, &m)
	case zps.TypeAck:
		c.ack(ctx, &m)
	case zps.TypeReplayRequest:
		c.replay(ctx, &m)
	case zps.TypeSubscribeEphemeral:
		c.subscribeEphemeral(ctx, &m)
	case zps.TypeUnsubscribeEphemeral:
		c.unsubscribeEphemeral(&m)
	case zps.TypePublishEphemeral:
		c.publishEphemeral(ctx, &m)
	}
}

func (c *conn) init(ctx context.Context, m *zps.ClientMessage) {
	if c.initialized.Load() {
		c.refuse(zps.CodeInvalidMessage, "Invalid message: the connection is already initialized")
		return
	}
	id := m.SubscriberID
	if id == "" {
		id = "anon-" + strconv.FormatUint(c.ec.ID(), 10)
	} else if err := zps.CheckName("subscriber id", id); err != nil {
		c.refuse(zps.CodeInvalidMessage, "Invalid message: "+trimZps(err))
		return
	}
	if verify := c.g.o.Auth.JWT; verify != nil {
		if m.Token == "" {
			c.fatal(zps.CodeUnauthorized, "Unauthorized: init carries no token")
			return
		}
		claims, err := verify(ctx, m.Token)
		if err != nil {
			c.fatal(zps.CodeUnauthorized, "Unauthorized: "+err.Error())
			return
		}
		c.claims = claims
	}
	c.subscriberID = id
	c.initialized.Store(true)
	c.reply(zps.AppendReady(nil, id))
}

func trimZps(err error) string {
	s := err.Error()
	for _, p := range []string{"zps: ", "streams: "} {
		s = strings.TrimPrefix(s, p)
	}
	return s
}

// allowed applies the scopes and Authorize to one action on room; it
// answers a refusal and reports false.
func (c *conn) allowed(ctx context.Context, room string, a Action) bool {
	auth := &c.g.o.Auth
	if len(auth.Scopes) > 0 && !slices.Contains(auth.Scopes, zps.ScopeOf(room)) {
		c.refuse(zps.CodeAccessDenied, "Access denied for room: "+room)
		return false
	}
	if auth.Authorize == nil {
		return true
	}
	ok, err := auth.Authorize(ctx, Access{SubscriberID: c.subscriberID, Claims: c.claims, Room: room, Action: a})
	switch {
	case err != nil:
		c.g.o.Logger.Warn("gateway: authorize failed", "room", room, "action", a, "err", err)
		c.refuse(zps.CodeServerError, "Authorization failed for room: "+room)
		return false
	case !ok:
		c.refuse(zps.CodeAccessDenied, "Access denied for room: "+room)
		return false
	}
	return true
}

// failed answers a streams error: a middleware's refusal as a denial, a
// bad argument as an invalid message, the rest as the server's.
func (c *conn) failed(room string, err error) {
	var be *streams.BlockedError
	switch {
	case errors.As(err, &be):
		c.refuse(zps.CodeAccessDenied, fmt.Sprintf("Access denied for room: %s (%v)", room, be.Err))
	case errors.Is(err, streams.ErrBlocked):
		c.refuse(zps.CodeAccessDenied, "Access denied for room: "+room)
	case errors.Is(err, streams.ErrInvalidRoom), errors.Is(err, streams.ErrInvalidPattern), errors.Is(err, streams.ErrInvalidName),
		errors.Is(err, streams.ErrInvalidJSON), errors.Is(err, streams.ErrInvalidOptions), errors.Is(err, streams.ErrAheadOfHead),
		errors.Is(err, streams.ErrReservedType):
		c.refuse(zps.CodeInvalidMessage, "Invalid message: "+trimZps(err))
	default:
		c.g.o.Logger.Warn("gateway: request failed", "room", room, "err", err)
		c.refuse(zps.CodeServerError, "Server error: "+trimZps(err))
	}
}

func (c *conn) checkTypes(types []string) bool {
	for _, t := range types {
		if err := zps.CheckName("event type", t); err != nil {
			c.refuse(zps.CodeInvalidMessage, "Invalid message: "+trimZps(err))
			return false
		}
	}
	return true
}

// maySubscribe runs what a subscribe of either kind passes before it is
// counted: the pattern's form, the event types, Authorize and the streams
// middleware; it answers a refusal itself. wildcard: m.Room is scope:*.
func (c *conn) maySubscribe(ctx context.Context, m *zps.ClientMessage) (wildcard, ok bool) {
	_, wildcard, err := zps.ParsePattern(m.Room)
	if err != nil {
		c.refuse(zps.CodeInvalidMessage, "Invalid message: "+trimZps(err))
		return false, false
	}
	if !c.checkTypes(m.EventTypes) || !c.allowed(ctx, m.Room, ActionSubscribe) {
		return false, false
	}
	op := &streams.Op{Action: streams.ActionSubscribe, Room: m.Room, SubscriberID: c.subscriberID}
	if err := c.g.st.Intercept(ctx, op, nil); err != nil {
		c.failed(m.Room, err)
		return false, false
	}
	return wildcard, true
}

// full reports whether a new subscription, durable or ephemeral, would
// pass MaxSubscriptions; c.mu held.
func (c *conn) full() bool {
	max := c.g.o.Limits.MaxSubscriptions
	return max > 0 && len(c.subs)+len(c.esubs) >= max
}

func (c *conn) refuseFull() {
	c.refuse(zps.CodeTooManySubscriptions, fmt.Sprintf("Too many subscriptions (at most %d)", c.g.o.Limits.MaxSubscriptions))
}

func (c *conn) subscribe(ctx context.Context, m *zps.ClientMessage) {
	g, st := c.g, c.g.st
	pattern := m.Room
	wildcard, ok := c.maySubscribe(ctx, m)
	if !ok {
		return
	}
	c.mu.Lock()
	old := c.subs[pattern]
	over := old == nil && c.full()
	if old != nil {
		delete(c.subs, pattern)
	}
	c.mu.Unlock()
	if over {
		c.refuseFull()
		return
	}
	if old != nil {
		c.leave(old) // a subscribe again starts over, from its own fromSequence
	}
	var start uint64
	if !wildcard {
		start = m.FromSequence
		if !m.HasFrom {
			var err error
			if start, err = st.Cursor(ctx, pattern, c.subscriberID); err != nil {
				c.failed(pattern, err)
				return
			}
		}
	}
	r, err := g.acquire(ctx, pattern, wildcard)
	if err != nil {
		c.failed(pattern, err)
		return
	}
	if !wildcard && start > r.last.Load() {
		// Further than this node has got: fine if the store has it (the
		// client saw it on a node ahead), not beyond the head.
		heads, err := st.Store().Heads(ctx, []string{pattern})
		if err != nil {
			g.release(r)
			c.failed(pattern, err)
			return
		}
		if start > heads[0] {
			g.release(r)
			c.refuse(zps.CodeInvalidMessage, fmt.Sprintf("Invalid message: fromSequence %d is beyond the last sequence of %s, %d", start, pattern, heads[0]))
			return
		}
	}
	s := &sub{r: r, topic: topicName(pattern, m.EventTypes)}
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		g.release(r)
		return
	}
	if c.subs == nil {
		c.subs = make(map[string]*sub)
	}
	c.subs[pattern] = s
	c.mu.Unlock()
	c.reply(zps.AppendSubscribed(nil, pattern))
	c.catchUp(s, m.EventTypes, start)
}

// catchUp sends the room's events after pos, from the store while they
// are behind what the node keeps in memory, then hands the connection to
// the room's shard, which sends the rest and subscribes it (rooms.go).
func (c *conn) catchUp(s *sub, types []string, pos uint64) {
	r := s.r
	r.catching.Add(1) // before reading base and last: see room.catching
	defer r.catching.Add(-1)
	for {
		if !r.wildcard && pos < r.base.Load() {
			var ok bool
			if pos, ok = c.sendFromStore(r.key, types, pos, r.last.Load()); !ok {
				return
			}
			continue
		}
		j := &join{c: c, r: r, topic: s.topic, types: types, pos: pos, done: make(chan joinResult, 1)}
		if !r.sh.post(item{kind: itemJoin, j: j}) {
			return
		}
		if <-j.done != needStore {
			return
		}
	}
}

// sendFromStore sends room's events in (pos, to] and returns the last
// sequence it examined; false when the connection went away. A store
// failure is retried, with backoff, while the connection lasts.
func (c *conn) sendFromStore(room string, types []string, pos, to uint64) (uint64, bool) {
	g := c.g
	req := store.ReadRequest{Room: room, After: pos, To: to, Limit: g.o.CatchUpBatch, Types: types}
	delay := 50 * time.Millisecond
	for {
		page, err := g.st.Store().Read(c.ctx, req)
		if err != nil {
			if c.ctx.Err() != nil {
				return pos, false
			}
			g.o.Logger.Warn("gateway: catch-up read failed; retrying", "room", room, "err", err, "in", delay)
			select {
			case <-c.ctx.Done():
				return pos, false
			case <-time.After(delay):
			}
			delay = min(2*delay, 2*time.Second)
			continue
		}
		delay = 50 * time.Millisecond
		if !c.sendEvents(page.Events) {
			return pos, false
		}
		pos = page.Last
		if page.Done(&req) {
			return pos, true
		}
		req.After = page.Last
	}
}

// sendEvents writes events to the connection, each as an event message,
// in chunks of a quarter of what it may owe, and waits while it owes more
// than half of that: a client reading a long backlog is paced rather than
// closed as a slow consumer. One that stops reading for HeartbeatTimeout
// (or 10s without a heartbeat) is closed as one.
func (c *conn) sendEvents(evs []zps.Event) bool {
	limit := c.g.o.Limits.MaxSocketBufferedBytes
	if limit <= 0 {
		limit = c.g.e.Options().MaxPendingBytes
	}
	chunk := make([]*engine.Frame, 0, 64)
	size := 0
	flush := func() bool {
		if len(chunk) == 0 {
			return true
		}
		buffered := 0
		ok := c.ec.DoWait(func(ec *engine.Conn) {
			for _, f := range chunk {
				_ = ec.WriteFrame(f)
			}
			buffered = ec.Buffered()
		})
		for i, f := range chunk {
			f.Release()
			chunk[i] = nil
		}
		c.g.m.caught.Add(uint64(len(chunk)))
		chunk, size = chunk[:0], 0
		return ok && c.pace(buffered, limit/2)
	}
	for i := range evs {
		f := engine.AcquireFrame()
		f.SetPayload(engine.OpText, zps.AppendEventMessage(f.PayloadBuf(), &evs[i]))
		chunk = append(chunk, f)
		size += len(f.Bytes())
		if size >= limit/4 {
			if !flush() {
				return false
			}
		}
	}
	return flush()
}

// pace waits until the connection owes at most high bytes.
func (c *conn) pace(buffered, high int) bool {
	if buffered <= high {
		return true
	}
	patience := c.g.o.Limits.HeartbeatTimeout
	if patience <= 0 {
		patience = 10 * time.Second
	}
	deadline := time.Now().Add(patience)
	wait := time.Millisecond
	for buffered > high {
		if time.Now().After(deadline) {
			c.ec.CloseAsync(engine.CloseTryAgainLater, "slow consumer")
			return false
		}
		select {
		case <-c.ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, 50*time.Millisecond)
		if !c.ec.DoWait(func(ec *engine.Conn) { buffered = ec.Buffered() }) {
			return false
		}
	}
	return true
}

// leave ends one subscription the caller has taken out of c.subs.
func (c *conn) leave(s *sub) {
	c.ec.DoWait(func(ec *engine.Conn) { c.g.e.Unsubscribe(ec, s.topic) })
	c.g.release(s.r)
}

func (c *conn) unsubscribe(m *zps.ClientMessage) {
	c.mu.Lock()
	s := c.subs[m.Room]
	delete(c.subs, m.Room)
	c.mu.Unlock()
	if s != nil {
		c.leave(s)
	}
	c.reply(zps.AppendUnsubscribed(nil, m.Room))
}

func (c *conn) publish(ctx context.Context, m *zps.ClientMessage) {
	if !c.g.o.Limits.AllowClientPublish {
		c.refuse(zps.CodePublishDisabled, "Client publish is disabled")
		return
	}
	e := &m.Event
	if _, _, err := zps.ParseRoom(e.Room); err != nil {
		c.refuse(zps.CodeInvalidMessage, "Invalid message: "+trimZps(err))
		return
	}
	if !c.allowed(ctx, e.Room, ActionPublish) {
		return
	}
	p, err := c.g.st.Publish(ctx, streams.Message{ID: e.ID, Room: e.Room, Type: e.Type, Payload: e.Payload,
		Metadata: e.Metadata, Encrypted: e.Encrypted, TTL: time.Duration(e.TTLMs) * time.Millisecond})
	if err != nil {
		c.failed(e.Room, err)
		return
	}
	c.reply(zps.AppendPublished(nil, p.Room, p.Sequence, p.ID))
}

func (c *conn) ack(ctx context.Context, m *zps.ClientMessage) {
	if _, _, err := zps.ParseRoom(m.Room); err != nil {
		c.refuse(zps.CodeInvalidMessage, "Invalid message: "+trimZps(err))
		return
	}
	if !c.allowed(ctx, m.Room, ActionAck) {
		return
	}
	if err := c.g.st.Ack(ctx, m.Room, m.Sequence, c.subscriberID); err != nil {
		if errors.Is(err, streams.ErrAheadOfHead) {
			c.refuse(zps.CodeInvalidMessage, fmt.Sprintf("Invalid message: sequence %d is beyond the last sequence of %s", m.Sequence, m.Room))
			return
		}
		c.failed(m.Room, err)
		return
	}
	c.reply(zps.AppendAck(nil, m.Room, m.Sequence))
}

func (c *conn) replay(ctx context.Context, m *zps.ClientMessage) {
	if _, _, err := zps.ParseRoom(m.Room); err != nil {
		c.refuse(zps.CodeInvalidMessage, "Invalid message: "+trimZps(err))
		return
	}
	if !c.checkTypes(m.EventTypes) || !c.allowed(ctx, m.Room, ActionReplay) {
		return
	}
	limit := m.Limit
	if limit == 0 {
		limit = c.g.o.ReplayLimit
	}
	limit = min(limit, c.g.o.MaxReplayLimit)
	res, err := c.g.st.Replay(ctx, streams.ReplayOptions{Room: m.Room, FromSequence: m.FromSequence, ToSequence: m.ToSequence,
		EventTypes: m.EventTypes, Limit: limit})
	if err != nil {
		c.failed(m.Room, err)
		return
	}
	c.reply(zps.AppendReplay(nil, m.Room, res.Events))
}
