package engine

import (
	"encoding/binary"
)

// OpCode is a WebSocket frame opcode.
type OpCode byte

// Opcodes (RFC 6455 §5.2).
const (
	OpContinuation OpCode = 0x0
	OpText         OpCode = 0x1
	OpBinary       OpCode = 0x2
	OpClose        OpCode = 0x8
	OpPing         OpCode = 0x9
	OpPong         OpCode = 0xa
)

func (op OpCode) isControl() bool { return op&0x8 != 0 }

func (op OpCode) isReserved() bool {
	return (op > OpBinary && op < OpClose) || op > OpPong
}

// maxHeaderSize is the largest frame header: 2 + 8 length + 4 mask.
const maxHeaderSize = 14

// frameHeader is a parsed frame header.
type frameHeader struct {
	length int64
	mask   [4]byte
	size   int // header bytes
	op     OpCode
	fin    bool
	rsv    byte
	masked bool
}

// parseFrameHeader parses a header at the start of b. It returns ok=false when
// b does not hold the whole header yet, and a *ProtocolError for a header no
// peer may send. It never reads past len(b).
func parseFrameHeader(b []byte) (h frameHeader, ok bool, err error) {
	if len(b) < 2 {
		return h, false, nil
	}
	h.fin = b[0]&0x80 != 0
	h.rsv = (b[0] >> 4) & 0x7
	h.op = OpCode(b[0] & 0x0f)
	h.masked = b[1]&0x80 != 0
	n := 2
	switch l := int64(b[1] & 0x7f); l {
	case 126:
		if len(b) < 4 {
			return h, false, nil
		}
		h.length = int64(binary.BigEndian.Uint16(b[2:4]))
		if h.length < 126 {
			return h, false, errNonMinimalLen
		}
		n = 4
	case 127:
		if len(b) < 10 {
			return h, false, nil
		}
		u := binary.BigEndian.Uint64(b[2:10])
		if u>>63 != 0 {
			return h, false, errTooBig
		}
		h.length = int64(u)
		if h.length <= 0xffff {
			return h, false, errNonMinimalLen
		}
		n = 10
	default:
		h.length = l
	}
	if h.masked {
		if len(b) < n+4 {
			return h, false, nil
		}
		copy(h.mask[:], b[n:n+4])
		n += 4
	}
	h.size = n
	return h, true, nil
}

// appendFrameHeader appends an unmasked server frame header for a frame
// with the given opcode and payload length.
func appendFrameHeader(dst []byte, op OpCode, fin bool, length int) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	switch {
	case length < 126:
		return append(dst, b0, byte(length))
	case length <= 0xffff:
		return append(dst, b0, 126, byte(length>>8), byte(length))
	default:
		return append(dst, b0, 127,
			byte(uint64(length)>>56), byte(uint64(length)>>48), byte(uint64(length)>>40), byte(uint64(length)>>32),
			byte(length>>24), byte(length>>16), byte(length>>8), byte(length))
	}
}

// frameHeaderSize is the size of the header appendFrameHeader writes.
func frameHeaderSize(length int) int {
	switch {
	case length < 126:
		return 2
	case length <= 0xffff:
		return 4
	default:
		return 10
	}
}

// AppendFrame appends a complete unmasked server frame (header and payload)
// to dst. It is what a custom protocol uses to pre-encode a frame.
func AppendFrame(dst []byte, op OpCode, payload []byte) []byte {
	dst = appendFrameHeader(dst, op, true, len(payload))
	return append(dst, payload...)
}

// appendCloseFrame appends a close frame with code and reason. The reason is
// cut to fit the 125-byte control frame limit.
func appendCloseFrame(dst []byte, code CloseCode, reason string) []byte {
	if code == 0 || code == CloseNoStatus || code == CloseAbnormal {
		return appendFrameHeader(dst, OpClose, true, 0)
	}
	if len(reason) > 123 {
		reason = reason[:123]
	}
	dst = appendFrameHeader(dst, OpClose, true, 2+len(reason))
	dst = append(dst, byte(code>>8), byte(code))
	return append(dst, reason...)
}

// validCloseCode reports whether a peer may send code in a close frame
// (RFC 6455 §7.4.1-2).
func validCloseCode(code CloseCode) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}
