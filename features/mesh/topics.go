package mesh

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/protocol"
)

// Engine topics: the per-loop subscriber tables a frame is published to on
// this node. Coordinator topics: what nodes subscribe to for each of them.
const (
	topicAllCoord = "mesh:broadcast:all"

	engineChannelPrefix  = "c:"
	engineRoomPrefix     = "r:"
	enginePresencePrefix = "p:"
	coordRoomPrefix      = "mesh:broadcast:room:"
	// coordRecordPrefix + record id carries that record's updates to the
	// nodes that have subscribers to it (records.go).
	coordRecordPrefix = "mesh:record-updates:"
)

func randRead(b []byte) (int, error) { return rand.Read(b) }

// nodeTopics holds this node's coordinator subscriptions, each shared by
// every local connection that needs it and dropped with the last one.
type nodeTopics struct {
	s    *Server
	mu   sync.Mutex
	subs map[string]*nodeSub
}

type nodeSub struct {
	sub   coord.Subscription
	refs  int
	ready chan struct{}
	err   error
}

func (n *nodeTopics) init(s *Server) {
	n.s = s
	n.subs = make(map[string]*nodeSub)
}

// retainNode subscribes for the node's whole life (broadcasts to all, the
// node's own topic).
func (n *nodeTopics) retainNode(ctx context.Context, coordTopic, engineTopic string) error {
	return n.retain(ctx, coordTopic)
}

// retain takes a reference on coordTopic, subscribing on the first one, and
// returns once the subscription is live.
func (n *nodeTopics) retain(ctx context.Context, coordTopic string) error {
	n.mu.Lock()
	ns := n.subs[coordTopic]
	if ns != nil {
		ns.refs++
		n.mu.Unlock()
		select {
		case <-ns.ready:
		case <-ctx.Done():
			n.release(context.Background(), coordTopic)
			return ctx.Err()
		}
		if ns.err != nil {
			n.release(context.Background(), coordTopic)
			return ns.err
		}
		return nil
	}
	ns = &nodeSub{refs: 1, ready: make(chan struct{})}
	n.subs[coordTopic] = ns
	n.mu.Unlock()
	sub, err := n.s.co.Subscribe(ctx, coordTopic, n.s.coordHandler(coordTopic))
	ns.sub, ns.err = sub, err
	close(ns.ready)
	if err != nil {
		n.mu.Lock()
		if n.subs[coordTopic] == ns {
			delete(n.subs, coordTopic)
		}
		n.mu.Unlock()
		return fmt.Errorf("mesh: subscribe %q: %w", coordTopic, err)
	}
	return nil
}

// release drops a reference taken by retain.
func (n *nodeTopics) release(ctx context.Context, coordTopic string) {
	n.mu.Lock()
	ns := n.subs[coordTopic]
	if ns == nil {
		n.mu.Unlock()
		return
	}
	ns.refs--
	if ns.refs > 0 {
		n.mu.Unlock()
		return
	}
	delete(n.subs, coordTopic)
	n.mu.Unlock()
	<-ns.ready
	if ns.err == nil {
		_ = n.s.co.Unsubscribe(ctx, ns.sub)
	}
}

func (n *nodeTopics) closeAll(ctx context.Context) {
	n.mu.Lock()
	subs := n.subs
	n.subs = make(map[string]*nodeSub)
	n.mu.Unlock()
	for _, ns := range subs {
		<-ns.ready
		if ns.err == nil {
			_ = n.s.co.Unsubscribe(ctx, ns.sub)
		}
	}
}

// coordHandler returns what this node does with a message on coordTopic:
// build the frame once and hand it to the engine. It runs on the
// coordinator's goroutine and does not block.
func (s *Server) coordHandler(coordTopic string) coord.Handler {
	switch {
	case coordTopic == topicAllCoord:
		return func(_ string, p []byte) { s.deliverEnvelope("", p) }
	case coordTopic == coord.NodeTopic(s.nodeID):
		return func(_ string, p []byte) { s.onNodeMessage(p) }
	case strings.HasPrefix(coordTopic, coordRoomPrefix):
		et := engineRoomPrefix + coordTopic[len(coordRoomPrefix):]
		return func(_ string, p []byte) { s.deliverEnvelope(et, p) }
	case strings.HasPrefix(coordTopic, coordRecordPrefix):
		return s.recordUpdateHandler(coordTopic[len(coordRecordPrefix):])
	case strings.HasPrefix(coordTopic, coord.PresenceTopicPrefix):
		et := enginePresencePrefix + coordTopic[len(coord.PresenceTopicPrefix):]
		return func(_ string, p []byte) { s.deliverFrame(et, p) }
	default: // a user channel: the payload is the message itself
		channel := coordTopic
		et := engineChannelPrefix + channel
		return func(_ string, p []byte) {
			f := engine.AcquireFrame()
			f.SetPayload(engine.OpText, protocol.AppendSubscriptionMessage(f.PayloadBuf(), channel, b2s(p)))
			s.e.Publish(et, f, nil)
			f.Release()
		}
	}
}

