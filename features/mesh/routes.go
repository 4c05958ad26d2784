package mesh

import (
	"context"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/protocol"
)

// The kinds of things a connection can subscribe to, each declared once.
//
// A source is what a node subscribes to in the coordinator on behalf of
// its connections: a coordinator topic per name, and a delivery that turns
// each message on it into frames for the engine. A route is how a
// connection receives a source: the engine topic it joins on its loop. A
// source has one route, or one per mode (a record: full or patch), and a
// connection receives a source's name through at most one of its routes.
// subscriptions (subscriptions.go) keeps every subscription on all the
// layers it lives on; nothing else does.

// source is one kind of subscribable thing, for all names.
type source struct {
	kind string // for logs
	// coordTopic is the coordinator topic that carries name's messages.
	coordTopic func(name string) string
	// deliver returns what the node does with a message on name's
	// coordinator topic. It runs on the coordinator's goroutine and must
	// not block; it is made once per subscribed name, so per-name work
	// (topic strings) belongs outside the returned function.
	deliver func(s *Server, src *source, name string) coord.Handler
	// attach replaces coordTopic and deliver for a source the node does
	// not follow through a coordinator topic: a durable channel, which it
	// follows through features/streams (durable.go). It returns once the
	// node follows name.
	attach func(s *Server, ctx context.Context, src *source, name string) (*durableRoom, error)
	// tally counts one subscribed name in LocalTopics; nil: not counted.
	tally  func(*TopicCounts)
	routes []*route
}

// route is one way for a connection to receive a source.
type route struct {
	src    *source
	prefix string // the engine topic is prefix + name
}

func (r *route) engineTopic(name string) string { return r.prefix + name }

// newSource declares a source with a route per engine topic prefix.
func newSource(kind string, coordTopic func(string) string, deliver func(*Server, *source, string) coord.Handler,
	tally func(*TopicCounts), enginePrefixes ...string) *source {
	src := &source{kind: kind, coordTopic: coordTopic, deliver: deliver, tally: tally}
	for _, p := range enginePrefixes {
		src.routes = append(src.routes, &route{src: src, prefix: p})
	}
	return src
}

// newAttachedSource declares a source the node follows through attach.
func newAttachedSource(kind string, attach func(*Server, context.Context, *source, string) (*durableRoom, error),
	tally func(*TopicCounts), enginePrefixes ...string) *source {
	src := newSource(kind, nil, nil, tally, enginePrefixes...)
	src.attach = attach
	return src
}

// The sources and routes. Each engine topic prefix is unique, and no
// coordinator topic of one source can be another's: channel names may not
// start with "mesh:" (checkChannel).
var (
	channelSource = newSource("channel", func(name string) string { return name },
		(*Server).deliverChannel, func(tc *TopicCounts) { tc.Channels++ }, "c:")
	roomSource = newSource("room", func(name string) string { return coordRoomPrefix + name },
		(*Server).deliverRoom, func(tc *TopicCounts) { tc.Rooms++ }, "r:")
	recordSource = newSource("record", func(name string) string { return coordRecordPrefix + name },
		(*Server).deliverRecord, func(tc *TopicCounts) { tc.Records++ }, "rf:", "rp:")
	presenceSource = newSource("presence", coord.PresenceTopic,
		(*Server).deliverPresence, func(tc *TopicCounts) { tc.Presence++ }, "p:")
	// A durable channel has Mesh's frames (plain) and the frames with
	// sequences that meshfast's client asks for (durable.go).
	durableSource = newAttachedSource("durable channel", (*Server).attachDurable,
		func(tc *TopicCounts) { tc.Channels++ }, "dc:", "ds:")

	channelRoute      = channelSource.routes[0]
	roomRoute         = roomSource.routes[0]
	recordFullRoute   = recordSource.routes[0]
	recordPatchRoute  = recordSource.routes[1]
	presenceRoute     = presenceSource.routes[0]
	durablePlainRoute = durableSource.routes[0]
	durableSeqRoute   = durableSource.routes[1]
)

// Coordinator topics of the node as a whole and of rooms and records.
const (
	topicAllCoord     = "mesh:broadcast:all"
	coordRoomPrefix   = "mesh:broadcast:room:"
	coordRecordPrefix = "mesh:record-updates:"
)

// deliverChannel: the message is the channel message itself.
func (s *Server) deliverChannel(src *source, channel string) coord.Handler {
	et := src.routes[0].engineTopic(channel)
	return func(_ string, p []byte) {
		f := engine.AcquireFrame()
		f.SetPayload(engine.OpText, protocol.AppendSubscriptionMessage(f.PayloadBuf(), channel, b2s(p)))
		s.publishChannel(channel, et, p, f)
		f.Release()
	}
}

// deliverRoom: the message is an envelope (ids to skip, then the frame).
func (s *Server) deliverRoom(src *source, room string) coord.Handler {
	et := src.routes[0].engineTopic(room)
	return func(_ string, p []byte) { s.deliverEnvelope(et, p) }
}

// deliverPresence: the message is the encoded presence update.
func (s *Server) deliverPresence(src *source, room string) coord.Handler {
	et := src.routes[0].engineTopic(room)
	return func(_ string, p []byte) { s.deliverFrame(et, p) }
}

// deliverRecord: the message carries the whole value and the patch; each
// mode's subscribers get theirs (records.go).
func (s *Server) deliverRecord(src *source, id string) coord.Handler {
	full, patch := src.routes[0].engineTopic(id), src.routes[1].engineTopic(id)
	return func(_ string, p []byte) { s.deliverRecordUpdate(id, full, patch, p) }
}
