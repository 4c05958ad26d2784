package streams

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshfast/meshfast/protocol/zps"
)

// Presence is built on ephemeral events, on the room's ephemeral topic,
// with types of its own:
//
//	presence.enter      payload {userId, metadata, lastSeenAt}: a user entered
//	presence.heartbeat  the same, every PresenceHeartbeat while they stay
//	presence.leave      payload {userId}: they left
//	presence.sync       no payload: a node started following the room's
//	                    presence; every node announces its users again
//
// A node follows a room's presence (a tracker) while it has local presence
// subscribers: it keeps the users it heard of, and forgets one not heard
// of for PresenceTTL (its node died). The users a node entered are
// announced by that node: at Enter, on every heartbeat and when asked by a
// sync, until Leave or Close.
const (
	presenceEnter     = "presence.enter"
	presenceHeartbeat = "presence.heartbeat"
	presenceLeave     = "presence.leave"
	presenceSync      = "presence.sync"
)

type presence struct {
	s *Streams

	mu       sync.Mutex
	entered  map[string]*enteredRoom // room → the users this node entered
	trackers map[string]*tracker     // room → its tracker, while it has subscribers

	stopc chan struct{}
	wg    sync.WaitGroup
}

type enteredRoom struct {
	users map[string]PresenceUser
	stop  func() // the listener that answers sync requests
}

type tracker struct {
	room string
	stop func()

	mu    sync.Mutex
	users map[string]trackedUser
	subs  map[*PresenceSubscription]struct{}
}

type trackedUser struct {
	u    PresenceUser
	seen time.Time // local clock, for the TTL: immune to the publisher's
}

func newPresence(s *Streams) *presence {
	return &presence{s: s, entered: make(map[string]*enteredRoom), trackers: make(map[string]*tracker), stopc: make(chan struct{})}
}

func (p *presence) start() {
	p.wg.Add(1)
	go p.loop()
}

func (p *presence) stop() {
	close(p.stopc)
	p.wg.Wait()
}

// loop announces this node's users and expires the trackers' silent ones.
func (p *presence) loop() {
	defer p.wg.Done()
	hb := p.s.opts.PresenceHeartbeat
	t := time.NewTicker(hb / 2)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-p.stopc:
			return
		case now := <-t.C:
			if now.Sub(last) >= hb {
				last = now
				p.heartbeat()
			}
			p.sweep(now)
		}
	}
}

func (p *presence) heartbeat() {
	p.mu.Lock()
	rooms := make([]string, 0, len(p.entered))
	for r := range p.entered {
		rooms = append(rooms, r)
	}
	p.mu.Unlock()
	for _, r := range rooms {
		p.announce(r)
	}
}

// announce publishes a heartbeat for every user this node entered in room.
func (p *presence) announce(room string) {
	p.mu.Lock()
	er := p.entered[room]
	var users []PresenceUser
	if er != nil {
		for _, u := range er.users {
			users = append(users, u)
		}
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), fanoutTimeout)
	defer cancel()
	for _, u := range users {
		u.LastSeenAt = zps.Millis(time.Now())
		if err := p.s.publishEphemeral(ctx, &EphemeralEvent{Room: room, Type: presenceHeartbeat, Payload: u.AppendJSON(nil)}); err != nil {
			p.s.opts.Logger.Warn("streams: presence heartbeat failed", "room", room, "err", err)
		}
	}
}

func (p *presence) sweep(now time.Time) {
	p.mu.Lock()
	ts := make([]*tracker, 0, len(p.trackers))
	for _, t := range p.trackers {
		ts = append(ts, t)
	}
	p.mu.Unlock()
	ttl := p.s.opts.PresenceTTL
	for _, t := range ts {
		t.mu.Lock()
		changed := false
		for id, tu := range t.users {
			if now.Sub(tu.seen) > ttl {
				delete(t.users, id)
				changed = true
			}
		}
		if changed {
			t.notifyLocked()
		}
		t.mu.Unlock()
	}
}

// leaveAll announces that every user this node entered left (Close).
func (p *presence) leaveAll(ctx context.Context) {
	p.mu.Lock()
	var leaves []EphemeralEvent
	for room, er := range p.entered {
		for id := range er.users {
			leaves = append(leaves, EphemeralEvent{Room: room, Type: presenceLeave, Payload: (&PresenceUser{UserID: id}).AppendJSON(nil)})
		}
		er.stop()
	}
	p.entered = make(map[string]*enteredRoom)
	p.mu.Unlock()
	for i := range leaves {
		_ = p.s.publishEphemeral(ctx, &leaves[i])
	}
}

// PresenceHandle is the presence of one room (the document's
// client.presence(room)).
type PresenceHandle struct {
	s    *Streams
	room string
}

