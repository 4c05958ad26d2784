package bench

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/meshfast/meshfast/engine"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMaskedFrameWire(t *testing.T) {
	for _, tc := range []struct {
		name    string
		op      byte
		payload string
		key     uint32
		want    string // FIN|op, MASK|len, key, masked payload
	}{
		{"empty text", opText, "", 0x01020304, "81 80 01020304"},
		{"hi", opText, "hi", 0x00000000, "81 82 00000000 6869"},
		{"masked", opText, "Hello", 0x37fa213d, "81 85 37fa213d 7f9f4d5158"}, // RFC 6455 §5.7
		{"close 1000", opClose, "\x03\xe8", 0, "88 82 00000000 03e8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := appendMaskedFrame(nil, tc.op, []byte(tc.payload), tc.key)
			if want := unhex(t, tc.want); !bytes.Equal(got, want) {
				t.Fatalf("got % x, want % x", got, want)
			}
		})
	}
}

// readMasked decodes a client frame with gobwas/ws, independently of ours.
func readMasked(t testing.TB, b []byte) (ws.Header, []byte) {
	t.Helper()
	r := bytes.NewReader(b)
	h, err := ws.ReadHeader(r)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(r, p); err != nil {
		t.Fatal(err)
	}
	if !h.Masked {
		t.Fatal("frame not masked")
	}
	ws.Cipher(p, h.Mask, 0)
	if r.Len() != 0 {
		t.Fatalf("%d trailing bytes", r.Len())
	}
	return h, p
}

func TestMaskedFrameLengths(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 125, 126, 127, 65535, 65536, 70000} {
		p := bytes.Repeat([]byte("abcdefghijk"), n/11+1)[:n]
		h, got := readMasked(t, appendMaskedFrame(nil, opBinary, p, 0xdeadbeef))
		if !h.Fin || h.OpCode != ws.OpBinary || !bytes.Equal(got, p) {
			t.Fatalf("n=%d: header %+v, payload equal %v", n, h, bytes.Equal(got, p))
		}
	}
}

func FuzzMaskedFrame(f *testing.F) {
	f.Add([]byte("hello"), uint32(0x37fa213d))
	f.Add(bytes.Repeat([]byte{0xff}, 300), uint32(1))
	f.Fuzz(func(t *testing.T, p []byte, key uint32) {
		h, got := readMasked(t, appendMaskedFrame([]byte("prefix"), opText, p, key)[6:])
		if h.OpCode != ws.OpText || !bytes.Equal(got, p) {
			t.Fatalf("round trip changed the payload")
		}
	})
}

