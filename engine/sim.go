package engine

import (
	"context"

	"github.com/panjf2000/gnet/v2"
)

// Simulator drives the engine's real loop tables, topic index and write
// path over fake sockets that only count bytes, with no gnet and no kernel.
// It measures what one broadcast costs in user space per subscriber, at
// counts no machine's sockets allow. Not safe for concurrent use.
type Simulator struct {
	e     *Engine
	loops []*loop
	next  int
	route *route // the last handler's, shared like a WebSocket route's
	slots int    // registry slots handed out; a simulated connection has no descriptor
}

// NewSimulator returns a simulator with the given number of loops
// (Options.Loops; zero means one).
func NewSimulator(o Options) *Simulator {
	if o.Loops <= 0 {
		o.Loops = 1
	}
	e := New(o)
	s := &Simulator{e: e}
	loops := make([]*loop, o.Loops)
	for i := range loops {
		loops[i] = newLoop(e, i, inlineExec{})
	}
	e.loops.Store(&loops)
	s.loops = loops
	return s
}

// inlineExec runs a posted loop batch at once on the caller's goroutine.
type inlineExec struct{}

func (inlineExec) Execute(ctx context.Context, r gnet.Runnable) error { return r.Run(ctx) }

// SimConn is a fake socket: it accepts every write and counts it. Like the
// Simulator it is not safe for concurrent use.
type SimConn struct {
	writes uint64
	bytes  uint64
	in     []byte
	buf    []byte // backing of in, reused once in is drained
	conn   *Conn
}

// Writes is the number of write calls the engine made.
func (s *SimConn) Writes() uint64 { return s.writes }

// Bytes is the number of bytes the engine wrote.
func (s *SimConn) Bytes() uint64 { return s.bytes }

// Write counts b.
func (s *SimConn) Write(b []byte) (int, error) {
	s.writes++
	s.bytes += uint64(len(b))
	return len(b), nil
}

// Writev counts bs as one write.
func (s *SimConn) Writev(bs [][]byte) (int, error) {
	n := 0
	for _, b := range bs {
		n += len(b)
	}
	s.writes++
	s.bytes += uint64(n)
	return n, nil
}

// OutboundBuffered is always zero: the fake kernel takes everything.
func (s *SimConn) OutboundBuffered() int { return 0 }

// InboundBuffered, Peek and Discard serve bytes fed with Feed.
func (s *SimConn) InboundBuffered() int { return len(s.in) }

// Peek returns the first n fed bytes (all of them for n <= 0).
func (s *SimConn) Peek(n int) ([]byte, error) {
	if n <= 0 || n > len(s.in) {
		return s.in, nil
	}
	return s.in[:n], nil
}

// Discard drops the first n fed bytes (all for n <= 0).
func (s *SimConn) Discard(n int) (int, error) {
	if n <= 0 || n > len(s.in) {
		n = len(s.in)
	}
	s.in = s.in[n:]
	return n, nil
}

// Conn returns the engine connection behind the fake socket.
func (s *SimConn) Conn() *Conn { return s.conn }

// Open adds a WebSocket connection served by h (already past its
// handshake, with an empty request) on the next loop, round-robin, and
// runs h.OnOpen.
func (s *Simulator) Open(h Handler) *SimConn {
	l := s.loops[s.next%len(s.loops)]
	s.next++
	sc := &SimConn{}
	if s.route == nil || s.route.h != h {
		s.route = &route{h: h}
	}
	s.slots++
	c := &Conn{id: s.e.makeID(s.slots), loop: l, sock: sc, route: s.route, state: stateOpen}
	sc.conn = c
	l.enter()
	l.addConn(c)
	s.e.open.Add(1)
	s.e.tcp.Add(1)
	s.e.registry.add(c)
	h.OnOpen(c, &Request{conn: c})
	l.leave()
	return sc
}

// OpenRaw adds a connection still in its HTTP handshake, for feeding raw bytes.
func (s *Simulator) OpenRaw() *SimConn {
	l := s.loops[s.next%len(s.loops)]
	s.next++
	sc := &SimConn{}
	s.slots++
	c := &Conn{id: s.e.makeID(s.slots), loop: l, sock: sc}
	sc.conn = c
	l.addConn(c)
	s.e.tcp.Add(1)
	return sc
}

// Feed appends b to the connection's input and runs the read path, as
// gnet's OnTraffic would. It reports whether the engine closed it.
func (s *Simulator) Feed(sc *SimConn, b []byte) bool {
	if len(sc.in) == 0 {
		sc.in = sc.buf[:0]
	}
	sc.in = append(sc.in, b...)
	if cap(sc.in) > cap(sc.buf) {
		sc.buf = sc.in[:0]
	}
	c := sc.conn
	if c.state == stateClosed {
		return true
	}
	if c.loop.traffic(c) {
		c.loop.enter()
		s.e.connClosed(c, nil)
		c.loop.leave()
	}
	return c.state == stateClosed
}

// Subscribe subscribes the connection to topic.
func (s *Simulator) Subscribe(sc *SimConn, topic string) {
	c := sc.conn
	c.loop.enter()
	c.loop.subscribe(c, topic)
	c.loop.leave()
}

// Publish publishes f to topic; every loop has written it when it returns.
func (s *Simulator) Publish(topic string, f *Frame) { s.e.Publish(topic, f, nil) }

// Engine returns the simulated engine, for Stats.
func (s *Simulator) Engine() *Engine { return s.e }

// Handle registers h on path, for handshakes fed with Feed.
func (s *Simulator) Handle(path string, h Handler) { s.e.Handle(path, h) }
