package client

import (
	"context"
	"sync/atomic"

	"github.com/meshfast/meshfast/protocol"
)

// SubscribeChannelResult is the outcome of SubscribeChannel.
type SubscribeChannelResult struct {
	// Success is false when the server refused (channel not exposed, or
	// its guard said no).
	Success bool
	// History holds up to the requested number of stored messages, newest
	// first. Never nil.
	History []string
	// Durable reports a durable channel (a meshfast server keeps it in a
	// stream, every message with a sequence): the subscription resumes
	// after a reconnect from the last message delivered, with none missed
	// and none twice.
	Durable bool
	// Sequence is, on a durable channel, where the subscription started:
	// the history ends with it and the live messages follow it.
	Sequence uint64
}

// ChannelMessage is one message of a channel subscription
// (SubscribeChannelMessages).
type ChannelMessage struct {
	Channel string
	// Message is the published string.
	Message string
	// Sequence is the message's position in a durable channel: 1, 2, 3…,
	// each delivered once and in order. Zero on a channel that is not
	// durable.
	Sequence uint64
	// History reports a message of the subscription's history
	// (WithHistoryLimit), delivered after the reply, rather than one
	// delivered as it was published or replayed after a reconnect.
	History bool
}

// ChannelOption is an option of SubscribeChannel.
type ChannelOption func(*channelOptions)

type channelOptions struct {
	historyLimit int
	after        *uint64
}

// WithHistoryLimit asks for up to n stored messages with the subscription.
func WithHistoryLimit(n int) ChannelOption {
	return func(o *channelOptions) { o.historyLimit = n }
}

// WithAfter starts a subscription to a durable channel after the message
// with sequence seq (one the application processed before, in an earlier
// run): the messages after it are delivered first, in order, then the
// live ones. It replaces the history (WithHistoryLimit is ignored). A
// channel that is not durable ignores it.
func WithAfter(seq uint64) ChannelOption {
	return func(o *channelOptions) { o.after = &seq }
}

// channelSub is one channel subscription.
//
// The client asks every server for sequences (SubscribeChannelRequest.
// Sequenced); a meshfast server's durable channel gives them, and Mesh,
// or a channel that is not durable, ignores the request. last is the
// sequence of the last message delivered, or the subscription's start:
// what a resume after a reconnect asks to continue after. A message at or
// below it was delivered already (a reconnect read last while messages of
// the lost connection still waited for the event goroutine) and is
// skipped. While a resume waits for its reply, the messages that arrive
// are held: the reply says whether the channel's stream started again
// (its sequence below the resume's), in which case they are all new.
type channelSub struct {
	fn func(ChannelMessage)

	// Written on the event goroutine, read by restore.
	durable atomic.Bool
	last    atomic.Uint64

	// Event goroutine only.
	resuming bool
	held     []ChannelMessage
}

// SubscribeChannel subscribes to channel (mesh/subscribe-channel); fn gets
// each message published on it, as the raw string. The history entries of
// the reply are also passed to fn, in the order received (newest first),
// before any message that arrived after the reply. A refusal is not an
// error: it returns Success false and fn is never called. The subscription
// is restored after a reconnect, without history, until
// UnsubscribeChannel; on a durable channel it resumes after the last
// message fn got. Subscribing to the same channel again replaces fn.
func (c *Client) SubscribeChannel(ctx context.Context, channel string, fn func(message string), opts ...ChannelOption) (SubscribeChannelResult, error) {
	return c.SubscribeChannelMessages(ctx, channel, func(m ChannelMessage) { fn(m.Message) }, opts...)
}

// SubscribeChannelMessages is SubscribeChannel with each message's
// sequence on a durable channel, and whether it came with the history.
func (c *Client) SubscribeChannelMessages(ctx context.Context, channel string, fn func(ChannelMessage), opts ...ChannelOption) (SubscribeChannelResult, error) {
	var o channelOptions
	for _, f := range opts {
		f(&o)
	}
	sub := &channelSub{fn: fn}
	req := protocol.SubscribeChannelRequest{Channel: channel, HistoryLimit: o.historyLimit, Sequenced: true, After: o.after}
	if o.after != nil {
		req.HistoryLimit = 0
		sub.resuming = true // sub is not shared yet
	}
	c.mu.Lock()
	c.channels[channel] = sub
	c.mu.Unlock()
	raw, err := c.call(ctx, nil, protocol.CmdSubscribeChannel, mustMarshal(req), c.channelHook(channel, sub, req.After, true))
	if err != nil {
		c.dropChannel(channel, sub)
		return SubscribeChannelResult{}, err
	}
	var r protocol.SubscribeChannelReply
	if err := decodeReply(raw, &r); err != nil {
		return SubscribeChannelResult{}, err
	}
	if !r.Success {
		return SubscribeChannelResult{History: []string{}}, nil
	}
	res := SubscribeChannelResult{Success: true, History: nonNil(r.History)}
	if r.Sequence != nil {
		res.Durable, res.Sequence = true, *r.Sequence
	}
	return res, nil
}

