package mesh

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/streams"
	"github.com/meshfast/meshfast/features/streams/store"
	"github.com/meshfast/meshfast/protocol"
	"github.com/meshfast/meshfast/protocol/jsonx"
	"github.com/meshfast/meshfast/protocol/zps"
)

// Durable channels.
//
// A durable channel is a Mesh channel kept in features/streams: each
// message is stored at the channel's next sequence before it is delivered
// (the channel's name is the stream's room, so it must be
// scope:resourceId), its history is the stream's, and a client that lost
// its connection resumes from the last sequence it saw. Mesh clients get
// Mesh's frames; meshfast's client asks for the sequences (protocol's doc,
// "Durable channels").
//
// A node follows a durable channel while it has subscribers for it, as it
// follows any channel (subscriptions.go), through one streams.Listen per
// channel: a durableRoom. Listen hands it every event after its position,
// in order, once; the room encodes each message once per variant (Mesh's
// frame, the frame with the sequence), publishes each to its variant's
// engine topic, and sets pub, the sequence of the last message it
// published (at first the position), under mu.
//
// pub is every subscription's seam. A plain one reads it once its loop has
// the topic, and its history is the stream's messages up to it (one
// published in between may come both live and in the history, as in
// Mesh). A sequenced one is exact. Its connection is held: left out of the
// sequenced topic's publishes (engine.Publish's exclude), from before its
// loop joins the topic until, under mu, it has been sent every message up
// to pub after where it starts (read from the store, and the last few from
// the room's ring). The publishes after that include it, and reach its loop
// after what it was sent. So it gets each message after its start once, in
// order, and the reply's sequence says where the live ones begin.

// DurableMessageType is the event type of the messages published on a
// durable channel through this package. A durable channel's subscribers
// get the events of its stream whatever their type: an event whose
// payload is a JSON string as that string, any other as its JSON text.
const DurableMessageType = "mesh.message"

// durableRing is how many of its last messages a durableRoom keeps, so
// that a resuming subscription a few messages behind at the end of its
// catch-up takes them from memory instead of chasing the store while the
// channel is busy.
const durableRing = 512

// durablePage is the most messages one store read of a catch-up or a
// history takes.
const durablePage = 500

// ErrNoStreams: a durable channel on a coordinator shared by several
// nodes, without Options.Streams.
var ErrNoStreams = errors.New("mesh: durable channels on a shared coordinator need Options.Streams, on a store every node shares")

// durableState is the Streams the server keeps its durable channels in.
type durableState struct {
	mu  sync.Mutex
	st  *streams.Streams
	own bool // made by the server, closed by Close
}

// ExposeDurableChannel lets clients subscribe to the durable channel name,
// if guard (when not nil) allows them, as ExposeChannel does for a channel;
// exposing the name again, durable or not, replaces the exposure. name
// must be a stream room, scope:resourceId (zps.ParseRoom). It fails when
// name is not one, or when the server has no Streams and cannot make one
// (ErrNoStreams).
func (s *Server) ExposeDurableChannel(name string, guard Guard) error {
	if err := checkDurable(name); err != nil {
		return err
	}
	if _, err := s.durableStreams(); err != nil {
		return err
	}
	s.channels.putExact(name, exposure{guard: guard, durable: true})
	return nil
}

// ExposeDurableChannelPattern is ExposeDurableChannel for every channel
// whose name matches re. A matching name that is not scope:resourceId is
// refused when a client subscribes to it (a client that asked for
// sequences is told why), and logged.
func (s *Server) ExposeDurableChannelPattern(re *regexp.Regexp, guard Guard) error {
	if _, err := s.durableStreams(); err != nil {
		return err
	}
	s.channels.putPattern(re, exposure{guard: guard, durable: true})
	return nil
}

// PublishDurable stores message on the durable channel at its next
// sequence, which it returns, then delivers it to the channel's
// subscribers on every node (a node that misses the live delivery reads
// it from the store). It does not look at the exposures: the channel is
// the stream room of that name. To make a retry safe, publish through
// Options.Streams with an event id and a payload that is the message as a
// JSON string.
func (s *Server) PublishDurable(ctx context.Context, channel, message string) (uint64, error) {
	if err := checkDurable(channel); err != nil {
		return 0, err
	}
	st, err := s.durableStreams()
	if err != nil {
		return 0, err
	}
	p, err := st.Publish(ctx, streams.Message{Room: channel, Type: DurableMessageType,
		Payload: protocol.AppendJSONString(nil, message)})
	if err != nil {
		return 0, err
	}
	return p.Sequence, nil
}

