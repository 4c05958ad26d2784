package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/meshfast/meshfast/protocol"
)

var errWaitTimeout = errors.New("client: timed out waiting for a connection")

// Command sends a command and returns the raw JSON payload of its reply
// (nil if the reply had none, as when a Mesh handler returns undefined).
//
// payload is encoded as JSON; nil is sent as {}, as Mesh's client does,
// and a json.RawMessage is sent as is (it must be valid JSON).
//
// Errors:
//   - the server's error reply ({"error","code","name"}: an unknown command,
//     a handler or middleware error) is returned as a *protocol.CodeError
//     carrying its message, code and name;
//   - no reply in time is a *protocol.CodeError with code
//     protocol.CodeTimeout and Mesh's message "Command timed out after
//     <ms>ms.". The time limit is Options.CommandTimeout or ctx's deadline,
//     whichever comes first; a reply arriving later is dropped;
//   - ctx canceled is ctx.Err();
//   - the connection closing before the reply is ErrConnectionLost, a
//     closed client ErrClosed, an Offline one ErrNotConnected, and one
//     that gave up reconnecting ErrReconnectFailed.
//
// While the client is Connecting or Reconnecting, Command waits for the
// connection (within its time limit) before sending: the Go form of Mesh's
// outbound queue. After a reconnect, queued commands are sent once the
// client's rooms and subscriptions are restored. A command that was
// already sent when the connection dropped is not resent, since the server
// may have run it; it fails with ErrConnectionLost.
//
// Every request gets a new id from a counter that is never reset, so a
// late reply can never be taken for the reply to a later request.
func (c *Client) Command(ctx context.Context, name string, payload any) (json.RawMessage, error) {
	raw, err := encodePayload(payload)
	if err != nil {
		return nil, err
	}
	return c.call(ctx, nil, name, raw, nil)
}

// CommandInto is Command followed by decoding the reply into out (a
// pointer) with encoding/json's rules. A reply without payload leaves out
// unchanged.
func (c *Client) CommandInto(ctx context.Context, name string, payload, out any) error {
	raw, err := c.Command(ctx, name, payload)
	if err != nil {
		return err
	}
	if len(raw) == 0 || out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("client: decode %s reply: %w", name, err)
	}
	return nil
}

// encodePayload turns a command payload into JSON.
func encodePayload(v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return []byte("{}"), nil
	case json.RawMessage:
		if len(v) == 0 {
			return []byte("{}"), nil
		}
		if !protocol.Valid(v) {
			return nil, errors.New("client: payload is not valid JSON")
		}
		return v, nil
	}
	b, err := protocol.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("client: encode payload: %w", err)
	}
	return b, nil
}

// encodeValue is encodePayload for values (record values, presence
// states), where nil means JSON null rather than {}.
func encodeValue(v any) ([]byte, error) {
	if v == nil {
		return []byte("null"), nil
	}
	return encodePayload(v)
}

// request is a command in flight.
type request struct {
	c     *Client
	cn    *conn
	id    int64
	p     *pending
	limit time.Duration // the time limit, for the timeout message
	timer *time.Timer
}

// call sends a command and waits for its reply. cn nil means the current
// connection, waited for while Connecting or Reconnecting; otherwise the
// command goes on cn whatever the status (used to restore subscriptions
// on a connection that is not announced yet). hook: see pending.
func (c *Client) call(ctx context.Context, cn *conn, name string, payload []byte, hook func([]byte)) (json.RawMessage, error) {
	r, err := c.begin(ctx, cn, name, payload, hook)
	if err != nil {
		return nil, err
	}
	return r.wait(ctx)
}

