package zps

import (
	"context"
	"fmt"
	"slices"

	wire "github.com/meshfast/meshfast/protocol/zps"
)

// EphemeralEvent is a fan-out-only event (typing, cursors): no sequence,
// no replay, no ack.
type EphemeralEvent = wire.EphemeralEvent

// EphemeralHandler handles one ephemeral event, on the handlers'
// goroutine, in turn with the durable events.
type EphemeralHandler func(ctx context.Context, ev *EphemeralEvent)

// EphemeralSubscription is a SubscribeEphemeral's, across reconnects,
// until Unsubscribe or Close. What was published while the client was
// away is not delivered: ephemeral events are at most once.
type EphemeralSubscription struct {
	c        *Client
	pattern  string
	wildcard bool
	types    []string
	h        EphemeralHandler
	closed   bool // Client.mu
}

// SubscribeEphemeral subscribes to the ephemeral events of room (or a
// scope:* pattern), only of types when some are given (the document's
// subscribeEphemeral; meshfast's wire extension, see protocol/zps). The
// server's refusal goes to OnError.
func (c *Client) SubscribeEphemeral(room string, h EphemeralHandler, types ...string) (*EphemeralSubscription, error) {
	_, wildcard, err := wire.ParsePattern(room)
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("zps client: subscribe ephemeral %q: no handler", room)
	}
	s := &EphemeralSubscription{c: c, pattern: room, wildcard: wildcard, types: slices.Clone(types), h: h}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	m, key := c.ephByRoom, room
	if wildcard {
		m, key = c.ephByScope, wire.ScopeOf(room)
	}
	if old := m[key]; old != nil {
		old.closed = true
	}
	m[key] = s
	if c.cn != nil {
		s.resubscribe(c.cn)
	}
	return s, nil
}

func (s *EphemeralSubscription) resubscribe(cn *conn) {
	cn.send(wire.AppendSubscribeEphemeral(nil, s.pattern, s.types), &pending{kind: wire.TypeSubscribed})
}

// Unsubscribe ends the subscription.
func (s *EphemeralSubscription) Unsubscribe() {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	m, key := c.ephByRoom, s.pattern
	if s.wildcard {
		m, key = c.ephByScope, wire.ScopeOf(s.pattern)
	}
	if m[key] == s {
		delete(m, key)
		if c.cn != nil {
			c.cn.send(wire.AppendUnsubscribeEphemeral(nil, s.pattern), &pending{kind: wire.TypeUnsubscribed})
		}
	}
}

// PublishEphemeral fans an ephemeral event out to room's ephemeral
// subscribers (the gateway must allow client publishing). It waits for a
// connection as Publish does; one lost with its connection is sent again.
func (c *Client) PublishEphemeral(ctx context.Context, room, typ string, payload []byte) error {
	_, err := c.request(ctx, wire.TypeAck, wire.AppendPublishEphemeral(nil, room, typ, payload))
	return err
}

// onEphemeral queues ev for the subscriptions it matches. Reader
// goroutine.
func (c *Client) onEphemeral(cn *conn, ev *EphemeralEvent) {
	c.mu.Lock()
	if c.cur != cn {
		c.mu.Unlock()
		return
	}
	var out []delivery
	for _, s := range []*EphemeralSubscription{c.ephByRoom[ev.Room], c.ephByScope[wire.ScopeOf(ev.Room)]} {
		if s != nil && !s.closed && (len(s.types) == 0 || slices.Contains(s.types, ev.Type)) {
			out = append(out, delivery{es: s, eev: ev})
		}
	}
	c.mu.Unlock()
	c.q.push(out)
}
