package mesh

import (
	"context"
	"errors"
	"strconv"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/engine"
)

// Messages to a user: SendToUser reaches every connection whose
// authenticated user id (Identity.User) is that user, on every node.
//
// The index from a user to its connections is the coordinator's pub/sub
// itself: each node subscribes to the user's topic while it has at least
// one connection of that user (a subscription like a room's, counted by
// reference on the node, subscriptions.go), and a message to the user is
// one publish on that topic. The coordinator delivers it to the nodes that
// have the user's connections, and only to them; each node's engine
// delivers it to its own. That scales both ways the alternatives do not:
//
//   - a user → connections index kept in the coordinator costs a write at
//     every handshake and every close (the cost that dominates a
//     reconnect storm), plus a lookup and a routing step per message;
//   - routing every user message to every node costs each node one
//     delivery per message for every user on the cluster, most of them
//     not its own, so a cluster's message load grows with its node count.
//
// Here a handshake costs the node a coordinator subscription only for a
// user it did not have yet, a message costs one publish, and each node
// receives only the messages of its users. The subscription is taken in
// the connection's command queue right after registration, so it is in
// place before the connection's first command runs; a message published
// before that (within the connection's first moments) does not reach it.

// coordUserPrefix starts a user's coordinator topic.
const coordUserPrefix = "mesh:user:"

var (
	userSource = newSource("user", func(name string) string { return coordUserPrefix + name },
		(*Server).deliverUser, nil, "u:")
	userRoute = userSource.routes[0]
)

// deliverUser: the message is an envelope, as a room broadcast's.
func (s *Server) deliverUser(src *source, user string) coord.Handler {
	et := src.routes[0].engineTopic(user)
	return func(_ string, p []byte) { s.deliverEnvelope(et, p) }
}

// SendToUser sends {"command", "payload"} to every connection of user
// (Connection.User), on every node. A user with no connection gets
// nothing; that is not an error.
func (s *Server) SendToUser(ctx context.Context, user, command string, payload any) error {
	if user == "" {
		return errors.New("mesh: SendToUser: empty user")
	}
	frame, err := encodePushBytes(command, payload)
	if err != nil {
		return err
	}
	return s.co.Publish(ctx, userSource.coordTopic(user), appendEnvelope(nil, nil, frame))
}

// subscribeUser gives a just registered connection of a user its share of
// the user's topic, in its queue, ahead of its commands, those that came
// while it registered included.
func (s *Server) subscribeUser(c *Connection, user string) {
	s.enqueueTaskFirst(c, func() {
		ctx, cancel := s.ctx()
		defer cancel()
		if err := s.subs.take(ctx, c, userRoute, user); err != nil && !errors.Is(err, errConnectionGone) {
			s.log.Warn("mesh: subscribing a connection to its user's messages failed", "conn", c.id, "user", user, "err", err)
		}
	})
}

// ErrConnectionNotFound is returned for a connection id that no node has
// registered.
var ErrConnectionNotFound = errors.New("mesh: connection not found")

// Disconnect closes the connection connID, on whichever node has it, with
// code and reason (a close code a server may send; 0 means 1000). It
// returns ErrConnectionNotFound if no node has it registered.
func (s *Server) Disconnect(ctx context.Context, connID string, code engine.CloseCode, reason string) error {
	if code == 0 {
		code = engine.CloseNormal
	}
	if !closeCodeValid(code) {
		return errors.New("mesh: Disconnect: not a close code a server may send")
	}
	reason = truncateReason(reason)
	if c := s.Connection(connID); c != nil {
		c.c.CloseAsync(code, reason)
		return nil
	}
	node, err := s.co.ConnectionNode(ctx, connID)
	if errors.Is(err, coord.ErrNotFound) {
		return ErrConnectionNotFound
	}
	if err != nil {
		return err
	}
	if node == s.nodeID { // registered here, but closed meanwhile
		return nil
	}
	msg := appendEnvelope([]byte{nodeMsgClose}, []string{connID, strconv.Itoa(int(code)), reason}, nil)
	return s.co.Publish(ctx, coord.NodeTopic(node), msg)
}

// onNodeClose closes a local connection another node's Disconnect named.
func (s *Server) onNodeClose(p []byte) {
	var parts []string
	if _, ok := parseEnvelope(p, func(b []byte) { parts = append(parts, string(b)) }); !ok || len(parts) != 3 {
		return
	}
	code, err := strconv.Atoi(parts[1])
	if err != nil || !closeCodeValid(engine.CloseCode(code)) {
		return
	}
	if c := s.Connection(parts[0]); c != nil {
		c.c.CloseAsync(engine.CloseCode(code), parts[2])
	}
}