// begin sends a command and returns it in flight; wait collects the reply.
func (c *Client) begin(ctx context.Context, cn *conn, name string, payload []byte, hook func([]byte)) (*request, error) {
	limit := c.opts.CommandTimeout
	if dl, ok := ctx.Deadline(); ok {
		limit = min(limit, time.Until(dl))
	}
	r := &request{c: c, limit: limit, timer: time.NewTimer(limit)}
	if cn == nil {
		var err error
		if cn, err = c.waitOnline(ctx, r.timer.C); err != nil {
			r.timer.Stop()
			if err == errWaitTimeout {
				return nil, r.timeoutError()
			}
			return nil, r.ctxError(ctx, err)
		}
	}
	r.cn = cn
	r.id = c.nextID.Add(1)
	r.p = &pending{ch: make(chan result, 1), hook: hook}
	if !cn.register(r.id, r.p) {
		r.timer.Stop()
		return nil, ErrConnectionLost
	}
	if !cn.sendText(protocol.AppendMessage(nil, r.id, true, name, payload)) {
		// Closing: failPending answers r.p (if it has not run already,
		// take wins and we answer ourselves).
		if cn.take(r.id) != nil {
			r.timer.Stop()
			return nil, ErrConnectionLost
		}
	}
	return r, nil
}

// wait waits for the reply of a request begun with begin.
func (r *request) wait(ctx context.Context) (json.RawMessage, error) {
	defer r.timer.Stop()
	var res result
	select {
	case res = <-r.p.ch:
	case <-r.timer.C:
		if r.cn.take(r.id) != nil {
			return nil, r.timeoutError()
		}
		res = <-r.p.ch
	case <-ctx.Done():
		if r.cn.take(r.id) != nil {
			return nil, r.ctxError(ctx, ctx.Err())
		}
		res = <-r.p.ch
	}
	if res.err != nil {
		return nil, res.err
	}
	if ce, ok := protocol.ParseErrorPayload(res.payload); ok {
		return nil, ce
	}
	return res.payload, nil
}

func (r *request) timeoutError() error {
	return protocol.TimeoutError(r.limit.Round(time.Millisecond))
}

// ctxError maps ctx's end to the command's error: a passed deadline is a
// command timeout, as in Mesh; a cancellation is returned as is.
func (r *request) ctxError(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return r.timeoutError()
	}
	return err
}

// waitOnline returns the current connection once the client is Online.
func (c *Client) waitOnline(ctx context.Context, timeout <-chan time.Time) (*conn, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		switch c.status {
		case Online:
			if cn := c.conn.Load(); cn != nil {
				c.mu.Unlock()
				return cn, nil
			}
		case Offline:
			err := c.offlineErr
			c.mu.Unlock()
			return nil, err
		}
		ch := c.stateCh
		c.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			return nil, errWaitTimeout
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// mustMarshal encodes a protocol request struct, which cannot fail.
func mustMarshal(v any) []byte {
	b, err := protocol.Marshal(v)
	if err != nil {
		panic("client: encoding a request: " + err.Error()) // a broken invariant
	}
	return b
}

// decodeReply decodes a built-in command's reply payload.
func decodeReply(payload []byte, v any) error {
	if len(payload) == 0 {
		return fmt.Errorf("%w: no payload", ErrBadReply)
	}
	if err := protocol.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadReply, err)
	}
	return nil
}

// boolCommand sends a built-in command whose reply is a bare boolean.
func (c *Client) boolCommand(ctx context.Context, name string, req any) (bool, error) {
	return boolReply(c.call(ctx, nil, name, mustMarshal(req), nil))
}

// Metadata.

// GetConnectionMetadata returns the metadata the server holds for the
// connection connectionID, or for the client's own connection when
// connectionID is "" (mesh/get-my-connection-metadata). No metadata is
// nil.
func (c *Client) GetConnectionMetadata(ctx context.Context, connectionID string) (json.RawMessage, error) {
	if connectionID == "" {
		return c.metadata(ctx, protocol.CmdGetMyConnectionMetadata, protocol.GetMyConnectionMetadataRequest{})
	}
	return c.metadata(ctx, protocol.CmdGetConnectionMetadata, protocol.GetConnectionMetadataRequest{ConnectionID: connectionID})
}

// GetRoomMetadata returns the metadata of room, nil if it has none.
func (c *Client) GetRoomMetadata(ctx context.Context, room string) (json.RawMessage, error) {
	return c.metadata(ctx, protocol.CmdGetRoomMetadata, protocol.GetRoomMetadataRequest{RoomName: room})
}

