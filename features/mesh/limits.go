package mesh

import (
	"math"
	"time"

	"github.com/meshfast/meshfast/protocol"
)

// Per-connection limits: rooms joined, subscriptions held, and the rate of
// commands (Options.MaxRoomsPerConnection, MaxSubscriptionsPerConnection,
// CommandRate). Each refusal is an error reply with code ELIMIT, counted in
// mesh_limit_refusals_total by limit, so that a client can tell a limit
// from a refusal of access (EFORBIDDEN) and back off.
//
// A client past its command rate is answered with ELIMIT rather than
// slowed down. The queue (queue.go) already slows a client whose commands
// take long to run; the rate limit is for one whose commands are cheap
// but too many (a loop gone wrong, a scraper), which slowing would let go
// on holding a queue, a goroutine and a backend's share for as long as it
// keeps sending. An answer at once costs the node no handler, no
// coordinator call and no proxied request, keeps the replies in order
// (it is answered in turn), and tells an honest client what happened; the
// burst lets an honest client's bursts through.

// CodeLimit is the error code of a command refused by a per-connection
// limit.
const CodeLimit = "ELIMIT"

// Refusals of the limits.
var (
	errRateLimited  = protocol.NewCodeError("command rate limit exceeded: slow down", CodeLimit, "LimitError")
	errTooManyRooms = protocol.NewCodeError("too many rooms joined by this connection", CodeLimit, "LimitError")
	errTooManySubs  = protocol.NewCodeError("too many subscriptions held by this connection", CodeLimit, "LimitError")
)

// The limits, as mesh_limit_refusals_total labels them.
const (
	limitRate          = "command_rate"
	limitRooms         = "rooms"
	limitSubscriptions = "subscriptions"
)

// subscriptionSources are what MaxSubscriptionsPerConnection counts: what a
// client subscribes to itself. Rooms have their own limit; a user's own
// subscription (SendToUser) is the server's.
var subscriptionSources = []*source{channelSource, durableSource, recordSource, presenceSource}

// admitRate takes a token from c's bucket for a command arriving at now
// (unix ns); false: over the rate. The bucket starts full. Loop only: the
// bucket's fields are the loop's.
func (s *Server) admitRate(a *connActive, now int64) bool {
	rate := s.opts.CommandRate
	if rate <= 0 {
		return true
	}
	burst := float64(s.opts.CommandBurst)
	if a.rateAt == 0 {
		a.rateTokens = burst
	} else if d := now - a.rateAt; d > 0 {
		a.rateTokens = math.Min(burst, a.rateTokens+float64(d)*rate/float64(time.Second))
	}
	a.rateAt = now
	if a.rateTokens < 1 {
		return false
	}
	a.rateTokens--
	return true
}

// mayJoinMore reports whether c may join room under MaxRoomsPerConnection
// (a room it is in already is no new one).
func (s *Server) mayJoinMore(c *Connection, room string) bool {
	max := s.opts.MaxRoomsPerConnection
	if max <= 0 || s.subs.holds(c, roomSource, room) != nil {
		return true
	}
	if s.subs.count(c, roomSource) < max {
		return true
	}
	s.m.limited(limitRooms)
	return false
}

// maySubscribeMore reports whether c may hold one more subscription to
// name in src under MaxSubscriptionsPerConnection.
func (s *Server) maySubscribeMore(c *Connection, src *source, name string) bool {
	max := s.opts.MaxSubscriptionsPerConnection
	if max <= 0 || s.subs.holds(c, src, name) != nil {
		return true
	}
	if s.subs.count(c, subscriptionSources...) < max {
		return true
	}
	s.m.limited(limitSubscriptions)
	return false
}

// count is how many subscriptions c holds in srcs.
func (x *subscriptions) count(c *Connection, srcs ...*source) int {
	a := c.active.Load()
	if a == nil {
		return 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for key := range a.subs {
		for _, src := range srcs {
			if key.src == src {
				n++
				break
			}
		}
	}
	return n
}
