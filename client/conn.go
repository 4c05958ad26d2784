package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/meshfast/meshfast/protocol"
)

var errNoConnectionID = errors.New("no mesh/assign-id push from the server")

// closeGrace bounds the final flush (close frame) of a graceful close.
const closeGrace = time.Second

// conn is one WebSocket connection. It has two goroutines: the reader,
// which decodes frames, matches replies, answers liveness probes and posts
// pushes to the event goroutine; and the writer, which owns every write to
// the socket and runs the ping watchdog. A conn is never reused: a
// reconnect makes a new one.
type conn struct {
	c   *Client
	nc  net.Conn
	src io.Reader // the handshake's buffered reader, or a new one over nc

	missed atomic.Int32 // watchdog windows without a ping

	wmu      sync.Mutex
	wq       [][]byte      // framed, masked, ready to write
	wclosed  bool          // no more frames accepted
	wake     chan struct{} // cap 1: wq is not empty
	done     chan struct{} // closed by close
	graceful bool          // flush wq before closing the socket
	once     sync.Once

	pmu     sync.Mutex
	pending map[int64]*pending // requests waiting for their reply
	dead    bool               // failPending ran; no new requests
}

// askForID adds the query parameter with which a client asks a meshfast
// server for the mesh/assign-id push (protocol.AssignIDParam). A Mesh
// server ignores it. A URL that does not parse is left for the dialer to
// refuse.
func askForID(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if u.Query().Has(protocol.AssignIDParam) {
		return raw
	}
	if u.RawQuery != "" {
		u.RawQuery += "&"
	}
	u.RawQuery += protocol.AssignIDParam + "=1" // appended: the application's parameters keep their order
	return u.String()
}

// dial opens a connection and does the WebSocket handshake.
func (c *Client) dial(ctx context.Context) (*conn, error) {
	d := ws.Dialer{
		Timeout:   c.opts.DialTimeout,
		NetDial:   c.opts.Dialer,
		TLSConfig: c.opts.TLSConfig,
	}
	if c.opts.Header != nil {
		d.Header = ws.HandshakeHeaderHTTP(c.opts.Header)
	}
	nc, br, _, err := d.Dial(ctx, askForID(c.url))
	if err != nil {
		return nil, &DialError{URL: c.url, Err: err}
	}
	cn := &conn{
		c:       c,
		nc:      nc,
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		pending: make(map[int64]*pending),
	}
	if br != nil {
		// Bytes the server sent right after the handshake (mesh/assign-id,
		// typically) are in br; br reads on from nc once they are used up.
		cn.src = br
	} else {
		cn.src = bufio.NewReaderSize(nc, 4096)
	}
	return cn, nil
}

// frameText returns payload as one masked client text frame.
func frameText(payload []byte) []byte {
	h := ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: ws.NewMask(), Length: int64(len(payload))}
	b := bytes.NewBuffer(make([]byte, 0, ws.HeaderSize(h)+len(payload)))
	_ = ws.WriteHeader(b, h) // a bytes.Buffer does not fail
	n := b.Len()
	b.Write(payload)
	out := b.Bytes()
	ws.Cipher(out[n:], h.Mask, 0)
	return out
}

// enqueue hands a framed message to the writer. It reports false if the
// connection is closing.
func (cn *conn) enqueue(frame []byte) bool {
	cn.wmu.Lock()
	if cn.wclosed {
		cn.wmu.Unlock()
		return false
	}
	cn.wq = append(cn.wq, frame)
	cn.wmu.Unlock()
	select {
	case cn.wake <- struct{}{}:
	default:
	}
	return true
}

// sendText frames and enqueues one JSON message.
func (cn *conn) sendText(msg []byte) bool { return cn.enqueue(frameText(msg)) }

// sendClose enqueues a normal-closure close frame.
func (cn *conn) sendClose() {
	f := ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
	f = ws.MaskFrameInPlace(f)
	var b bytes.Buffer
	if ws.WriteFrame(&b, f) == nil {
		cn.enqueue(b.Bytes())
	}
}