func (c *Client) metadata(ctx context.Context, name string, req any) (json.RawMessage, error) {
	raw, err := c.call(ctx, nil, name, mustMarshal(req), nil)
	if err != nil {
		return nil, err
	}
	var r protocol.MetadataReply
	if err := decodeReply(raw, &r); err != nil {
		return nil, err
	}
	if string(r.Metadata) == "null" {
		return nil, nil
	}
	return r.Metadata, nil
}

// Rooms.

// JoinRoomResult is the outcome of JoinRoom.
type JoinRoomResult struct {
	// Success is true when the room was joined (and, with WithPresence,
	// its presence subscribed).
	Success bool
	// Present lists the connection ids present in the room by presence
	// tracking (empty for an untracked room). Never nil.
	Present []string
	// States maps connection ids to presence states; set with WithPresence
	// only.
	States map[string]json.RawMessage
}

// JoinOption is an option of JoinRoom.
type JoinOption func(*joinOptions)

type joinOptions struct {
	presence func(PresenceUpdate)
}

// WithPresence makes JoinRoom also subscribe to the room's presence with
// fn, as SubscribePresence does (Mesh's joinRoom(room, callback)).
func WithPresence(fn func(PresenceUpdate)) JoinOption {
	return func(o *joinOptions) { o.presence = fn }
}

// JoinRoom joins room (mesh/join-room). The client remembers the room and
// joins it again after a reconnect, until LeaveRoom. With WithPresence it
// then subscribes to the room's presence and, as Mesh does, returns that
// subscription's result: Success false then means the presence
// subscription was refused, although the room was joined. A refusal by the
// server's middleware is an error (*protocol.CodeError).
func (c *Client) JoinRoom(ctx context.Context, room string, opts ...JoinOption) (JoinRoomResult, error) {
	var o joinOptions
	for _, f := range opts {
		f(&o)
	}
	hook := func(payload []byte) {
		var r protocol.JoinRoomReply
		if protocol.Unmarshal(payload, &r) == nil && r.Success {
			c.mu.Lock()
			c.rooms[room] = struct{}{}
			c.mu.Unlock()
		}
	}
	raw, err := c.call(ctx, nil, protocol.CmdJoinRoom, mustMarshal(protocol.JoinRoomRequest{RoomName: room}), hook)
	if err != nil {
		return JoinRoomResult{}, err
	}
	var r protocol.JoinRoomReply
	if err := decodeReply(raw, &r); err != nil {
		return JoinRoomResult{}, err
	}
	if !r.Success {
		return JoinRoomResult{Present: []string{}}, nil
	}
	if o.presence == nil {
		return JoinRoomResult{Success: true, Present: nonNil(r.Present)}, nil
	}
	pr, err := c.SubscribePresence(ctx, room, o.presence)
	if err != nil {
		return JoinRoomResult{}, err
	}
	return JoinRoomResult(pr), nil
}

// LeaveRoom leaves room (mesh/leave-room) and forgets it, so it is not
// rejoined after a reconnect; it also drops any presence state published
// there. If the client subscribed to the room's presence, that
// subscription is ended too (mesh/unsubscribe-presence), as in Mesh. It
// returns the server's success flag.
func (c *Client) LeaveRoom(ctx context.Context, room string) (bool, error) {
	c.mu.Lock()
	delete(c.rooms, room)
	delete(c.states, room)
	c.mu.Unlock()
	raw, err := c.call(ctx, nil, protocol.CmdLeaveRoom, mustMarshal(protocol.LeaveRoomRequest{RoomName: room}), nil)
	if err != nil {
		return false, err
	}
	var r protocol.SuccessReply
	if err := decodeReply(raw, &r); err != nil {
		return false, err
	}
	c.mu.Lock()
	_, subscribed := c.presence[room]
	c.mu.Unlock()
	if r.Success && subscribed {
		if _, err := c.UnsubscribePresence(ctx, room); err != nil {
			return true, err
		}
	}
	return r.Success, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