// Presence returns room's presence. The room is validated by each call.
func (s *Streams) Presence(room string) *PresenceHandle { return &PresenceHandle{s: s, room: room} }

// Enter makes u present in the room, announced by this node until Leave,
// Close, or the node's death (then it lapses after PresenceTTL). Entering
// again updates the metadata. LastSeenAt is set by the node.
func (h *PresenceHandle) Enter(ctx context.Context, u PresenceUser) error {
	s := h.s
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("streams: presence enter: %w", err)
	}
	if _, _, err := zps.ParseRoom(h.room); err != nil {
		return fmt.Errorf("streams: presence enter: %w", err)
	}
	return s.intercept(ctx, &Op{Action: ActionPresenceEnter, Room: h.room, User: &u}, func(ctx context.Context) error {
		if err := zps.CheckName("user id", u.UserID); err != nil {
			return fmt.Errorf("streams: presence enter: %w", err)
		}
		if err := zps.CheckPayload(nil, u.Metadata); err != nil {
			return fmt.Errorf("streams: presence enter: %w", err)
		}
		u.Metadata = append([]byte(nil), u.Metadata...)
		if len(u.Metadata) == 0 {
			u.Metadata = nil
		}
		if err := h.entered(ctx, u); err != nil {
			return err
		}
		u.LastSeenAt = zps.Millis(time.Now())
		return s.publishEphemeral(ctx, &EphemeralEvent{Room: h.room, Type: presenceEnter, Payload: u.AppendJSON(nil)})
	})
}

