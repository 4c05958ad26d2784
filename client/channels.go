package client

import (
	"context"

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
}

// ChannelOption is an option of SubscribeChannel.
type ChannelOption func(*channelOptions)

type channelOptions struct {
	historyLimit int
}

// WithHistoryLimit asks for up to n stored messages with the subscription.
func WithHistoryLimit(n int) ChannelOption {
	return func(o *channelOptions) { o.historyLimit = n }
}

type channelSub struct {
	fn func(message string)
}

// SubscribeChannel subscribes to channel (mesh/subscribe-channel); fn gets
// each message published on it, as the raw string. The history entries of
// the reply are also passed to fn, in the order received (newest first),
// before any message that arrived after the reply. A refusal is not an
// error: it returns Success false and fn is never called. The subscription
// is restored after a reconnect, without history, until
// UnsubscribeChannel. Subscribing to the same channel again replaces fn.
func (c *Client) SubscribeChannel(ctx context.Context, channel string, fn func(message string), opts ...ChannelOption) (SubscribeChannelResult, error) {
	var o channelOptions
	for _, f := range opts {
		f(&o)
	}
	sub := &channelSub{fn: fn}
	c.mu.Lock()
	c.channels[channel] = sub
	c.mu.Unlock()
	hook := func(payload []byte) {
		var r protocol.SubscribeChannelReply
		if protocol.Unmarshal(payload, &r) != nil || !r.Success {
			c.dropChannel(channel, sub)
			return
		}
		if len(r.History) > 0 {
			c.events.post(func() {
				for _, m := range r.History {
					if !c.channelIs(channel, sub) {
						return
					}
					sub.fn(m)
				}
			})
		}
	}
	req := protocol.SubscribeChannelRequest{Channel: channel, HistoryLimit: o.historyLimit}
	raw, err := c.call(ctx, nil, protocol.CmdSubscribeChannel, mustMarshal(req), hook)
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
	return SubscribeChannelResult{Success: true, History: nonNil(r.History)}, nil
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
	if sub != nil {
		sub.fn(m.Message)
	}
}