// close shuts the connection down once; later calls do nothing. With
// graceful set the writer first flushes what is queued (a close frame,
// say) for at most closeGrace; otherwise the socket closes at once. The
// first caller then reports the loss to the client.
func (cn *conn) close(cause error, graceful bool) {
	cn.once.Do(func() {
		cn.wmu.Lock()
		cn.wclosed = true
		cn.graceful = graceful
		cn.wmu.Unlock()
		close(cn.done)
		if !graceful {
			cn.nc.Close()
		}
		cn.c.connLost(cn, cause)
	})
}

// writeLoop owns the socket's write side and the ping watchdog.
func (cn *conn) writeLoop() {
	defer cn.c.wg.Done()
	var tick <-chan time.Time
	if pt := cn.c.opts.PingTimeout; pt > 0 {
		t := time.NewTicker(pt)
		defer t.Stop()
		tick = t.C
	}
	var buf []byte
	for {
		select {
		case <-cn.wake:
			if err := cn.flush(&buf, cn.c.opts.WriteTimeout); err != nil {
				cn.close(err, false)
			}
		case <-tick:
			if int(cn.missed.Add(1)) > cn.c.opts.MaxMissedPings {
				cn.close(ErrDeadServer, false)
			}
		case <-cn.done:
			cn.wmu.Lock()
			graceful := cn.graceful
			cn.wmu.Unlock()
			if graceful {
				_ = cn.flush(&buf, closeGrace)
			}
			cn.nc.Close()
			return
		}
	}
}

// flush writes everything queued in one write.
func (cn *conn) flush(buf *[]byte, timeout time.Duration) error {
	cn.wmu.Lock()
	q := cn.wq
	cn.wq = nil
	cn.wmu.Unlock()
	if len(q) == 0 {
		return nil
	}
	b := (*buf)[:0]
	for _, f := range q {
		b = append(b, f...)
	}
	*buf = b
	if err := cn.nc.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	_, err := cn.nc.Write(b)
	if cap(b) > 64<<10 {
		*buf = nil // do not keep a large burst's buffer around
	}
	return err
}

// readLoop reads frames until the connection fails.
func (cn *conn) readLoop() {
	defer cn.c.wg.Done()
	rd := wsutil.Reader{
		Source:         cn.src,
		State:          ws.StateClientSide,
		CheckUTF8:      true,
		OnIntermediate: cn.control,
	}
	for {
		hdr, err := rd.NextFrame()
		if err != nil {
			cn.close(err, false)
			return
		}
		if hdr.OpCode.IsControl() {
			if err := cn.control(hdr, &rd); err != nil {
				// A close frame: its answer is queued; flush it.
				cn.close(err, true)
				return
			}
			continue
		}
		if hdr.OpCode != ws.OpText {
			// Mesh speaks text frames only.
			if err := rd.Discard(); err != nil {
				cn.close(err, false)
				return
			}
			continue
		}
		data, err := io.ReadAll(&rd)
		if err != nil {
			cn.close(err, false)
			return
		}
		cn.c.handleFrame(cn, data)
	}
}

// control answers a WebSocket control frame (ping, close) through the
// writer, so that no two goroutines write to the socket.
func (cn *conn) control(h ws.Header, r io.Reader) error {
	var b bytes.Buffer
	err := wsutil.ControlHandler{
		Src:                 r,
		Dst:                 &b,
		State:               ws.StateClientSide,
		DisableSrcCiphering: true,
	}.Handle(h)
	if b.Len() > 0 {
		cn.enqueue(b.Bytes())
	}
	return err
}

