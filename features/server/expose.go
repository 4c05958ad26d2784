package server

import (
	"context"

	"github.com/meshfast/meshfast/features/mesh"
	"github.com/meshfast/meshfast/protocol"
)

// expose makes x's exposures on the node's Mesh server and records each
// channel's history. Called by Start only, before the node serves.
func (n *Node) expose(x Exposures) {
	ms := n.Mesh
	for _, c := range x.Channels {
		if c.Pattern != nil {
			ms.ExposeChannelPattern(c.Pattern, nil)
		} else {
			ms.ExposeChannel(c.Name, nil)
		}
		n.history.add(c)
	}
	for _, r := range x.Records {
		if r.Pattern != nil {
			ms.ExposeRecordPattern(r.Pattern, nil)
		} else {
			ms.ExposeRecord(r.Name, nil)
		}
	}
	for _, r := range x.WritableRecords {
		if r.Pattern != nil {
			ms.ExposeWritableRecordPattern(r.Pattern, nil)
		} else {
			ms.ExposeWritableRecord(r.Name, nil)
		}
	}
	for _, p := range x.Presence {
		o := mesh.PresenceOptions{TTL: p.TTL}
		if p.Pattern != nil {
			ms.TrackPresencePattern(p.Pattern, o)
		} else {
			ms.TrackPresence(p.Name, o)
		}
	}
}

// PublishToChannel sends message to every subscriber of channel on every
// node, keeping as many of the channel's newest messages as its exposure's
// History says (none for a channel no configured exposure names).
// Safe from any goroutine.
func (n *Node) PublishToChannel(ctx context.Context, channel, message string) error {
	h, _ := n.history.lookup(channel)
	return n.Mesh.PublishToChannel(ctx, channel, message, h)
}

// boundHistory is mesh/subscribe-channel's middleware: it lowers a
// client's historyLimit to the channel's configured History, so that a
// subscriber gets at most what the exposure keeps even from a history
// others filled (another node or Mesh server on the same coordinator,
// with a longer history). A channel exposed through Node.Mesh directly,
// which no configured exposure names, is left as Mesh has it.
func (n *Node) boundHistory(c *mesh.Context) error {
	var req protocol.SubscribeChannelRequest
	if c.Bind(&req) != nil {
		return nil // the handler answers a payload it cannot read
	}
	h, ok := n.history.lookup(req.Channel)
	if !ok || req.HistoryLimit <= h {
		return nil
	}
	req.HistoryLimit = h
	p, err := protocol.Marshal(req)
	if err != nil {
		return err
	}
	c.Payload = p
	return nil
}

// histories is the History of each configured channel exposure, found as
// the Mesh server finds an exposure: the exact name, else the first
// pattern that matches; exposing a name or pattern again replaces it in
// place. Written before the node serves, read-only after.
type histories struct {
	exact    map[string]int
	patterns []ChannelExposure
}

func (h *histories) add(c ChannelExposure) {
	if c.Pattern == nil {
		if h.exact == nil {
			h.exact = make(map[string]int)
		}
		h.exact[c.Name] = c.History
		return
	}
	for i, p := range h.patterns {
		if p.Pattern.String() == c.Pattern.String() {
			h.patterns[i].History = c.History
			return
		}
	}
	h.patterns = append(h.patterns, c)
}

func (h *histories) lookup(channel string) (int, bool) {
	if n, ok := h.exact[channel]; ok {
		return n, true
	}
	for _, p := range h.patterns {
		if p.Pattern.MatchString(channel) {
			return p.History, true
		}
	}
	return 0, false
}
