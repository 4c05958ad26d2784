package mesh

import (
	"math"
	"time"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/protocol"
)

// Precomputed pushes: liveness frames are the same for everyone.
var (
	pingPush           = protocol.AppendPing(nil)
	latencyRequestPush = protocol.AppendLatencyRequest(nil)
)

// armTimer asks the engine for OnTimer at the next liveness deadline. Loop only.
func (c *Connection) armTimer() {
	next := c.nextPing
	if c.nextLatency != 0 && (next == 0 || c.nextLatency < next) {
		next = c.nextLatency
	}
	c.c.SetTimer(next)
}

// onTimer runs Mesh's ping and latency ticks (wire.md §4.1). Loop only.
func (c *Connection) onTimer(now int64) {
	o := &c.server().opts
	// While the connection's reading is paused for its command queue
	// (queue.go), its pongs and latency responses wait unread behind its
	// commands: an unanswered ping then says nothing about the client, which
	// is demonstrably sending, so it is not counted, and no latency probe
	// goes out whose answer would measure the queue.
	paused := c.c.ReadingPaused()
	// When both are due the latency probe goes first: a ping makes the
	// connection not-alive until its pong, which would skip the probe.
	if c.nextLatency != 0 && now >= c.nextLatency {
		c.nextLatency = now + int64(o.LatencyInterval)
		if c.alive && !paused { // Mesh pauses latency probes while a ping is unanswered
			var buf [48]byte
			_ = c.c.WriteText(protocol.AppendLatency(buf[:0], int64(c.latencyMs.Load())))
			c.latencyAt = now
			_ = c.c.WriteText(latencyRequestPush)
		}
	}
	if c.nextPing != 0 && now >= c.nextPing {
		c.nextPing = now + int64(o.PingInterval)
		if !c.alive && !paused {
			if c.missedPongs < math.MaxUint16 {
				c.missedPongs++
			}
			if int(c.missedPongs) > o.MaxMissedPongs {
				c.c.Close(engine.CloseNormal, "missed pongs")
				return
			}
		} else if c.alive {
			c.missedPongs = 0
		}
		c.alive = false
		_ = c.c.WriteText(pingPush)
	}
	c.armTimer()
}

// onPong marks the connection alive. Loop only.
func (c *Connection) onPong() {
	c.alive = true
	c.missedPongs = 0
	if s := c.server(); s.pongHook != nil {
		s.pongHook(c)
	}
}

// onLatencyResponse records the probe's round trip in whole milliseconds. Loop only.
func (c *Connection) onLatencyResponse() {
	if c.latencyAt == 0 {
		return
	}
	rtt := time.Now().UnixNano() - c.latencyAt
	c.server().m.latency(c.c.LoopIndex(), rtt)
	c.latencyMs.Store(int32(min(rtt/int64(time.Millisecond), math.MaxInt32)))
	c.latencyAt = 0
}