// durable reports whether channel is exposed as a durable channel.
func (s *Server) durable(channel string) bool {
	e, ok := s.channels.find(channel)
	return ok && e.durable
}

// checkDurable checks that channel can be a durable channel.
func checkDurable(channel string) error {
	if err := checkChannel(channel); err != nil {
		return err
	}
	if _, _, err := zps.ParseRoom(channel); err != nil {
		return fmt.Errorf("mesh: durable channel %q: its name must be scope:resourceId: %w", channel, err)
	}
	return nil
}

// durableStreams returns the Streams of the durable channels, making it
// on the first call if Options.Streams was nil.
func (s *Server) durableStreams() (*streams.Streams, error) {
	d := &s.durableSt
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st != nil {
		return d.st, nil
	}
	if !s.localRegistry {
		return nil, ErrNoStreams
	}
	if s.closing.Load() {
		return nil, streams.ErrClosed
	}
	st, err := streams.New(streams.Options{PubSub: s.co, Logger: s.log})
	if err != nil {
		return nil, err
	}
	d.st, d.own = st, true
	return st, nil
}

// closeStreams closes the Streams the server made, at Close.
func (s *Server) closeStreams() error {
	d := &s.durableSt
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.own {
		return nil
	}
	d.own = false
	return d.st.Close()
}

// durableRoom is the node following one durable channel.
type durableRoom struct {
	s     *Server
	st    *streams.Streams
	name  string
	plain string // engine topic of Mesh's frames
	seq   string // engine topic of the frames with the sequence
	stop  func() // ends the Listen; set before the room is used

	mu      sync.Mutex
	pub     uint64
	exclude []uint64 // held connections' engine ids; replaced, never changed, as publishes keep it
	ring    [durableRing]*streams.Event
	ringN   int    // messages in ring
	ringAt  int    // where the next goes
	msg     []byte // the message being delivered
}

// attachDurable starts following the durable channel name: the source's
// attach (routes.go). It returns once the room has its position.
func (s *Server) attachDurable(ctx context.Context, src *source, name string) (*durableRoom, error) {
	st, err := s.durableStreams()
	if err != nil {
		return nil, err
	}
	dr := &durableRoom{s: s, st: st, name: name,
		plain: src.routes[0].engineTopic(name), seq: src.routes[1].engineTopic(name)}
	pos, stop, err := st.Listen(ctx, name, dr.deliver)
	if err != nil {
		return nil, err
	}
	dr.stop = stop
	dr.mu.Lock()
	dr.pub = max(dr.pub, pos) // deliver may have run already
	dr.mu.Unlock()
	return dr, nil
}

// close stops following the channel. Any goroutine but the hub's.
func (dr *durableRoom) close() { dr.stop() }

// deliver publishes one message of the channel to both engine topics. It
// runs on a streams hub goroutine, for one room always the same one, in
// sequence order, and does not block (the channel tap aside).
func (dr *durableRoom) deliver(ev *streams.Event) {
	dr.mu.Lock()
	defer dr.mu.Unlock()
	if ev.Sequence <= dr.pub {
		return
	}
	dr.msg = appendDurableMessage(dr.msg[:0], ev.Payload)
	msg := b2s(dr.msg)
	f := engine.AcquireFrame()
	f.SetPayload(engine.OpText, protocol.AppendSubscriptionMessage(f.PayloadBuf(), dr.name, msg))
	dr.s.publishChannel(dr.name, dr.plain, dr.msg, f)
	f.Release()
	f = engine.AcquireFrame()
	f.SetPayload(engine.OpText, protocol.AppendSequencedSubscriptionMessage(f.PayloadBuf(), dr.name, msg, ev.Sequence))
	dr.s.e.Publish(dr.seq, f, dr.exclude)
	f.Release()
	dr.pub = ev.Sequence
	dr.ring[dr.ringAt] = ev
	dr.ringAt = (dr.ringAt + 1) % durableRing
	dr.ringN = min(dr.ringN+1, durableRing)
}

// hold leaves the connection with engine id out of the sequenced topic's
// publishes until join or catchUp lets it in (unhold on failure).
func (dr *durableRoom) hold(id uint64) {
	dr.mu.Lock()
	dr.exclude = append(slices.Clip(dr.exclude), id)
	dr.mu.Unlock()
}

