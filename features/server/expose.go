package server

import (
	"context"
	"fmt"
	"regexp"

	"github.com/meshfast/meshfast/features/mesh"
	"github.com/meshfast/meshfast/protocol"
)

// expose makes x's exposures on the node's Mesh server and records each
// channel's history. Each exposure's guard is the connection's permissions
// (perms.go): without a token or a connect proxy's answer that carries
// some, it allows every connection. It fails only on a durable channel
// Mesh refuses. Called by Start only, before the node serves.
func (n *Node) expose(x Exposures) error {
	ms := n.Mesh
	for _, c := range x.Channels {
		var err error
		switch {
		case c.Durable && c.Pattern != nil:
			err = ms.ExposeDurableChannelPattern(c.Pattern, guard(permChannel))
		case c.Durable:
			err = ms.ExposeDurableChannel(c.Name, guard(permChannel))
		case c.Pattern != nil:
			ms.ExposeChannelPattern(c.Pattern, guard(permChannel))
		default:
			ms.ExposeChannel(c.Name, guard(permChannel))
		}
		if err != nil {
			return fmt.Errorf("%w: channel %s: %w", ErrInvalidConfig, c.Exposure, err)
		}
		n.history.add(c)
	}
	for _, r := range x.Records {
		if r.Pattern != nil {
			ms.ExposeRecordPattern(r.Pattern, guard(permRecord))
		} else {
			ms.ExposeRecord(r.Name, guard(permRecord))
		}
	}
	for _, r := range x.WritableRecords {
		if r.Pattern != nil {
			ms.ExposeWritableRecordPattern(r.Pattern, guard(permWriteRecord))
		} else {
			ms.ExposeWritableRecord(r.Name, guard(permWriteRecord))
		}
	}
	for _, r := range x.Rooms {
		if r.Pattern != nil {
			ms.ExposeRoomPattern(r.Pattern, guard(permRoom))
		} else {
			ms.ExposeRoom(r.Name, guard(permRoom))
		}
	}
	for _, p := range x.Presence {
		o := mesh.PresenceOptions{TTL: p.TTL, Guard: guard(permPresence)}
		if p.Pattern != nil {
			ms.TrackPresencePattern(p.Pattern, o)
		} else {
			ms.TrackPresence(p.Name, o)
		}
	}
	return nil
}

// guardAllRooms puts the permissions' room check on every room a client
// may join: without Options.Private every room is open, and an exposure
// only adds a guard, so a pattern that matches every name, after the
// configured ones (an exact name and the first matching pattern win), gives
// the rooms no exposure names the same guard. With Private it is not
// added: only the exposed rooms may be joined.
func (n *Node) guardAllRooms() {
	n.Mesh.ExposeRoomPattern(regexp.MustCompile(``), guard(permRoom))
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
