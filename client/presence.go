package client

import (
	"context"
	"encoding/json"
	"time"

	"github.com/meshfast/meshfast/protocol"
)

// PresenceUpdate is a presence event of a room the client subscribed to:
// Type is protocol.PresenceJoin, PresenceLeave or PresenceState;
// Timestamp is in Unix milliseconds; State is set for "state" events,
// JSON null when the state was cleared or expired.
type PresenceUpdate = protocol.PresenceUpdate

// SubscribePresenceResult is the outcome of SubscribePresence.
type SubscribePresenceResult struct {
	// Success is false when the server refused (room not presence-tracked,
	// or its guard said no).
	Success bool
	// Present lists the connection ids present in the room. Never nil.
	Present []string
	// States maps connection ids to their current presence state. Non-nil
	// on success.
	States map[string]json.RawMessage
}

type presenceSub struct {
	fn func(PresenceUpdate)
}

// presenceState is a state the client published, kept to publish again
// after a reconnect.
type presenceState struct {
	state    json.RawMessage
	expireAt time.Time // zero: no expiry
}

// SubscribePresence subscribes to the presence of room
// (mesh/subscribe-presence): fn gets every join, leave and state change
// from then on; the result lists who is present and their states. A
// refusal is not an error: it returns Success false and fn is never
// called. The subscription is restored after a reconnect until
// UnsubscribePresence (or LeaveRoom). Subscribing to the same room again
// replaces fn.
func (c *Client) SubscribePresence(ctx context.Context, room string, fn func(PresenceUpdate)) (SubscribePresenceResult, error) {
	sub := &presenceSub{fn: fn}
	c.mu.Lock()
	c.presence[room] = sub
	c.mu.Unlock()
	hook := func(payload []byte) {
		var r protocol.SubscribePresenceReply
		if protocol.Unmarshal(payload, &r) != nil || !r.Success {
			c.dropPresence(room, sub)
		}
	}
	raw, err := c.call(ctx, nil, protocol.CmdSubscribePresence, mustMarshal(protocol.SubscribePresenceRequest{RoomName: room}), hook)
	if err != nil {
		c.dropPresence(room, sub)
		return SubscribePresenceResult{}, err
	}
	var r protocol.SubscribePresenceReply
	if err := decodeReply(raw, &r); err != nil {
		return SubscribePresenceResult{}, err
	}
	if !r.Success {
		return SubscribePresenceResult{Present: []string{}}, nil
	}
	if r.States == nil {
		r.States = map[string]json.RawMessage{}
	}
	return SubscribePresenceResult{Success: true, Present: nonNil(r.Present), States: r.States}, nil
}

// UnsubscribePresence ends the presence subscription of room: its callback
// is not called again from now on, and the server is told
// (mesh/unsubscribe-presence). It returns the server's answer.
func (c *Client) UnsubscribePresence(ctx context.Context, room string) (bool, error) {
	c.mu.Lock()
	delete(c.presence, room)
	c.mu.Unlock()
	return c.boolCommand(ctx, protocol.CmdUnsubscribePresence, protocol.UnsubscribePresenceRequest{RoomName: room})
}

// PublishPresenceState sets the client's presence state in room
// (mesh/publish-presence-state; state is encoded as JSON). A positive
// expireAfter makes the server drop the state after that long (sent in
// whole milliseconds, rounded up); zero keeps it until cleared. The server
// answers false when state is empty (nil), the room is not
// presence-tracked, or the client is not in it. An accepted state is
// published again after a reconnect, with what remains of expireAfter.
func (c *Client) PublishPresenceState(ctx context.Context, room string, state any, expireAfter time.Duration) (bool, error) {
	raw, err := encodeValue(state)
	if err != nil {
		return false, err
	}
	var expireAt time.Time
	if expireAfter > 0 {
		expireAt = time.Now().Add(expireAfter)
	}
	ok, err := c.publishState(ctx, nil, room, raw, expireAfter)
	if ok {
		c.mu.Lock()
		c.states[room] = presenceState{state: raw, expireAt: expireAt}
		c.mu.Unlock()
	}
	return ok, err
}

func (c *Client) publishState(ctx context.Context, cn *conn, room string, state json.RawMessage, expireAfter time.Duration) (bool, error) {
	r, err := c.beginPublishState(ctx, cn, room, state, expireAfter)
	if err != nil {
		return false, err
	}
	return boolReply(r.wait(ctx))
}

func (c *Client) beginPublishState(ctx context.Context, cn *conn, room string, state json.RawMessage, expireAfter time.Duration) (*request, error) {
	req := protocol.PublishPresenceStateRequest{RoomName: room, State: state}
	if expireAfter > 0 {
		req.ExpireAfter = int64((expireAfter + time.Millisecond - 1) / time.Millisecond)
	}
	return c.begin(ctx, cn, protocol.CmdPublishPresenceState, mustMarshal(req), nil)
}

// ClearPresenceState clears the client's presence state in room
// (mesh/clear-presence-state). It returns the server's answer.
func (c *Client) ClearPresenceState(ctx context.Context, room string) (bool, error) {
	c.mu.Lock()
	delete(c.states, room)
	c.mu.Unlock()
	return c.boolCommand(ctx, protocol.CmdClearPresenceState, protocol.ClearPresenceStateRequest{RoomName: room})
}

// dropPresence forgets sub unless it has been replaced.
func (c *Client) dropPresence(room string, sub *presenceSub) {
	c.mu.Lock()
	if c.presence[room] == sub {
		delete(c.presence, room)
	}
	c.mu.Unlock()
}

// deliverPresenceUpdate runs on the event goroutine.
func (c *Client) deliverPresenceUpdate(payload []byte) {
	var u protocol.PresenceUpdate
	if err := protocol.Unmarshal(payload, &u); err != nil {
		c.logf("ignoring malformed %s payload: %v", protocol.CmdPresenceUpdate, err)
		return
	}
	c.mu.Lock()
	sub := c.presence[u.RoomName]
	c.mu.Unlock()
	if sub != nil {
		sub.fn(u)
	}
}

// boolReply decodes a bare-boolean reply.
func boolReply(raw json.RawMessage, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	var ok bool
	if err := decodeReply(raw, &ok); err != nil {
		return false, err
	}
	return ok, nil
}
