package client

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/meshfast/meshfast/protocol"
)

// connLost is called exactly once per connection, by whoever closed it.
func (c *Client) connLost(cn *conn, cause error) {
	c.mu.Lock()
	if c.conn.Load() != cn {
		c.mu.Unlock()
		cn.failPending(ErrConnectionLost)
		return
	}
	c.conn.Store(nil)
	c.connID = ""
	switch {
	case c.closed:
		// Close takes care of status and events.
	case c.status == Online:
		c.logf("connection lost: %v", cause)
		c.emit(&c.h.close)
		if c.opts.NoReconnect {
			c.offlineErr = ErrNotConnected
			c.setStatusLocked(Offline)
		} else {
			c.reconnecting = true
			c.setStatusLocked(Reconnecting)
			c.wg.Add(1)
			go c.reconnectLoop()
		}
	default:
		// Connecting or Reconnecting: the code establishing cn notices.
		c.notifyLocked()
	}
	closed := c.closed
	c.mu.Unlock()
	if closed {
		cn.failPending(ErrClosed)
	} else {
		cn.failPending(ErrConnectionLost)
	}
}

// reconnectLoop dials until a connection is established, the attempts run
// out, or the client is closed.
func (c *Client) reconnectLoop() {
	defer c.wg.Done()
	for attempt := 1; ; attempt++ {
		if max := c.opts.MaxReconnectAttempts; max > 0 && attempt > max {
			c.mu.Lock()
			if !c.closed {
				c.reconnecting = false
				c.offlineErr = ErrReconnectFailed
				c.setStatusLocked(Offline)
				c.emit(&c.h.reconnectFailed)
			}
			c.mu.Unlock()
			return
		}
		t := time.NewTimer(c.opts.backoff(attempt))
		select {
		case <-c.stop.Done():
			t.Stop()
			return
		case <-t.C:
		}
		cn, err := c.dial(c.stop)
		if err != nil {
			c.logf("reconnect attempt %d: %v", attempt, err)
			continue
		}
		if !c.install(cn) {
			return
		}
		if err := c.establish(c.stop, cn, true); err != nil {
			cn.close(err, false)
			if c.isClosed() {
				return
			}
			c.logf("reconnect attempt %d: %v", attempt, err)
			continue
		}
		return
	}
}