// handleFrame processes one text message from cn. data is owned by the
// callee from here on (each message is read into a fresh slice).
func (c *Client) handleFrame(cn *conn, data []byte) {
	var m protocol.Message
	if err := protocol.Decode(data, &m); err != nil {
		c.logf("ignoring frame: %v", err)
		return
	}
	if m.HasID {
		if p := cn.take(m.ID); p != nil {
			if p.hook != nil {
				p.hook(m.Payload)
			}
			p.ch <- result{payload: m.Payload}
			return
		}
	}
	if c.conn.Load() != cn {
		return // a superseded connection: its pushes no longer matter
	}
	cmd := string(m.Command)
	payload := m.Payload
	switch cmd {
	case protocol.CmdPing:
		cn.missed.Store(0)
		cn.sendText(protocol.AppendPong(nil, c.nextID.Add(1)))
	case protocol.CmdLatencyRequest:
		cn.sendText(protocol.AppendLatencyResponse(nil, c.nextID.Add(1), payload))
	case protocol.CmdLatency:
		if ms, err := strconv.ParseFloat(string(payload), 64); err == nil {
			c.latencyNs.Store(int64(ms * float64(time.Millisecond)))
		}
	case protocol.CmdAssignID:
		if id := assignedID(payload); id != "" {
			c.setConnectionID(cn, id)
		} else {
			c.logf("ignoring malformed %s payload %s", cmd, payload)
		}
	}
	c.events.post(func() { c.deliverPush(cmd, payload) })
}

// deliverPush runs on the event goroutine.
func (c *Client) deliverPush(cmd string, payload []byte) {
	for _, f := range snapshot(&c.h, &c.h.message) {
		f(cmd, payload)
	}
	switch cmd {
	case protocol.CmdPing:
		for _, f := range snapshot(&c.h, &c.h.ping) {
			f()
		}
		return
	case protocol.CmdLatency:
		ms, err := strconv.ParseFloat(string(payload), 64)
		if err != nil {
			return
		}
		d := time.Duration(ms * float64(time.Millisecond))
		for _, f := range snapshot(&c.h, &c.h.latency) {
			f(d)
		}
		return
	case protocol.CmdLatencyRequest:
		return
	case protocol.CmdSubscriptionMessage:
		c.deliverChannelMessage(payload)
	case protocol.CmdRecordUpdate:
		c.deliverRecordUpdate(payload)
	case protocol.CmdPresenceUpdate:
		c.deliverPresenceUpdate(payload)
	}
	for _, f := range c.commandHandlers(cmd) {
		f(payload)
	}
}

// pending is a request waiting for its reply.
type pending struct {
	ch chan result // cap 1; receives exactly one result
	// hook, if set, runs on the reader goroutine with the reply payload
	// before the caller gets it, so that what it posts to the event
	// goroutine is ordered with the pushes around the reply.
	hook func(payload []byte)
}

type result struct {
	payload []byte
	err     error
}

// register adds a pending request under id, unless cn is dead.
func (cn *conn) register(id int64, p *pending) bool {
	cn.pmu.Lock()
	defer cn.pmu.Unlock()
	if cn.dead {
		return false
	}
	cn.pending[id] = p
	return true
}

// take removes and returns the request waiting under id, if any.
func (cn *conn) take(id int64) *pending {
	cn.pmu.Lock()
	defer cn.pmu.Unlock()
	p := cn.pending[id]
	delete(cn.pending, id)
	return p
}

// failPending ends every waiting request with err and refuses new ones.
func (cn *conn) failPending(err error) {
	cn.pmu.Lock()
	ps := cn.pending
	cn.pending = nil
	cn.dead = true
	cn.pmu.Unlock()
	for _, p := range ps {
		p.ch <- result{err: err}
	}
}

// assignedID reads the payload of mesh/assign-id: a bare string
// (protocol.AssignIDPayload, the later Mesh rewrite's shape), or, leniently,
// an object {"connectionId": "…"}.
func assignedID(payload []byte) string {
	var id protocol.AssignIDPayload
	if protocol.Unmarshal(payload, &id) == nil {
		return string(id)
	}
	var obj struct {
		ConnectionID string `json:"connectionId"`
	}
	if protocol.Unmarshal(payload, &obj) == nil {
		return obj.ConnectionID
	}
	return ""
}
