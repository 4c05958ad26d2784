package mesh

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"sync"
	"time"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/internal/ratelog"
	"github.com/meshfast/meshfast/protocol"
)

// DefaultPresenceTTL is the default of PresenceOptions.TTL (Mesh's 30 s).
const DefaultPresenceTTL = 30 * time.Second

// PresenceOptions configures a tracked room pattern.
type PresenceOptions struct {
	// TTL is how long a connection stays present without a pong to refresh
	// it. Zero means DefaultPresenceTTL. Keep it above the ping interval.
	TTL time.Duration
	// Guard gates presence subscriptions and state changes (not joins).
	Guard Guard
}

type tracked struct {
	exact string
	re    *regexp.Regexp
	opts  PresenceOptions
}

// presence is the server's presence feature: tracked patterns, the batch
// of TTL refreshes collected from pongs, and expiry events to publish.
type presence struct {
	s        *Server
	mu       sync.RWMutex
	patterns []tracked

	refreshMu sync.Mutex
	refresh   []coord.PresenceEntry
	kick      chan struct{}
	expiries  chan coord.Expiry
	stopExp   func()

	fullLog    ratelog.Limiter // expiries dropped on a full queue
	publishLog ratelog.Limiter // presence events the coordinator refused
}

// TrackPresence tracks presence in the room name. Tracking it again
// replaces its options.
func (s *Server) TrackPresence(room string, o PresenceOptions) {
	s.pres.track(tracked{exact: room, opts: o})
}

// TrackPresencePattern tracks presence in every room matching re.
func (s *Server) TrackPresencePattern(re *regexp.Regexp, o PresenceOptions) {
	s.pres.track(tracked{re: re, opts: o})
}

