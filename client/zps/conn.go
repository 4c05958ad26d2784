package zps

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	wire "github.com/meshfast/meshfast/protocol/zps"
)

// conn is one WebSocket connection to the gateway: a reader goroutine that
// decodes messages, and a writer that owns every write. The gateway
// answers each message with exactly one reply or error, in order, so the
// replies are matched to what was sent by order: expect holds, in sending
// order, what each message sent waits for. A conn is never reused.
type conn struct {
	c   *Client
	nc  net.Conn
	src io.Reader

	wmu     sync.Mutex
	wq      [][]byte
	expect  []*pending // in the order their messages were queued
	wclosed bool
	closing bool          // the last frame queued is the close frame
	wake    chan struct{} // capacity 1
	done    chan struct{} // closed by close
	cause   error
	once    sync.Once
}

// pending is one message's reply to come.
type pending struct {
	kind string      // the reply's type
	ch   chan result // capacity 1; nil when nobody waits
}

type result struct {
	msg *wire.ServerMessage
	err error
}

func (c *Client) dial(ctx context.Context) (*conn, error) {
	d := ws.Dialer{Timeout: c.o.DialTimeout, NetDial: c.o.Dialer, TLSConfig: c.o.TLSConfig}
	if c.o.Header != nil {
		d.Header = ws.HandshakeHeaderHTTP(c.o.Header)
	}
	nc, br, _, err := d.Dial(ctx, c.url)
	if err != nil {
		return nil, &DialError{URL: c.url, Err: err}
	}
	cn := &conn{c: c, nc: nc, wake: make(chan struct{}, 1), done: make(chan struct{})}
	if br != nil {
		cn.src = br
	} else {
		cn.src = bufio.NewReaderSize(nc, 4096)
	}
	return cn, nil
}

// send queues one message and what it waits for; false if the connection
// is closing.
func (cn *conn) send(msg []byte, p *pending) bool {
	f := frameText(msg)
	cn.wmu.Lock()
	if cn.wclosed {
		cn.wmu.Unlock()
		return false
	}
	cn.wq = append(cn.wq, f)
	cn.expect = append(cn.expect, p)
	cn.wmu.Unlock()
	select {
	case cn.wake <- struct{}{}:
	default:
	}
	return true
}

// take returns the oldest message's pending reply (nil when none waits).
func (cn *conn) take() (*pending, bool) {
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	if len(cn.expect) == 0 {
		return nil, false
	}
	p := cn.expect[0]
	cn.expect[0] = nil
	cn.expect = cn.expect[1:]
	return p, true
}

func frameText(payload []byte) []byte {
	h := ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: ws.NewMask(), Length: int64(len(payload))}
	b := bytes.NewBuffer(make([]byte, 0, ws.HeaderSize(h)+len(payload)))
	_ = ws.WriteHeader(b, h)
	n := b.Len()
	b.Write(payload)
	out := b.Bytes()
	ws.Cipher(out[n:], h.Mask, 0)
	return out
}

// close ends the connection once: every reply still expected fails with
// ErrConnectionLost.
func (cn *conn) close(cause error) {
	cn.once.Do(func() {
		cn.wmu.Lock()
		cn.wclosed = true
		cn.cause = cause
		expect := cn.expect
		cn.expect = nil
		cn.wmu.Unlock()
		close(cn.done)
		cn.nc.Close()
		for _, p := range expect {
			if p != nil && p.ch != nil {
				p.ch <- result{err: ErrConnectionLost}
			}
		}
	})
}

// closeGracefully queues a close frame behind what is queued and lets the
// writer close after it, waiting at most a second.
func (cn *conn) closeGracefully() {
	f := ws.MaskFrameInPlace(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "")))
	var b bytes.Buffer
	_ = ws.WriteFrame(&b, f)
	cn.wmu.Lock()
	if !cn.wclosed {
		cn.wq = append(cn.wq, b.Bytes())
		cn.closing = true
	}
	cn.wmu.Unlock()
	select {
	case cn.wake <- struct{}{}:
	default:
	}
	select {
	case <-cn.done:
	case <-time.After(time.Second):
	}
	cn.close(ErrClosed)
}

func (cn *conn) writeLoop() {
	defer cn.c.wg.Done()
	var buf []byte
	for {
		select {
		case <-cn.wake:
		case <-cn.done:
			return
		}
		cn.wmu.Lock()
		q, closing := cn.wq, cn.closing
		cn.wq = nil
		cn.wmu.Unlock()
		if len(q) == 0 {
			continue
		}
		buf = buf[:0]
		for _, f := range q {
			buf = append(buf, f...)
		}
		_ = cn.nc.SetWriteDeadline(time.Now().Add(cn.c.o.WriteTimeout))
		if _, err := cn.nc.Write(buf); err != nil || closing {
			cn.close(cmp.Or(err, ErrClosed))
			return
		}
		if cap(buf) > 64<<10 {
			buf = nil
		}
	}
}

func (cn *conn) readLoop() {
	defer cn.c.wg.Done()
	rd := wsutil.Reader{Source: cn.src, State: ws.StateClientSide, CheckUTF8: true, OnIntermediate: cn.control}
	for {
		hdr, err := rd.NextFrame()
		if err != nil {
			cn.close(err)
			return
		}
		if hdr.OpCode.IsControl() {
			if err := cn.control(hdr, &rd); err != nil {
				cn.close(err)
				return
			}
			continue
		}
		if hdr.OpCode != ws.OpText {
			if err := rd.Discard(); err != nil {
				cn.close(err)
				return
			}
			continue
		}
		data, err := io.ReadAll(&rd)
		if err != nil {
			cn.close(err)
			return
		}
		cn.c.handle(cn, data)
	}
}

// control answers pings (the gateway's heartbeat) and close frames.
func (cn *conn) control(h ws.Header, r io.Reader) error {
	var b bytes.Buffer
	err := wsutil.ControlHandler{Src: r, Dst: &b, State: ws.StateClientSide, DisableSrcCiphering: true}.Handle(h)
	if b.Len() > 0 {
		cn.wmu.Lock()
		if !cn.wclosed {
			cn.wq = append(cn.wq, b.Bytes())
		}
		cn.wmu.Unlock()
		select {
		case cn.wake <- struct{}{}:
		default:
		}
	}
	var ce wsutil.ClosedError
	if errors.As(err, &ce) {
		return &CloseError{Code: int(ce.Code), Reason: ce.Reason}
	}
	return err
}
