package mesh

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/engine"
)

func randRead(b []byte) (int, error) { return rand.Read(b) }

// subscribeNode subscribes the node, for its whole life, to the topics
// that reach every node (broadcasts to all) and this node alone.
func (s *Server) subscribeNode(ctx context.Context) error {
	for _, t := range []struct {
		topic string
		h     coord.Handler
	}{
		{topicAllCoord, func(_ string, p []byte) { s.deliverEnvelope("", p) }},
		{coord.NodeTopic(s.nodeID), func(_ string, p []byte) { s.onNodeMessage(p) }},
	} {
		sub, err := s.co.Subscribe(ctx, t.topic, t.h)
		if err != nil {
			return fmt.Errorf("mesh: subscribe %q: %w", t.topic, err)
		}
		s.nodeSubs = append(s.nodeSubs, sub)
	}
	return nil
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
		if eid, ok := s.engineID(b2s(id)); ok { // another node's id is not ours
			exclude = append(exclude, eid)
		}
	})
	if !ok {
		return
	}
	f := engine.AcquireFrame()
	f.SetPayload(engine.OpText, append(f.PayloadBuf(), frame...))
	s.streamPush(engineTopic, frame, f)
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
	nodeMsgClose = 'C' // close a connection of this node (Disconnect elsewhere)
)

func (s *Server) onNodeMessage(p []byte) {
	if len(p) == 0 {
		return
	}
	switch p[0] {
	case nodeMsgFrame:
		s.deliverTargeted(p[1:])
	case nodeMsgClose:
		s.onNodeClose(p[1:])
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
		// Subscribing waits on the coordinator and the loop: not on this
		// goroutine. In the connection's queue, so that changes from other
		// nodes apply in the order they were made, and in order with the
		// connection's own commands.
		join := p[0] == nodeMsgJoin
		s.enqueueTask(c, func() {
			ctx, cancel := s.ctx()
			defer cancel()
			if join {
				if err := s.joinLocal(ctx, c, room); err != nil {
					s.log.Warn("mesh: joining a room for another node failed", "conn", c.id, "room", room, "err", err)
				}
			} else {
				s.leaveLocal(ctx, c, room)
			}
		})
	}
}

func (s *Server) deliverTargeted(p []byte) {
	var targets []*engine.Conn
	frame, ok := parseEnvelope(p, func(id []byte) {
		if c := s.Connection(b2s(id)); c != nil {
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