// unhold lets id in again if it is still held. Idempotent.
func (dr *durableRoom) unhold(id uint64) {
	dr.mu.Lock()
	dr.unholdLocked(id)
	dr.mu.Unlock()
}

func (dr *durableRoom) unholdLocked(id uint64) {
	i := slices.Index(dr.exclude, id)
	if i < 0 {
		return
	}
	if len(dr.exclude) == 1 {
		dr.exclude = nil
		return
	}
	dr.exclude = slices.Delete(slices.Clone(dr.exclude), i, i+1)
}

// join returns the seam of a subscription that starts now, letting id in
// if it was held.
func (dr *durableRoom) join(id uint64) uint64 {
	dr.mu.Lock()
	defer dr.mu.Unlock()
	dr.unholdLocked(id)
	return dr.pub
}

// catchUp sends c, held, the channel's messages after after, then lets it
// in, and returns the seam: the live messages are those after it. A
// stream whose head is below after lost what it held and started again
// (a store without persistence, restarted): c then gets it from its
// start, and the seam is below after, which tells the client. If the
// node is behind the stream (pub below after, the messages between on
// their way), the seam is after and the live messages up to it are ones
// the client saw. Command goroutine.
func (dr *durableRoom) catchUp(ctx context.Context, c *Connection, after uint64) (uint64, error) {
	id := c.c.ID()
	heads, err := dr.st.Store().Heads(ctx, []string{dr.name})
	if err != nil {
		return 0, err
	}
	sent := after
	if heads[0] < after {
		sent = 0
	}
	var msg []byte
	for {
		dr.mu.Lock()
		p := dr.pub
		if p <= sent {
			dr.unholdLocked(id)
			dr.mu.Unlock()
			return sent, nil
		}
		if dr.ringHolds(sent) {
			for i := durableRing - dr.ringN; i < durableRing; i++ {
				if ev := dr.ring[(dr.ringAt+i)%durableRing]; ev.Sequence > sent {
					msg = dr.send(c, ev, msg)
				}
			}
			dr.unholdLocked(id)
			dr.mu.Unlock()
			return p, nil
		}
		dr.mu.Unlock()
		res, err := dr.st.Replay(ctx, streams.ReplayOptions{Room: dr.name, FromSequence: sent, ToSequence: p, Limit: durablePage})
		if err != nil {
			return 0, err
		}
		for i := range res.Events {
			msg = dr.send(c, &res.Events[i], msg)
		}
		sent = max(sent, res.Next)
		if !res.More {
			sent = max(sent, p)
		}
		// One page at a time on the loop: a long backlog goes out at the
		// pace the loop writes it, and stops if c closes.
		if !c.c.DoWait(func(*engine.Conn) {}) {
			return 0, errConnectionGone
		}
	}
}

// ringHolds reports whether the ring holds every message after sent up to
// pub. mu is held.
func (dr *durableRoom) ringHolds(sent uint64) bool {
	if dr.ringN == 0 {
		return false
	}
	oldest := dr.ring[(dr.ringAt+durableRing-dr.ringN)%durableRing]
	return oldest.Sequence <= sent+1
}

// send pushes ev to c alone, with its sequence; buf is scratch space,
// returned for the next call.
func (dr *durableRoom) send(c *Connection, ev *streams.Event, buf []byte) []byte {
	buf = appendDurableMessage(buf[:0], ev.Payload)
	f := engine.AcquireFrame()
	f.SetPayload(engine.OpText, protocol.AppendSequencedSubscriptionMessage(f.PayloadBuf(), dr.name, b2s(buf), ev.Sequence))
	c.c.Send(f)
	f.Release()
	return buf
}

// durableHistory returns up to limit of the channel's messages up to pos,
// newest first, with their sequences (at most store.MaxLimit).
func (s *Server) durableHistory(ctx context.Context, st *streams.Streams, channel string, pos uint64, limit int) ([]string, []uint64, error) {
	limit = min(limit, store.MaxLimit)
	if pos == 0 || limit <= 0 {
		return []string{}, nil, nil
	}
	var evs []streams.Event
	for from := pos - min(pos, uint64(limit)); from < pos; {
		res, err := st.Replay(ctx, streams.ReplayOptions{Room: channel, FromSequence: from, ToSequence: pos, Limit: durablePage})
		if err != nil {
			return nil, nil, err
		}
		evs = append(evs, res.Events...)
		if !res.More {
			break
		}
		from = res.Next
	}
	history, seqs := make([]string, len(evs)), make([]uint64, len(evs))
	var buf []byte
	for i := range evs {
		ev := &evs[len(evs)-1-i]
		buf = appendDurableMessage(buf[:0], ev.Payload)
		history[i], seqs[i] = string(buf), ev.Sequence
	}
	return history, seqs, nil
}

