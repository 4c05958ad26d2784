package mesh

import (
	"context"
	"fmt"
	"regexp"
	"strings"
)

// ExposeChannel lets clients subscribe to the channel name, if guard (when
// not nil) allows them. Exposing it again replaces the guard.
func (s *Server) ExposeChannel(name string, guard Guard) { s.channels.addExact(name, guard) }

// ExposeChannelPattern lets clients subscribe to every channel matching re,
// if guard allows them; the guard gets the concrete channel name.
func (s *Server) ExposeChannelPattern(re *regexp.Regexp, guard Guard) {
	s.channels.addPattern(re, guard)
}

// PublishToChannel sends message to every subscriber of channel on every
// node. If history > 0 the channel keeps its history newest messages. On a
// channel exposed as durable it is PublishDurable, and history is the
// stream's retention's business.
func (s *Server) PublishToChannel(ctx context.Context, channel, message string, history int) error {
	if err := checkChannel(channel); err != nil {
		return err
	}
	if s.durable(channel) {
		_, err := s.PublishDurable(ctx, channel, message)
		return err
	}
	return s.co.PublishToChannel(ctx, channel, []byte(message), history)
}

// ChannelHistory returns up to limit of channel's kept messages, newest
// first: for a channel exposed as durable, its stream's newest (at most
// store.MaxLimit).
func (s *Server) ChannelHistory(ctx context.Context, channel string, limit int) ([]string, error) {
	if s.durable(channel) {
		return s.durableChannelHistory(ctx, channel, limit)
	}
	raw, err := s.co.ChannelHistory(ctx, channel, limit)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(raw))
	for i, m := range raw {
		out[i] = string(m)
	}
	return out, nil
}

// checkChannel refuses names that would collide with meshfast's internal
// topics, which share the coordinator's namespace with user channels.
func checkChannel(channel string) error {
	if strings.HasPrefix(channel, "mesh:") {
		return fmt.Errorf("mesh: channel %q: the mesh: prefix is reserved", channel)
	}
	return nil
}

func (s *Server) subscribeChannel(ctx context.Context, c *Connection, channel string, historyLimit int) (bool, []string) {
	if checkChannel(channel) != nil || !s.channels.allowed(c, channel) {
		return false, []string{}
	}
	if err := s.subs.take(ctx, c, channelRoute, channel); err != nil {
		s.log.Warn("mesh: subscribe to a channel failed", "conn", c.id, "channel", channel, "err", err)
		return false, []string{}
	}
	s.channelJoined(c, channel)
	history := []string{}
	if historyLimit > 0 {
		h, err := s.ChannelHistory(ctx, channel, historyLimit)
		if err != nil {
			s.log.Warn("mesh: reading a channel's history failed", "channel", channel, "err", err)
			return false, []string{}
		}
		history = h
	}
	return true, history
}