// channelHook is the reply hook of a subscription of sub to channel,
// first or restored (after: the resume's position, nil for none; history:
// deliver the reply's history, which a restored one did not ask for). It
// runs on the reader goroutine, so that what it posts is ordered with the
// pushes around the reply.
func (c *Client) channelHook(channel string, sub *channelSub, after *uint64, history bool) func([]byte) {
	return func(payload []byte) {
		if ce, ok := protocol.ParseErrorPayload(payload); ok && after != nil && ce.Code == protocol.CodeUnavailable {
			return // an outage: restore tries again, with what it holds (reconnect.go)
		}
		var r protocol.SubscribeChannelReply
		if protocol.Unmarshal(payload, &r) != nil || !r.Success {
			c.dropChannel(channel, sub)
			c.events.post(func() { sub.resuming, sub.held = false, nil })
			return
		}
		if !history {
			r.History = nil
		}
		c.events.post(func() { c.settleChannel(channel, sub, &r, after) })
	}
}

// settleChannel applies a subscription's reply: the history, then what
// was held while the reply was awaited, and the position. Event goroutine.
func (c *Client) settleChannel(channel string, sub *channelSub, r *protocol.SubscribeChannelReply, after *uint64) {
	held := sub.held
	sub.resuming, sub.held = false, nil
	if !c.channelIs(channel, sub) {
		return
	}
	for i, m := range r.History {
		var seq uint64
		if r.Sequence != nil && i < len(r.HistorySequences) {
			seq = r.HistorySequences[i]
		}
		sub.fn(ChannelMessage{Channel: channel, Message: m, Sequence: seq, History: true})
		if !c.channelIs(channel, sub) {
			return
		}
	}
	if r.Sequence == nil {
		sub.durable.Store(false)
		for _, m := range held {
			sub.fn(m)
			if !c.channelIs(channel, sub) {
				return
			}
		}
		return
	}
	pos := *r.Sequence
	if after != nil && pos < *after {
		// The stream started again: everything held is new.
		c.logf("durable channel %q started again at sequence %d (resumed after %d)", channel, pos, *after)
		sub.last.Store(0)
	}
	sub.durable.Store(true)
	for _, m := range held {
		if c.deliverSequenced(sub, m) && !c.channelIs(channel, sub) {
			return
		}
	}
	if pos > sub.last.Load() {
		sub.last.Store(pos)
	}
}

// deliverSequenced hands m to sub's callback unless it was delivered
// already; false if it was not delivered. Event goroutine.
func (c *Client) deliverSequenced(sub *channelSub, m ChannelMessage) bool {
	if m.Sequence != 0 {
		if m.Sequence <= sub.last.Load() {
			return false
		}
		sub.last.Store(m.Sequence)
	}
	sub.fn(m)
	return true
}

// UnsubscribeChannel ends the subscription to channel: its callback is
// not called again from now on, and the server is told
// (mesh/unsubscribe-channel). It returns the server's answer: true if the
// connection was subscribed.
func (c *Client) UnsubscribeChannel(ctx context.Context, channel string) (bool, error) {
	c.mu.Lock()
	delete(c.channels, channel)
	c.mu.Unlock()
	return c.boolCommand(ctx, protocol.CmdUnsubscribeChannel, protocol.UnsubscribeChannelRequest{Channel: channel})
}

func (c *Client) channelIs(channel string, sub *channelSub) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.channels[channel] == sub
}

// dropChannel forgets sub unless it has been replaced.
func (c *Client) dropChannel(channel string, sub *channelSub) {
	c.mu.Lock()
	if c.channels[channel] == sub {
		delete(c.channels, channel)
	}
	c.mu.Unlock()
}

// resumeRequest is the request that restores sub after a reconnect: from
// its last message on a durable channel. Any goroutine.
func (sub *channelSub) resumeRequest(channel string) protocol.SubscribeChannelRequest {
	req := protocol.SubscribeChannelRequest{Channel: channel, Sequenced: true}
	if sub.durable.Load() {
		last := sub.last.Load()
		req.After = &last
	}
	return req
}

// deliverChannelMessage runs on the event goroutine.
func (c *Client) deliverChannelMessage(payload []byte) {
	var m protocol.SubscriptionMessage
	if err := protocol.Unmarshal(payload, &m); err != nil {
		c.logf("ignoring malformed %s payload: %v", protocol.CmdSubscriptionMessage, err)
		return
	}
	c.mu.Lock()
	sub := c.channels[m.Channel]
	c.mu.Unlock()
	if sub == nil {
		return
	}
	msg := ChannelMessage{Channel: m.Channel, Message: m.Message, Sequence: m.Sequence}
	if sub.resuming {
		sub.held = append(sub.held, msg)
		return
	}
	c.deliverSequenced(sub, msg)
}
