package realtime

import (
	"net"

	"github.com/meshfast/meshfast/features/mesh"
)

// Socket is a WebSocket driver connection: a Mesh connection. Its methods
// are safe from any goroutine.
type Socket struct{ c *mesh.Connection }

// ID is the Mesh connection id.
func (s *Socket) ID() string { return s.c.ID() }

// User is the connection's user as Options.Mesh.Authenticate named it.
func (s *Socket) User() string { return s.c.User() }

// RemoteAddr is the client's address.
func (s *Socket) RemoteAddr() net.Addr { return s.c.RemoteAddr() }

// Send sends ev to this connection alone, as a Mesh push {"command":
// ev.Event, "payload": ev.Data} ("message" for an empty Event).
func (s *Socket) Send(ev Event) error {
	name, data, err := pushParts(ev)
	if err != nil {
		return err
	}
	return s.c.Send(name, data)
}

// Close closes the connection normally.
func (s *Socket) Close() { s.c.Close() }

// Connection is the Mesh connection.
func (s *Socket) Connection() *mesh.Connection { return s.c }

// onMessage is WebSocketOptions.MessageCommand's handler.
func (rt *Realtime) onMessage(c *mesh.Context) (any, error) {
	rt.opts.WebSocket.OnMessage(&Socket{c: c.Conn}, c.Payload)
	return true, nil
}