// restore joins again every room and restores every subscription and
// presence state the client had, on cn, before cn is announced. Commands
// are pipelined: all of one phase are sent, then their replies collected.
// Rooms come first, since presence states can only be published in a room
// the connection is in.
//
// A transport failure (the connection dropping, a timeout) fails the
// attempt and leaves the registry as it was, for the next attempt. A
// refusal by the server (success false, or an error reply) drops that
// entry, since the server will not have it: it is logged through
// Options.Logf.
func (c *Client) restore(ctx context.Context, cn *conn) error {
	type item struct {
		kind, name string
		req        *request
		check      func(json.RawMessage) bool // reports whether the reply is a success
		forget     func()
		// retry: a server that could not reach its shared state
		// (EUNAVAILABLE) fails the attempt instead of forgetting the
		// entry; a durable channel's position is not given up for an
		// outage.
		retry bool
	}

	c.mu.Lock()
	var rooms, rest []item
	for room := range c.rooms {
		rooms = append(rooms, item{kind: "room", name: room, check: successReply, forget: func() {
			c.mu.Lock()
			delete(c.rooms, room)
			delete(c.states, room)
			c.mu.Unlock()
		}})
	}
	for room, sub := range c.presence {
		rest = append(rest, item{kind: "presence", name: room, check: successReply, forget: func() { c.dropPresence(room, sub) }})
	}
	now := time.Now()
	states := make(map[string]presenceState, len(c.states))
	for room, st := range c.states {
		if !st.expireAt.IsZero() && !st.expireAt.After(now) {
			delete(c.states, room)
			continue
		}
		states[room] = st
		rest = append(rest, item{kind: "presence state", name: room, check: trueReply, forget: func() {
			c.mu.Lock()
			if cur, ok := c.states[room]; ok && cur.expireAt.Equal(st.expireAt) && string(cur.state) == string(st.state) {
				delete(c.states, room)
			}
			c.mu.Unlock()
		}})
	}
	channels := make(map[string]*channelSub, len(c.channels))
	for channel, sub := range c.channels {
		channels[channel] = sub
		rest = append(rest, item{kind: "channel", name: channel, check: successReply, forget: func() { c.dropChannel(channel, sub) },
			retry: sub.durable.Load()})
	}
	records := make(map[string]*recordSub, len(c.records))
	for id, s := range c.records {
		ns := s.renew()
		c.records[id] = ns
		records[id] = ns
		// recordHook forgets a refused subscription itself.
		rest = append(rest, item{kind: "record", name: id, check: successReply, forget: func() {}})
	}
	c.mu.Unlock()

	run := func(items []item) error {
		for i := range items {
			it := &items[i]
			var err error
			switch it.kind {
			case "room":
				it.req, err = c.begin(ctx, cn, protocol.CmdJoinRoom, mustMarshal(protocol.JoinRoomRequest{RoomName: it.name}), nil)
			case "presence":
				it.req, err = c.begin(ctx, cn, protocol.CmdSubscribePresence, mustMarshal(protocol.SubscribePresenceRequest{RoomName: it.name}), nil)
			case "presence state":
				st := states[it.name]
				var left time.Duration
				if !st.expireAt.IsZero() {
					left = max(time.Until(st.expireAt), time.Millisecond)
				}
				it.req, err = c.beginPublishState(ctx, cn, it.name, st.state, left)
			case "channel":
				sub := channels[it.name]
				req := sub.resumeRequest(it.name)
				if req.After != nil {
					// Posted before the request leaves, so before anything
					// the new connection delivers for the channel.
					c.events.post(func() { sub.resuming = true })
				}
				it.req, err = c.begin(ctx, cn, protocol.CmdSubscribeChannel, mustMarshal(req), c.channelHook(it.name, sub, req.After, false))
			case "record":
				ns := records[it.name]
				it.req, err = c.begin(ctx, cn, protocol.CmdSubscribeRecord, recordSubscribeRequest(ns), c.recordHook(ns))
			}
			if err != nil {
				for _, prev := range items[:i] {
					prev.req.timer.Stop()
				}
				return err
			}
		}
		var failed error
		for _, it := range items {
			raw, err := it.req.wait(ctx)
			switch {
			case err != nil && (!refusal(err) || it.retry && unavailable(err)):
				if failed == nil {
					failed = err
				}
			case err != nil || !it.check(raw):
				c.logf("restoring %s %q: refused by the server (%v)", it.kind, it.name, errOr(err, raw))
				it.forget()
			}
		}
		return failed
	}
	if err := run(rooms); err != nil {
		return err
	}
	return run(rest)
}

// refusal reports whether err is the server's answer rather than a
// transport failure.
func refusal(err error) bool {
	var ce *protocol.CodeError
	return errors.As(err, &ce) && ce.Code != protocol.CodeTimeout
}

// unavailable reports an EUNAVAILABLE error reply.
func unavailable(err error) bool {
	var ce *protocol.CodeError
	return errors.As(err, &ce) && ce.Code == protocol.CodeUnavailable
}

func errOr(err error, raw json.RawMessage) any {
	if err != nil {
		return err
	}
	return string(raw)
}

// successReply checks a {"success":bool,…} reply.
func successReply(raw json.RawMessage) bool {
	var r protocol.SuccessReply
	return protocol.Unmarshal(raw, &r) == nil && r.Success
}

// trueReply checks a bare boolean reply.
func trueReply(raw json.RawMessage) bool {
	var ok bool
	return protocol.Unmarshal(raw, &ok) == nil && ok
}