// deliverFrame publishes an already encoded frame to an engine topic.
func (s *Server) deliverFrame(engineTopic string, frame []byte) {
	f := engine.AcquireFrame()
	f.SetPayload(engine.OpText, append(f.PayloadBuf(), frame...))
	s.e.Publish(engineTopic, f, nil)
	f.Release()
}

// An envelope carries a broadcast between nodes: the Mesh connection ids
// to skip (or to reach, for a node topic), then the encoded frame.
//
//	uvarint count, count × (uvarint len, id bytes), frame bytes
func appendEnvelope(dst []byte, ids []string, frame []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for _, id := range ids {
		dst = binary.AppendUvarint(dst, uint64(len(id)))
		dst = append(dst, id...)
	}
	return append(dst, frame...)
}

func parseEnvelope(p []byte, visit func(id []byte)) (frame []byte, ok bool) {
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)) {
		return nil, false
	}
	p = p[k:]
	for i := uint64(0); i < n; i++ {
		l, k := binary.Uvarint(p)
		if k <= 0 || l > uint64(len(p)-k) {
			return nil, false
		}
		visit(p[k : k+int(l)])
		p = p[k+int(l):]
	}
	return p, true
}

func (s *Server) deliverEnvelope(engineTopic string, p []byte) {
	var exclude []uint64
	frame, ok := parseEnvelope(p, func(id []byte) {
		if c := s.Connection(string(id)); c != nil {
			exclude = append(exclude, c.c.ID())
		}
	})
	if !ok {
		return
	}
	f := engine.AcquireFrame()
	f.SetPayload(engine.OpText, append(f.PayloadBuf(), frame...))
	if engineTopic == "" { // everyone on this node speaking Mesh
		s.e.PublishAll(f, exclude, (*handler)(s))
	} else {
		s.e.Publish(engineTopic, f, exclude)
	}
	f.Release()
}

// Messages on a node's own topic start with their kind.
const (
	nodeMsgFrame = 'F' // an envelope: target connection ids, then a frame
	nodeMsgJoin  = 'J' // a connection of this node was added to a room elsewhere
	nodeMsgLeave = 'L' // a connection of this node was removed from a room elsewhere
)

func (s *Server) onNodeMessage(p []byte) {
	if len(p) == 0 {
		return
	}
	switch p[0] {
	case nodeMsgFrame:
		s.deliverTargeted(p[1:])
	case nodeMsgJoin, nodeMsgLeave:
		var room, id string
		if _, ok := parseEnvelope(p[1:], func(b []byte) {
			if room == "" {
				room = string(b)
			} else {
				id = string(b)
			}
		}); !ok || id == "" {
			return
		}
		c := s.Connection(id)
		if c == nil {
			return
		}
		// Subscribing waits on the coordinator and the loop: not on this goroutine.
		join := p[0] == nodeMsgJoin
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			ctx, cancel := s.ctx()
			defer cancel()
			if join {
				s.joinLocal(ctx, c, room)
			} else {
				s.leaveLocal(ctx, c, room)
			}
		}()
	}
}

func (s *Server) deliverTargeted(p []byte) {
	var targets []*engine.Conn
	frame, ok := parseEnvelope(p, func(id []byte) {
		if c := s.Connection(string(id)); c != nil {
			targets = append(targets, c.c)
		}
	})
	if !ok || len(targets) == 0 {
		return
	}
	f := engine.AcquireFrame()
	f.SetPayload(engine.OpText, append(f.PayloadBuf(), frame...))
	s.e.Broadcast(f, targets, nil)
	f.Release()
}

// TopicCounts is how many rooms, channels, presence rooms and records this
// node has local subscribers for.
type TopicCounts struct {
	Rooms, Channels, Presence, Records int
}

// LocalTopics counts what this node's connections are subscribed to.
func (s *Server) LocalTopics() TopicCounts {
	var tc TopicCounts
	s.topics.mu.Lock()
	defer s.topics.mu.Unlock()
	for t := range s.topics.subs {
		switch {
		case strings.HasPrefix(t, coordRoomPrefix):
			tc.Rooms++
		case strings.HasPrefix(t, coordRecordPrefix):
			tc.Records++
		case strings.HasPrefix(t, coord.PresenceTopicPrefix):
			tc.Presence++
		case t == topicAllCoord || t == coord.NodeTopic(s.nodeID):
		default:
			tc.Channels++
		}
	}
	return tc
}