// appendDurableMessage appends the Mesh message an event carries: a JSON
// string's value, the text of any other JSON value (null for none).
func appendDurableMessage(dst []byte, payload json.RawMessage) []byte {
	p := bytes.TrimSpace(payload)
	switch {
	case len(p) == 0:
		return append(dst, "null"...)
	case len(p) >= 2 && p[0] == '"':
		return jsonx.AppendUnescaped(dst, p[1:len(p)-1])
	}
	return append(dst, p...)
}

// subscribeDurable is mesh/subscribe-channel on a durable channel, after
// the exposure, its guard and the limit admitted it.
func (s *Server) subscribeDurable(c *Context, req *protocol.SubscribeChannelRequest) (any, error) {
	name := req.Channel
	refused := protocol.SubscribeChannelReply{History: []string{}}
	if err := checkDurable(name); err != nil {
		s.log.Warn("mesh: a durable channel exposure matches a name that is not scope:resourceId; subscription refused", "channel", name)
		if req.Sequenced {
			return nil, protocol.InvalidArgument(fmt.Sprintf("durable channel %q: its name must be scope:resourceId", name))
		}
		return refused, nil
	}
	r := durablePlainRoute
	if req.Sequenced {
		r = durableSeqRoute
	}
	id := c.Conn.c.ID()
	var dr *durableRoom
	err := s.subs.takeWith(c, c.Conn, r, name, func() {
		dr = s.subs.room(name)
		if r == durableSeqRoute {
			dr.hold(id)
		}
	})
	if dr != nil {
		defer dr.unhold(id) // when something failed
	}
	if err != nil {
		return s.durableFailed(c, req, err)
	}
	var pos uint64
	if r == durableSeqRoute && req.After != nil {
		pos, err = dr.catchUp(c, c.Conn, *req.After)
	} else {
		pos = dr.join(id)
	}
	reply := protocol.SubscribeChannelReply{Success: true, History: []string{}}
	if err == nil && req.HistoryLimit > 0 && req.After == nil {
		reply.History, reply.HistorySequences, err = s.durableHistory(c, dr.st, name, pos, req.HistoryLimit)
	}
	if err != nil {
		s.subs.drop(context.WithoutCancel(c), c.Conn, durableSource, name)
		return s.durableFailed(c, req, err)
	}
	s.channelJoined(c.Conn, name)
	if req.Sequenced {
		reply.Sequence = &pos
	} else {
		reply.HistorySequences = nil
	}
	return reply, nil
}

// durableFailed answers a durable subscription that failed: Mesh's
// refusal for a Mesh client, an error a client that asked for sequences
// can tell from a refusal (EUNAVAILABLE when the store or pub/sub failed:
// it tries again, with its position, rather than forgetting the channel).
func (s *Server) durableFailed(c *Context, req *protocol.SubscribeChannelRequest, err error) (any, error) {
	if !errors.Is(err, errConnectionGone) {
		s.log.Warn("mesh: subscribe to a durable channel failed", "conn", c.Conn.id, "channel", req.Channel, "err", err)
	}
	if !req.Sequenced {
		return protocol.SubscribeChannelReply{History: []string{}}, nil
	}
	if errors.Is(err, errConnectionGone) {
		return nil, fmt.Errorf("%w (%s: %w)", errCoordinator, c.Command, err)
	}
	s.m.coordError()
	return nil, fmt.Errorf("%w (%s: %w)", errUnavailable, c.Command, err)
}

// durableChannelHistory is ChannelHistory for a durable channel.
func (s *Server) durableChannelHistory(ctx context.Context, channel string, limit int) ([]string, error) {
	if err := checkDurable(channel); err != nil {
		return nil, err
	}
	st, err := s.durableStreams()
	if err != nil {
		return nil, err
	}
	heads, err := st.Store().Heads(ctx, []string{channel})
	if err != nil {
		return nil, err
	}
	h, _, err := s.durableHistory(ctx, st, channel, heads[0], limit)
	return h, err
}
