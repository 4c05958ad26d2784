package mesh

import (
	"math/bits"
	"strconv"
	"strings"

	"github.com/meshfast/meshfast/engine"
)

// A Mesh connection id is "conn-", this server's tag, then the engine
// connection's id in base 36:
//
//	conn-k3j9x0a2 1z4kq8
//	     tag      engine id
//
// The tag is random per Server, so ids are unique across the cluster and
// across restarts of a node (an engine's ids start over); the engine id is
// unique per engine. Finding a local connection by its Mesh id is then a
// parse and a lookup in the engine's lock-free registry (engine.Lookup): the
// server keeps no table of its own. Ids stay opaque to clients, as Mesh's
// are.

const (
	connIDPrefix = "conn-"
	connTagLen   = 8 // base-36 digits: 41 bits
)

// newConnTag returns a random tag of connTagLen base-36 digits.
func newConnTag() string {
	var b [connTagLen]byte
	_, _ = randRead(b[:])
	for i := range b {
		b[i] = digits36[int(b[i])%36] // the bias is harmless for uniqueness
	}
	return string(b[:])
}

const digits36 = "0123456789abcdefghijklmnopqrstuvwxyz"

// newConnID is the Mesh id of a local engine connection.
func (s *Server) newConnID(ec *engine.Conn) string {
	var b [len(connIDPrefix) + connTagLen + 13]byte // 13 base-36 digits hold 64 bits
	buf := append(b[:0], s.idPrefix...)
	buf = strconv.AppendUint(buf, ec.ID(), 36)
	return string(buf)
}

// engineID returns the engine id inside a Mesh id made by this server; ok
// is false for any other string (another node's id, a forged one). Only
// the spelling newConnID makes is accepted, so no two strings name one
// connection. It does not allocate.
func (s *Server) engineID(id string) (uint64, bool) {
	if !strings.HasPrefix(id, s.idPrefix) {
		return 0, false
	}
	d := id[len(s.idPrefix):]
	if d == "" || d[0] == '0' || len(d) > 13 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(d); i++ {
		var v byte
		switch c := d[i]; {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'z':
			v = c - 'a' + 10
		default:
			return 0, false
		}
		hi, lo := bits.Mul64(n, 36)
		sum, carry := bits.Add64(lo, uint64(v), 0)
		if hi != 0 || carry != 0 {
			return 0, false
		}
		n = sum
	}
	return n, true
}

// Connection returns the local connection with the Mesh id id, or nil if
// no open connection of this server has it.
func (s *Server) Connection(id string) *Connection {
	eid, ok := s.engineID(id)
	if !ok {
		return nil
	}
	ec := s.e.Lookup(eid)
	if ec == nil || ec.Handler() != (*handler)(s) {
		return nil
	}
	c, _ := ec.Value().(*Connection)
	if c == nil || c.closed.Load() {
		return nil
	}
	return c
}
