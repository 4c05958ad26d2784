package engine

import (
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Frame is a message encoded once and shared by every connection it is sent
// to. Its reference count returns it to a pool when the last loop has
// written it. A Frame holds one variant per wire: the WebSocket frame, and
// optionally the bytes for stream connections (Server-Sent Events).
//
// Build one with NewTextFrame, or without a copy:
//
//	f := engine.AcquireFrame()
//	f.SetPayload(OpText, appendMyMessage(f.PayloadBuf(), ...))
//	e.Publish(topic, f, nil)
//	f.Release()
//
// A Frame is immutable once published; Retain/Release are safe from any goroutine.
type Frame struct {
	refs   atomic.Int32
	buf    []byte // maxHeaderSize bytes of head room, then the payload
	ws     []byte // complete WebSocket frame inside buf
	stream []byte // stream-connection variant as an HTTP/1.1 chunk, nil if not set
	// streamPlain is the same bytes without the chunk's head and tail, for
	// an HTTP/1.0 stream (sse.go).
	streamPlain []byte
	sbuf        []byte // backing of stream
	at          int64  // when it was published (unix ns), for PublishLatency
}

// framePool recycles Frames; buffers over maxPooledFrame are dropped so one
// large message does not pin memory forever.
var framePool = sync.Pool{New: func() any { return &Frame{buf: make([]byte, maxHeaderSize, 512)} }}

const maxPooledFrame = 64 << 10

// AcquireFrame returns an empty frame with one reference, owned by the caller.
func AcquireFrame() *Frame {
	f := framePool.Get().(*Frame)
	f.refs.Store(1)
	return f
}

// NewTextFrame returns a text frame holding a copy of p, with one reference.
func NewTextFrame(p []byte) *Frame {
	f := AcquireFrame()
	f.SetPayload(OpText, append(f.PayloadBuf(), p...))
	return f
}

// NewBinaryFrame returns a binary frame holding a copy of p, with one reference.
func NewBinaryFrame(p []byte) *Frame {
	f := AcquireFrame()
	f.SetPayload(OpBinary, append(f.PayloadBuf(), p...))
	return f
}

// PayloadBuf returns an empty slice whose capacity is the frame's own
// buffer: append the payload to it and pass the result to SetPayload, and
// the payload is encoded in place without a copy.
func (f *Frame) PayloadBuf() []byte { return f.buf[maxHeaderSize:maxHeaderSize] }

// SetPayload seals the frame with opcode op around payload p. When p was
// built on PayloadBuf it is not copied.
func (f *Frame) SetPayload(op OpCode, p []byte) {
	if len(p) == 0 || cap(f.buf) <= maxHeaderSize || unsafe.SliceData(p) != unsafe.SliceData(f.buf[maxHeaderSize:]) {
		nb := f.buf[:maxHeaderSize]
		nb = append(nb, p...)
		f.buf = nb
	} else {
		f.buf = f.buf[:maxHeaderSize+len(p)]
	}
	h := frameHeaderSize(len(p))
	start := maxHeaderSize - h
	appendFrameHeader(f.buf[start:start], op, true, len(p))
	f.ws = f.buf[start:]
}

// Payload returns the frame's payload. Do not modify it.
func (f *Frame) Payload() []byte {
	if len(f.buf) < maxHeaderSize {
		return nil
	}
	return f.buf[maxHeaderSize:]
}

// Bytes returns the complete WebSocket frame. Do not modify it.
func (f *Frame) Bytes() []byte { return f.ws }

// SetStream sets the bytes stream connections receive for this frame (for
// example an SSE event: AppendSSEEvent). p is copied. Without it, or with
// an empty p, stream connections skip the frame. Set it before publishing.
func (f *Frame) SetStream(p []byte) {
	if len(p) == 0 {
		f.stream, f.streamPlain = nil, nil
		return
	}
	f.sbuf = append(f.sbuf[:0], make([]byte, chunkHeadroom)...)
	f.sbuf = append(f.sbuf, p...)
	f.sealStream(len(p))
}

// StreamBuf returns an empty slice backed by the frame's stream buffer, for
// building the stream variant without a copy; pass the result to
// SetStreamBytes.
func (f *Frame) StreamBuf() []byte {
	if cap(f.sbuf) < chunkHeadroom+64 {
		f.sbuf = make([]byte, chunkHeadroom, 512)
	}
	return f.sbuf[chunkHeadroom:chunkHeadroom]
}

// SetStreamBytes sets the stream variant to p: without a copy if p was
// built on StreamBuf, else as SetStream.
func (f *Frame) SetStreamBytes(p []byte) {
	b := f.sbuf[:cap(f.sbuf)]
	if len(p) == 0 || len(b) <= chunkHeadroom || unsafe.SliceData(p) != unsafe.SliceData(b[chunkHeadroom:]) {
		f.SetStream(p)
		return
	}
	f.sbuf = b[:chunkHeadroom+len(p)]
	f.sealStream(len(p))
}

// sealStream makes the stream variant of the n bytes after the headroom
// in sbuf: stored once as an HTTP/1.1 chunk (its head right-aligned in the
// headroom, CRLF after), and the same bytes without head and tail for an
// HTTP/1.0 stream, which knows no chunks.
func (f *Frame) sealStream(n int) {
	f.sbuf = append(f.sbuf, '\r', '\n')
	var hdr [chunkHeadroom]byte
	h := strconv.AppendUint(hdr[:0], uint64(n), 16)
	h = append(h, '\r', '\n')
	start := chunkHeadroom - len(h)
	copy(f.sbuf[start:], h)
	f.stream = f.sbuf[start:]
	f.streamPlain = f.sbuf[chunkHeadroom : chunkHeadroom+n]
}

func (f *Frame) bytesFor(k connKind) []byte {
	switch k {
	case kindStream:
		return f.stream
	case kindStreamPlain:
		return f.streamPlain
	}
	return f.ws
}

// Retain adds a reference. Safe from any goroutine.
func (f *Frame) Retain() { f.refs.Add(1) }

func (f *Frame) retain() { f.refs.Add(1) }

// Release drops a reference; the last one returns the frame to its pool.
// Safe from any goroutine. Do not touch the frame after releasing it.
func (f *Frame) Release() {
	n := f.refs.Add(-1)
	if n > 0 {
		return
	}
	if n < 0 {
		panic("engine: Frame released more times than retained")
	}
	if cap(f.buf) > maxPooledFrame {
		f.buf = make([]byte, maxHeaderSize, 512)
	} else {
		f.buf = f.buf[:maxHeaderSize]
	}
	if cap(f.sbuf) > maxPooledFrame {
		f.sbuf = nil
	}
	f.sbuf = f.sbuf[:0]
	f.ws, f.stream, f.streamPlain = nil, nil, nil
	f.at = 0
	framePool.Put(f)
}