// serverFrame encodes a server frame by hand: fin, op and payload.
func serverFrame(fin bool, op byte, p string) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var b []byte
	switch n := len(p); {
	case n < 126:
		b = []byte{b0, byte(n)}
	case n <= 0xffff:
		b = []byte{b0, 126, byte(n >> 8), byte(n)}
	default:
		b = []byte{b0, 127, 0, 0, 0, 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
	return append(b, p...)
}

func TestFrameParser(t *testing.T) {
	long := strings.Repeat("z", 70000)
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	for _, tc := range []struct {
		name string
		in   []byte
		want []string
		err  bool
	}{
		{"text", serverFrame(true, opText, "hello"), []string{"1:hello"}, false},
		{"two", cat(serverFrame(true, opText, "a"), serverFrame(true, opBinary, "b")), []string{"1:a", "2:b"}, false},
		{"empty", serverFrame(true, opText, ""), []string{"1:"}, false},
		{"engine frame", engine.AppendFrame(nil, engine.OpText, []byte(long)), []string{"1:" + long}, false},
		{"fragments with ping inside", cat(serverFrame(false, opText, "he"), serverFrame(true, opPing, "p"),
			serverFrame(false, opContinuation, "ll"), serverFrame(true, opContinuation, "o")),
			[]string{"9:p", "1:hello"}, false},
		{"close", serverFrame(true, opClose, "\x03\xe8"), []string{"8:\x03\xe8"}, false},
		{"masked", []byte{0x81, 0x81, 1, 2, 3, 4, 'x'}, nil, true},
		{"reserved bit", []byte{0xc1, 0x00}, nil, true},
		{"reserved opcode", []byte{0x83, 0x00}, nil, true},
		{"fragmented ping", []byte{0x09, 0x00}, nil, true},
		{"long ping", cat([]byte{0x89, 126, 0, 126}, bytes.Repeat([]byte{'p'}, 126)), nil, true},
		{"orphan continuation", serverFrame(true, opContinuation, "x"), nil, true},
		{"text inside fragments", cat(serverFrame(false, opText, "a"), serverFrame(true, opText, "b")), nil, true},
		{"too big", []byte{0x82, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{len(tc.in), 1, 3, 7} {
				var p frameParser
				var s sink
				var err error
				for i := 0; i < len(tc.in) && err == nil; i += step {
					err = p.parse(tc.in[i:min(i+step, len(tc.in))], &s)
				}
				if (err != nil) != tc.err {
					t.Fatalf("step %d: err = %v, want error %v", step, err, tc.err)
				}
				var pe *ProtocolError
				if err != nil && !errors.As(err, &pe) {
					t.Fatalf("step %d: err %v is not a ProtocolError", step, err)
				}
				if !tc.err && strings.Join(s.msgs, "|") != strings.Join(tc.want, "|") {
					t.Fatalf("step %d: got %q, want %q", step, s.msgs, tc.want)
				}
			}
		})
	}
}

// parseAll feeds chunks to a fresh parser and returns what it produced.
func parseAll(chunks ...[]byte) ([]string, bool) {
	var p frameParser
	p.maxSize = 1 << 16
	var s sink
	for _, c := range chunks {
		if err := p.parse(c, &s); err != nil {
			return s.msgs, true
		}
	}
	return s.msgs, false
}

// FuzzFrameParser feeds the input whole, split at a fuzzed offset and byte
// by byte: the messages and the verdict must not depend on the split.
func FuzzFrameParser(f *testing.F) {
	f.Add(serverFrame(true, opText, "hello"), 2)
	f.Add(append(serverFrame(false, opText, "a"), serverFrame(true, opContinuation, "b")...), 3)
	f.Add(engine.AppendFrame(nil, engine.OpBinary, bytes.Repeat([]byte{1}, 300)), 100)
	f.Add(append(serverFrame(true, opPing, "x"), serverFrame(true, opClose, "\x03\xe8")...), 4)
	f.Fuzz(func(t *testing.T, in []byte, cut int) {
		if cut < 0 {
			cut = -cut
		}
		cut %= len(in) + 1
		whole, errWhole := parseAll(in)
		split, errSplit := parseAll(in[:cut], in[cut:])
		bytewise := make([][]byte, len(in))
		for i := range in {
			bytewise[i] = in[i : i+1]
		}
		single, errSingle := parseAll(bytewise...)
		if errWhole != errSplit || errWhole != errSingle {
			t.Fatalf("verdict depends on split: %v %v %v", errWhole, errSplit, errSingle)
		}
		w, s, b := strings.Join(whole, "|"), strings.Join(split, "|"), strings.Join(single, "|")
		if w != s || w != b {
			t.Fatalf("messages depend on split:\n%q\n%q\n%q", whole, split, single)
		}
	})
}

func TestHandshakeReader(t *testing.T) {
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	accept := acceptKey(key)
	if accept != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" { // RFC 6455 §1.3
		t.Fatalf("acceptKey = %s", accept)
	}
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nsec-websocket-accept: " +
		accept + "\r\n\r\n"
	frame := serverFrame(true, opText, "first")
	all := append([]byte(resp), frame...)
	for cut := 0; cut <= len(all); cut++ {
		var h handshakeReader
		first, second := all[:cut], all[cut:]
		n, done, err := h.feed(first, accept)
		var leftover []byte
		if done {
			leftover = append(append([]byte(nil), first[n:]...), second...)
		} else {
			if err != nil || n != len(first) {
				t.Fatalf("cut %d: n=%d err=%v", cut, n, err)
			}
			n, done, err = h.feed(second, accept)
			leftover = second[n:]
		}
		if !done || err != nil || !bytes.Equal(leftover, frame) {
			t.Fatalf("cut %d: done=%v err=%v leftover %q", cut, done, err, leftover)
		}
	}
	for _, bad := range []string{
		"HTTP/1.1 503 Service Unavailable\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: nope\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\n\r\n",
	} {
		var h handshakeReader
		if _, done, err := h.feed([]byte(bad), accept); !done || err == nil {
			t.Fatalf("%q: done=%v err=%v", bad, done, err)
		}
	}
	var h handshakeReader
	if _, _, err := h.feed(bytes.Repeat([]byte("x"), maxHandshakeBytes+1), accept); err == nil {
		t.Fatal("oversized head accepted")
	}
}