// entered records u as entered from this node, listening for sync
// requests in the room from the first user on.
func (h *PresenceHandle) entered(ctx context.Context, u PresenceUser) error {
	p := h.s.pres
	p.mu.Lock()
	er := p.entered[h.room]
	if er != nil {
		er.users[u.UserID] = u
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	room := h.room
	stop, err := h.s.ListenEphemeral(ctx, room, func(ev *EphemeralEvent) {
		if ev.Type == presenceSync {
			go p.announce(room) // a handler must not block
		}
	})
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if er = p.entered[room]; er != nil { // entered concurrently
		stop()
		er.users[u.UserID] = u
		return nil
	}
	p.entered[room] = &enteredRoom{users: map[string]PresenceUser{u.UserID: u}, stop: stop}
	return nil
}

// Leave removes a user this node entered.
func (h *PresenceHandle) Leave(ctx context.Context, userID string) error {
	s := h.s
	if err := s.check(ctx); err != nil {
		return fmt.Errorf("streams: presence leave: %w", err)
	}
	if _, _, err := zps.ParseRoom(h.room); err != nil {
		return fmt.Errorf("streams: presence leave: %w", err)
	}
	u := PresenceUser{UserID: userID}
	return s.intercept(ctx, &Op{Action: ActionPresenceLeave, Room: h.room, User: &u}, func(ctx context.Context) error {
		if err := zps.CheckName("user id", u.UserID); err != nil {
			return fmt.Errorf("streams: presence leave: %w", err)
		}
		p := s.pres
		p.mu.Lock()
		if er := p.entered[h.room]; er != nil {
			delete(er.users, u.UserID)
			if len(er.users) == 0 {
				delete(p.entered, h.room)
				defer er.stop()
			}
		}
		p.mu.Unlock()
		return s.publishEphemeral(ctx, &EphemeralEvent{Room: h.room, Type: presenceLeave, Payload: u.AppendJSON(nil)})
	})
}

// PresenceSubscription receives a room's presence; Close ends it.
type PresenceSubscription struct {
	s     *Streams
	t     *tracker
	fn    func([]PresenceUser)
	mu    sync.Mutex
	last  []PresenceUser // the latest list, not yet handed to fn
	fresh bool
	wake  chan struct{}
	done  chan struct{}
	stopc chan struct{}
	once  sync.Once
	inFn  atomic.Bool
}

// Subscribe calls fn with the room's present users, sorted by id: at once
// with what this node knows, then after each change. Calls are made one at
// a time on a goroutine of the subscription; a slow fn skips to the latest
// list.
func (h *PresenceHandle) Subscribe(ctx context.Context, fn func(users []PresenceUser)) (*PresenceSubscription, error) {
	s := h.s
	if err := s.check(ctx); err != nil {
		return nil, fmt.Errorf("streams: presence subscribe: %w", err)
	}
	if _, _, err := zps.ParseRoom(h.room); err != nil {
		return nil, fmt.Errorf("streams: presence subscribe: %w", err)
	}
	if fn == nil {
		return nil, fmt.Errorf("streams: presence subscribe: %w: no callback", ErrInvalidOptions)
	}
	sub := &PresenceSubscription{s: s, fn: fn, wake: make(chan struct{}, 1), done: make(chan struct{}), stopc: make(chan struct{})}
	if err := s.pres.track(ctx, h.room, sub); err != nil {
		return nil, err
	}
	if !s.track(sub) {
		sub.detach()
		return nil, fmt.Errorf("streams: presence subscribe: %w", ErrClosed)
	}
	go sub.run()
	return sub, nil
}

// track adds sub to room's tracker, creating the tracker (and asking
// every node for its users) on the first subscriber, and offers sub the
// current list.
func (p *presence) track(ctx context.Context, room string, sub *PresenceSubscription) error {
	add := func(t *tracker) {
		sub.t = t
		t.mu.Lock()
		t.subs[sub] = struct{}{}
		sub.offer(t.listLocked())
		t.mu.Unlock()
	}
	p.mu.Lock()
	if t := p.trackers[room]; t != nil {
		add(t) // under p.mu: a detach cannot drop t meanwhile
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	t := &tracker{room: room, users: make(map[string]trackedUser), subs: make(map[*PresenceSubscription]struct{})}
	stop, err := p.s.ListenEphemeral(ctx, room, t.onEvent)
	if err != nil {
		return err
	}
	t.stop = stop
	p.mu.Lock()
	if cur := p.trackers[room]; cur != nil { // created concurrently
		add(cur)
		p.mu.Unlock()
		stop()
		return nil
	}
	p.trackers[room] = t
	add(t)
	p.mu.Unlock()
	if err := p.s.publishEphemeral(ctx, &EphemeralEvent{Room: room, Type: presenceSync}); err != nil {
		p.s.opts.Logger.Warn("streams: presence sync request failed; users appear at their next heartbeat", "room", room, "err", err)
	}
	return nil
}

// onEvent applies a presence event; it runs on a coordinator goroutine.
func (t *tracker) onEvent(ev *EphemeralEvent) {
	var u PresenceUser
	switch ev.Type {
	case presenceEnter, presenceHeartbeat, presenceLeave:
		if err := zps.DecodePresenceUser(ev.Payload, &u); err != nil {
			return
		}
	default:
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	cur, had := t.users[u.UserID]
	if ev.Type == presenceLeave {
		if had {
			delete(t.users, u.UserID)
			t.notifyLocked()
		}
		return
	}
	u.Metadata = append([]byte(nil), u.Metadata...) // ev's bytes belong to the coordinator's message
	if len(u.Metadata) == 0 {
		u.Metadata = nil
	}
	t.users[u.UserID] = trackedUser{u: u, seen: time.Now()}
	if !had || string(cur.u.Metadata) != string(u.Metadata) || !cur.u.LastSeenAt.Equal(u.LastSeenAt) {
		t.notifyLocked()
	}
}

func (t *tracker) listLocked() []PresenceUser {
	out := make([]PresenceUser, 0, len(t.users))
	for _, tu := range t.users {
		out = append(out, tu.u)
	}
	slices.SortFunc(out, func(a, b PresenceUser) int { return cmp.Compare(a.UserID, b.UserID) })
	return out
}

func (t *tracker) notifyLocked() {
	if len(t.subs) == 0 {
		return
	}
	list := t.listLocked()
	for sub := range t.subs {
		sub.offer(list)
	}
}

func (sub *PresenceSubscription) offer(list []PresenceUser) {
	sub.mu.Lock()
	sub.last, sub.fresh = list, true
	sub.mu.Unlock()
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

func (sub *PresenceSubscription) run() {
	defer close(sub.done)
	for {
		select {
		case <-sub.stopc:
			return
		case <-sub.wake:
		}
		sub.mu.Lock()
		list, fresh := sub.last, sub.fresh
		sub.last, sub.fresh = nil, false
		sub.mu.Unlock()
		if !fresh {
			continue
		}
		select {
		case <-sub.stopc:
			return
		default:
		}
		sub.inFn.Store(true)
		sub.fn(list)
		sub.inFn.Store(false)
	}
}

// detach removes the subscription from its tracker, dropping the tracker
// with its last subscriber.
func (sub *PresenceSubscription) detach() {
	t, p := sub.t, sub.s.pres
	p.mu.Lock()
	t.mu.Lock()
	delete(t.subs, sub)
	last := len(t.subs) == 0
	t.mu.Unlock()
	if last && p.trackers[t.room] == t {
		delete(p.trackers, t.room)
	} else {
		last = false
	}
	p.mu.Unlock()
	if last {
		t.stop()
	}
}

// Close ends the subscription; fn is not called once it returned, unless
// Close is called from fn. Idempotent.
func (sub *PresenceSubscription) Close() error {
	sub.once.Do(func() {
		sub.detach()
		close(sub.stopc)
		sub.s.untrack(sub)
	})
	if !sub.inFn.Load() {
		<-sub.done
	}
	return nil
}
