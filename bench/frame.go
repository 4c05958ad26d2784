package bench

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
)

// WebSocket opcodes the client deals with (RFC 6455 §5.2).
const (
	opContinuation byte = 0x0
	opText         byte = 0x1
	opBinary       byte = 0x2
	opClose        byte = 0x8
	opPing         byte = 0x9
	opPong         byte = 0xa
)

// maxHandshakeBytes caps the server's 101 response head.
const maxHandshakeBytes = 8 << 10

// wsGUID is the RFC 6455 key suffix.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// appendMaskedFrame appends one final client frame (FIN set, masked with
// key) carrying payload. It is the whole encoder a load client needs: every
// message fits one frame.
func appendMaskedFrame(dst []byte, op byte, payload []byte, key uint32) []byte {
	n := len(payload)
	dst = append(dst, 0x80|op)
	switch {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	var k [4]byte
	binary.BigEndian.PutUint32(k[:], key)
	dst = append(dst, k[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	maskBytes(dst[start:], k)
	return dst
}

// maskBytes XORs b with the repeating 4-byte key, eight bytes at a time.
func maskBytes(b []byte, k [4]byte) {
	k32 := binary.LittleEndian.Uint32(k[:])
	k64 := uint64(k32) | uint64(k32)<<32
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k64)
	}
	for ; i < len(b); i++ {
		b[i] ^= k[i&3]
	}
}

// ProtocolError is a server frame the client refuses: masked, reserved
// bits, an unknown opcode, a bad control frame or an oversized message.
type ProtocolError struct{ Reason string }

func (e *ProtocolError) Error() string { return "bench: websocket protocol error: " + e.Reason }

// frameSink receives what the parser decodes. payload is valid only during
// the call. A non-nil error stops parsing and is returned by parse.
type frameSink interface {
	onMessage(op byte, payload []byte) error
}

// frameParser is an incremental parser of unmasked server frames. Bytes are
// fed as they arrive, split anywhere; a frame that lies wholly inside one
// feed is delivered without a copy, only frames that span feeds are
// assembled in msg. Fragmented data messages are reassembled; control frames
// may interleave. The zero value is ready; it is owned by one goroutine.
type frameParser struct {
	hdr     [14]byte // header bytes collected so far
	nh      int      // len of hdr filled
	need    int      // header length once known (0: unknown)
	inBody  bool     // header complete, reading payload
	op      byte     // opcode of the current frame
	fin     bool     // FIN of the current frame
	left    int      // payload bytes still to read
	ctl     []byte   // payload of a control frame spanning feeds
	msg     []byte   // reassembled data message (fragments or spanning feeds)
	msgOp   byte     // opcode of the message in msg; 0 when none is open
	inFrag  bool     // inside a fragmented message
	maxSize int      // largest message accepted; 0 means 16 MiB
}

const defaultMaxMessage = 16 << 20

// parse feeds b and hands every complete message or control frame to s.
func (p *frameParser) parse(b []byte, s frameSink) error {
	for len(b) > 0 {
		if !p.inBody {
			n, err := p.readHeader(b)
			if err != nil {
				return err
			}
			b = b[n:]
			if !p.inBody {
				return nil // header still incomplete
			}
			if p.left == 0 {
				if err := p.finish(nil, s); err != nil {
					return err
				}
				continue
			}
		}
		take := min(p.left, len(b))
		chunk := b[:take]
		b = b[take:]
		p.left -= take
		control := p.op >= opClose
		// Zero-copy path: the whole payload is in this feed and nothing of it
		// was buffered before.
		if p.left == 0 && ((control && len(p.ctl) == 0) || (!control && !p.inFrag && len(p.msg) == 0)) {
			if err := p.finish(chunk, s); err != nil {
				return err
			}
			continue
		}
		if control {
			p.ctl = append(p.ctl, chunk...)
		} else {
			p.msg = append(p.msg, chunk...)
		}
		if p.left == 0 {
			if err := p.finish(nil, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// readHeader consumes header bytes from b and returns how many it took.
func (p *frameParser) readHeader(b []byte) (int, error) {
	used := 0
	for !p.inBody && used < len(b) {
		if p.need == 0 && p.nh < 2 {
			p.hdr[p.nh] = b[used]
			p.nh++
			used++
			if p.nh == 2 {
				if err := p.checkFirst(); err != nil {
					return used, err
				}
			}
			continue
		}
		c := copy(p.hdr[p.nh:p.need], b[used:])
		p.nh += c
		used += c
		if p.nh == p.need {
			if err := p.headerDone(); err != nil {
				return used, err
			}
		}
	}
	return used, nil
}

// checkFirst validates the two fixed header bytes and sets need.
func (p *frameParser) checkFirst() error {
	b0, b1 := p.hdr[0], p.hdr[1]
	if b0&0x70 != 0 {
		return &ProtocolError{"reserved bits set"}
	}
	if b1&0x80 != 0 {
		return &ProtocolError{"masked server frame"}
	}
	op := b0 & 0x0f
	switch op {
	case opContinuation, opText, opBinary, opClose, opPing, opPong:
	default:
		return &ProtocolError{"reserved opcode " + strconv.Itoa(int(op))}
	}
	l := b1 & 0x7f
	if op >= opClose && (b0&0x80 == 0 || l > 125) {
		return &ProtocolError{"bad control frame"}
	}
	switch l {
	case 126:
		p.need = 4
	case 127:
		p.need = 10
	default:
		p.need = 2
	}
	if p.nh == p.need {
		return p.headerDone()
	}
	return nil
}

// headerDone decodes the length and opens the frame's body.
func (p *frameParser) headerDone() error {
	op := p.hdr[0] & 0x0f
	var n uint64
	switch p.need {
	case 2:
		n = uint64(p.hdr[1] & 0x7f)
	case 4:
		n = uint64(binary.BigEndian.Uint16(p.hdr[2:4]))
	default:
		n = binary.BigEndian.Uint64(p.hdr[2:10])
	}
	limit := p.maxSize
	if limit <= 0 {
		limit = defaultMaxMessage
	}
	if n > uint64(limit) || len(p.msg)+int(n) > limit {
		return &ProtocolError{"message too big"}
	}
	if op < opClose {
		if op == opContinuation && !p.inFrag {
			return &ProtocolError{"continuation without a message"}
		}
		if op != opContinuation && p.inFrag {
			return &ProtocolError{"new message inside a fragmented one"}
		}
	}
	p.op, p.fin, p.left, p.inBody = op, p.hdr[0]&0x80 != 0, int(n), true
	p.nh, p.need = 0, 0
	return nil
}

// finish ends the current frame. direct, when not nil, is its whole payload.
func (p *frameParser) finish(direct []byte, s frameSink) error {
	p.inBody = false
	op, fin := p.op, p.fin
	if op >= opClose {
		payload := direct
		if payload == nil {
			payload = p.ctl
		}
		err := s.onMessage(op, payload)
		p.ctl = p.ctl[:0]
		return err
	}
	if op != opContinuation {
		p.msgOp = op
	}
	if !fin {
		if direct != nil {
			p.msg = append(p.msg, direct...)
		}
		p.inFrag = true
		return nil
	}
	payload := direct
	if payload == nil {
		payload = p.msg
	}
	p.inFrag = false
	err := s.onMessage(p.msgOp, payload)
	if cap(p.msg) > 64<<10 {
		p.msg = nil // don't pin a large buffer on an idle connection
	} else {
		p.msg = p.msg[:0]
	}
	return err
}

// upgradeRequest returns the HTTP request that opens a WebSocket to host
// on path with key.
func upgradeRequest(host, path, key string) []byte {
	return []byte("GET " + path + " HTTP/1.1\r\nHost: " + host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\n\r\n")
}

// acceptKey is the Sec-WebSocket-Accept a server must answer key with.
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// handshakeReader accumulates the server's response head across feeds.
type handshakeReader struct {
	buf     []byte
	scanned int // bytes of buf already searched for the blank line
}

// feed consumes b. It returns how many bytes of b belong to the head (the
// rest are frames), whether the head is complete, and an error when the
// response is not a valid 101 for accept.
func (h *handshakeReader) feed(b []byte, accept string) (int, bool, error) {
	old := len(h.buf)
	h.buf = append(h.buf, b...)
	from := max(h.scanned-3, 0)
	i := bytes.Index(h.buf[from:], []byte("\r\n\r\n"))
	if i < 0 {
		h.scanned = len(h.buf)
		if len(h.buf) > maxHandshakeBytes {
			return len(b), false, fmt.Errorf("bench: handshake response over %d bytes", maxHandshakeBytes)
		}
		return len(b), false, nil
	}
	end := from + i + 4
	head := h.buf[:end]
	h.buf = nil
	return end - old, true, checkUpgradeResponse(head, accept)
}

// checkUpgradeResponse validates a complete response head.
func checkUpgradeResponse(head []byte, accept string) error {
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 101")) {
		return &HandshakeError{Status: string(line)}
	}
	for len(rest) > 0 {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(l, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("Sec-WebSocket-Accept")) {
			if string(bytes.TrimSpace(value)) != accept {
				return &HandshakeError{Status: "bad Sec-WebSocket-Accept"}
			}
			return nil
		}
	}
	return &HandshakeError{Status: "no Sec-WebSocket-Accept"}
}
