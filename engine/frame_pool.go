package engine

import (
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
	stream []byte // stream-connection variant, nil if not set
	sbuf   []byte // backing of stream
	at     int64  // when it was published (unix ns), for PublishLatency
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
// example an SSE "data:" event). p is copied. Without it, stream
// connections skip the frame. Set it before publishing.
func (f *Frame) SetStream(p []byte) {
	f.sbuf = append(f.sbuf[:0], p...)
	f.stream = f.sbuf
}

// StreamBuf returns an empty slice backed by the frame's stream buffer, for
// building the stream variant without a copy; pass the result to SetStreamBytes.
func (f *Frame) StreamBuf() []byte { return f.sbuf[:0] }

// SetStreamBytes sets the stream variant to p, which should be built on StreamBuf.
func (f *Frame) SetStreamBytes(p []byte) {
	f.sbuf = p
	f.stream = p
}

func (f *Frame) bytesFor(k connKind) []byte {
	if k == kindStream {
		return f.stream
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
	f.ws, f.stream = nil, nil
	f.at = 0
	framePool.Put(f)
}