func (p *presence) track(t tracked) {
	if t.opts.TTL <= 0 {
		t.opts.TTL = DefaultPresenceTTL
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, old := range p.patterns {
		if (t.re == nil && old.re == nil && old.exact == t.exact) ||
			(t.re != nil && old.re != nil && old.re.String() == t.re.String()) {
			p.patterns[i] = t
			return
		}
	}
	p.patterns = append(p.patterns, t)
}

// lookup returns the options for room: an exact name wins over patterns
// (Mesh takes the first registered match; an exact name registered after a
// catch-all pattern would then never apply, which is never what was meant),
// then the first matching pattern.
func (p *presence) lookup(room string) (PresenceOptions, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, t := range p.patterns {
		if t.re == nil && t.exact == room {
			return t.opts, true
		}
	}
	for _, t := range p.patterns {
		if t.re != nil && t.re.MatchString(room) {
			return t.opts, true
		}
	}
	return PresenceOptions{}, false
}

// allowed reports whether room is tracked and its guard admits c.
func (p *presence) allowed(c *Connection, room string) (PresenceOptions, bool) {
	o, ok := p.lookup(room)
	if !ok {
		return o, false
	}
	return o, o.Guard == nil || o.Guard(c, room)
}

func (p *presence) start(s *Server) {
	p.s = s
	p.kick = make(chan struct{}, 1)
	p.expiries = make(chan coord.Expiry, 4096)
	p.stopExp = s.co.OnPresenceExpiry(func(e coord.Expiry) {
		select {
		case p.expiries <- e:
		default: // a burst past the buffer: the entry is gone, its event is lost
			if ok, more := p.fullLog.Allow(); ok {
				s.log.Warn("mesh: presence expiry queue full; expiry events dropped", "room", e.Room, "conn", e.ConnID,
					"more_dropped_since_last_line", more)
			}
		}
	})
	s.pongHook = p.onPong
	s.presenceHook = p.removed
	s.bg.Add(2)
	go p.flushLoop()
	go p.expiryLoop()
}

// publishEvent sends a presence update to the room's subscribers on every node.
func (p *presence) publishEvent(ctx context.Context, typ, connID, room string, state []byte) {
	frame := protocol.AppendPresenceUpdate(nil, typ, connID, room, time.Now().UnixMilli(), state)
	if err := p.s.co.Publish(ctx, coord.PresenceTopic(room), frame); err != nil {
		if ok, more := p.publishLog.Allow(); ok {
			p.s.log.Warn("mesh: publishing a presence event failed", "type", typ, "room", room, "err", err,
				"more_failed_since_last_line", more)
		}
	}
}

func (p *presence) leaveID(ctx context.Context, connID, room string) error {
	if _, ok := p.lookup(room); !ok {
		return nil
	}
	was, err := p.s.co.LeavePresence(ctx, room, connID)
	if err != nil {
		return err
	}
	if was {
		p.publishEvent(ctx, protocol.PresenceLeave, connID, room, nil)
	}
	return nil
}

// removed publishes a leave for every room a disconnected connection was
// present in.
func (p *presence) removed(ctx context.Context, r coord.RemovedConnection) {
	for _, room := range r.Present {
		p.publishEvent(ctx, protocol.PresenceLeave, r.ConnID, room, nil)
	}
}

// onPong queues a TTL refresh for every room c is present in; a flusher
// sends them to the coordinator in one batch. Runs on the loop.
func (p *presence) onPong(c *Connection) {
	a := c.active.Load()
	if a == nil {
		return // never present anywhere
	}
	a.mu.Lock()
	if len(a.present) == 0 {
		a.mu.Unlock()
		return
	}
	p.refreshMu.Lock()
	for room, ttl := range a.present {
		p.refresh = append(p.refresh, coord.PresenceEntry{Room: room, ConnID: c.id, TTL: ttl})
	}
	p.refreshMu.Unlock()
	a.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// refreshBatchDelay lets pongs that arrive together share one round trip.
const refreshBatchDelay = 5 * time.Millisecond

func (p *presence) flushLoop() {
	defer p.s.bg.Done()
	var batch []coord.PresenceEntry
	for {
		select {
		case <-p.s.stop:
			return
		case <-p.kick:
		}
		select {
		case <-p.s.stop:
			return
		case <-time.After(refreshBatchDelay):
		}
		p.refreshMu.Lock()
		batch, p.refresh = p.refresh, batch[:0]
		p.refreshMu.Unlock()
		if len(batch) == 0 {
			continue
		}
		ctx, cancel := p.s.ctx()
		if err := p.s.co.RefreshPresence(ctx, batch); err != nil {
			p.s.log.Warn("mesh: presence refresh failed", "entries", len(batch), "err", err)
		}
		cancel()
		clear(batch)
	}
}

// expiryLoop turns the coordinator's expiry reports into events.
func (p *presence) expiryLoop() {
	defer p.s.bg.Done()
	for {
		select {
		case <-p.s.stop:
			return
		case e := <-p.expiries:
			ctx, cancel := p.s.ctx()
			switch e.Kind {
			case coord.ExpiredPresence:
				if c := p.s.Connection(e.ConnID); c != nil {
					c.setPresent(e.Room, 0)
				}
				p.publishEvent(ctx, protocol.PresenceLeave, e.ConnID, e.Room, nil)
			case coord.ExpiredState:
				p.publishEvent(ctx, protocol.PresenceState, e.ConnID, e.Room, nil)
			}
			cancel()
		}
	}
}

// PresentConnections returns the connections present in room.
func (s *Server) PresentConnections(ctx context.Context, room string) ([]string, error) {
	return s.co.PresentConnections(ctx, room)
}

// PresenceStates returns the presence states in room by connection id.
func (s *Server) PresenceStates(ctx context.Context, room string) (map[string]json.RawMessage, error) {
	m, err := s.co.PresenceStates(ctx, room)
	if err != nil {
		return nil, err
	}
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out, nil
}

// isFalsy reports whether raw JSON is a JavaScript falsy value, which
// Mesh refuses as a presence state.
func isFalsy(raw json.RawMessage) bool {
	switch string(raw) {
	case "", "null", "false", "0", `""`, "-0", "0.0":
		return true
	}
	return false
}

func (s *Server) registerPresenceBuiltins() {
	p := &s.pres
	s.Expose(protocol.CmdSubscribePresence, func(c *Context) (any, error) {
		var req protocol.SubscribePresenceRequest
		fail := protocol.SubscribePresenceReply{Success: false, Present: []string{}}
		if c.Bind(&req) != nil {
			return fail, nil
		}
		if _, ok := p.allowed(c.Conn, req.RoomName); !ok {
			return fail, nil
		}
		if !s.maySubscribeMore(c.Conn, presenceSource, req.RoomName) {
			return nil, errTooManySubs
		}
		fresh := s.subs.holds(c.Conn, presenceSource, req.RoomName) == nil
		if err := s.subs.take(c, c.Conn, presenceRoute, req.RoomName); err != nil {
			if errors.Is(err, errConnectionGone) || errors.Is(err, errSubscriptionChanged) {
				return fail, nil // closed, or unsubscribed meanwhile
			}
			return nil, s.coordFailed(c.Command, err)
		}
		snap, err := s.co.PresenceSnapshot(c, req.RoomName)
		if err != nil {
			if fresh { // the client is told it failed: leave nothing behind
				s.subs.drop(context.WithoutCancel(c), c.Conn, presenceSource, req.RoomName)
			}
			return nil, s.coordFailed(c.Command, err)
		}
		states := make(map[string]json.RawMessage, len(snap.States))
		for k, v := range snap.States {
			states[k] = v
		}
		present := snap.Present
		if present == nil {
			present = []string{}
		}
		return protocol.SubscribePresenceReply{Success: true, Present: present, States: states}, nil
	})
	s.Expose(protocol.CmdUnsubscribePresence, func(c *Context) (any, error) {
		var req protocol.UnsubscribePresenceRequest
		if c.Bind(&req) != nil {
			return false, nil
		}
		return s.subs.drop(c, c.Conn, presenceSource, req.RoomName), nil
	})
	s.Expose(protocol.CmdPublishPresenceState, func(c *Context) (any, error) {
		var req protocol.PublishPresenceStateRequest
		if c.Bind(&req) != nil || isFalsy(req.State) || req.ExpireAfter < 0 {
			return false, nil
		}
		if _, ok := p.allowed(c.Conn, req.RoomName); !ok {
			return false, nil
		}
		in, err := s.co.IsInRoom(c, req.RoomName, c.Conn.id)
		if err != nil {
			return nil, s.coordFailed(c.Command, err)
		}
		if !in {
			return false, nil
		}
		expire := time.Duration(req.ExpireAfter) * time.Millisecond
		if err := s.co.SetPresenceState(c, req.RoomName, c.Conn.id, req.State, expire); err != nil {
			return nil, s.coordFailed(c.Command, err)
		}
		p.publishEvent(c, protocol.PresenceState, c.Conn.id, req.RoomName, req.State)
		return true, nil
	})
	s.Expose(protocol.CmdClearPresenceState, func(c *Context) (any, error) {
		var req protocol.ClearPresenceStateRequest
		if c.Bind(&req) != nil {
			return false, nil
		}
		if _, ok := p.allowed(c.Conn, req.RoomName); !ok {
			return false, nil
		}
		in, err := s.co.IsInRoom(c, req.RoomName, c.Conn.id)
		if err != nil {
			return nil, s.coordFailed(c.Command, err)
		}
		if !in {
			return false, nil
		}
		if _, err := s.co.ClearPresenceState(c, req.RoomName, c.Conn.id); err != nil {
			return nil, s.coordFailed(c.Command, err)
		}
		p.publishEvent(c, protocol.PresenceState, c.Conn.id, req.RoomName, nil)
		return true, nil
	})
}
