package bench

import (
	"bytes"
	"math"
	"strconv"
	"time"
)

// Server-Sent Events streams (Options.SSE): a held or subscribed
// connection may be a stream instead of a WebSocket. It sends a GET with
// "Accept: text/event-stream" (and "?channel=" for a subscriber) instead of
// the upgrade, and is ready once the server's first event, "ready", has
// come: the stream has then joined its channels. A subscriber's deliveries
// are the "data:" lines of the channel's events, "<ts-ns>|<seq>|padding" as
// a WebSocket subscriber's messages are; they count with the WebSocket
// ones (unique, duplicates, latency) and on their own (cSSEUnique).

// isStream reports whether the k-th held or subscribed connection of a
// worker is a stream, for a share of streams: spread evenly, k from 0.
func isStream(k int, share float64) bool {
	if share <= 0 || k < 0 {
		return false
	}
	return math.Floor(float64(k+1)*share) > math.Floor(float64(k)*share)
}

// sseRequest is the GET that opens a stream on host: a subscriber's names
// its channel.
func sseRequest(host, path string, r role, channel string) []byte {
	target := path
	if r == roleSub {
		target += "?channel=" + channel // simpleName: nothing to escape
	}
	return []byte("GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\nAccept: text/event-stream\r\n\r\n")
}

// sseReader reads a stream: the response head, the chunked body, the event
// lines. It belongs to the connection's loop.
type sseReader struct {
	head     []byte // the response head so far
	headDone bool
	chunked  bool
	left     int    // bytes of the current chunk still to come; -1 before its size line
	size     []byte // the size line so far
	crlf     int    // bytes of the CRLF after a chunk still to skip
	line     []byte // the event line so far
	event    []byte // the event's name so far ("" is "message")
}

// maxSSELine bounds one event line the reader keeps.
const maxSSELine = 1 << 20

// streamTraffic is traffic for a stream. False closes the connection.
func (cc *cconn) streamTraffic(buf []byte) bool {
	r := cc.sse
	if !r.headDone {
		r.head = append(r.head, buf...)
		i := bytes.Index(r.head, []byte("\r\n\r\n"))
		if i < 0 {
			return len(r.head) <= maxHandshakeBytes
		}
		head := r.head[:i+4]
		buf = r.head[i+4:]
		if !bytes.HasPrefix(head, []byte("HTTP/1.1 200")) {
			return false // closed() counts the refusal
		}
		r.chunked = bytes.Contains(bytes.ToLower(head), []byte("\r\ntransfer-encoding: chunked\r\n"))
		r.headDone, r.head, r.left = true, nil, -1
		w := cc.w
		w.counts.inc(cUpgraded)
		w.hist[hHandshake].RecordValue(cc.now - cc.start)
		if cc.state == stHandshake {
			cc.state = stSubscribing // until the ready event
		}
	}
	if len(buf) == 0 {
		return true
	}
	if cc.role == roleSub {
		cc.w.counts.inc(cSubReads)
	}
	if !r.chunked {
		return cc.sseLines(buf)
	}
	for len(buf) > 0 {
		switch {
		case r.crlf > 0:
			n := min(r.crlf, len(buf))
			r.crlf -= n
			buf = buf[n:]
		case r.left < 0:
			i := bytes.IndexByte(buf, '\n')
			if i < 0 {
				r.size = append(r.size, buf...)
				if len(r.size) > 32 {
					return false
				}
				return true
			}
			r.size = append(r.size, buf[:i]...)
			buf = buf[i+1:]
			n, err := strconv.ParseUint(string(bytes.TrimSuffix(r.size, []byte("\r"))), 16, 32)
			r.size = r.size[:0]
			if err != nil || n == 0 {
				return false // malformed, or the last chunk: the stream ended
			}
			r.left = int(n)
		default:
			n := min(r.left, len(buf))
			if !cc.sseLines(buf[:n]) {
				return false
			}
			buf = buf[n:]
			if r.left -= n; r.left == 0 {
				r.left, r.crlf = -1, 2
			}
		}
	}
	return true
}

// sseLines reads event lines out of body bytes. The server ends lines
// with LF alone.
func (cc *cconn) sseLines(b []byte) bool {
	r := cc.sse
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			r.line = append(r.line, b...)
			return len(r.line) <= maxSSELine
		}
		line := b[:i]
		if len(r.line) > 0 {
			r.line = append(r.line, line...)
			line = r.line
		}
		b = b[i+1:]
		cc.sseLine(line)
		r.line = r.line[:0]
	}
	return true
}

// sseLine handles one event line.
func (cc *cconn) sseLine(line []byte) {
	r := cc.sse
	switch {
	case len(line) == 0: // the event ends
		if string(r.event) == "ready" && cc.state == stSubscribing {
			cc.setReady()
		}
		r.event = r.event[:0]
	case bytes.HasPrefix(line, []byte("event: ")):
		r.event = append(r.event[:0], line[len("event: "):]...)
	case bytes.HasPrefix(line, []byte("data: ")) && len(r.event) == 0 && cc.role == roleSub:
		cc.w.counts.inc(cSubFrames)
		s := line[len("data: "):]
		t, n := parseUint(s)
		if n == 0 || n >= len(s) || s[n] != '|' {
			return
		}
		q, m := parseUint(s[n+1:])
		if m == 0 {
			return
		}
		cc.delivered(int64(t), q)
	}
}

// sseStats adds the rows that set a fanout's streams beside its
// WebSockets: each transport's deliveries and rate over the same window.
func sseStats(r *RunResult, c counts, sseSubs, published uint64, start int64, drain []event) {
	var last int64
	for _, e := range drain {
		last = max(last, e.End)
	}
	sse := c[cSSEUnique]
	ws := c[cUnique] - sse
	r.add("SSE deliveries", float64(sse), "")
	r.add("SSE lost", float64(sseSubs*published-min(sse, sseSubs*published)), "")
	r.add("WebSocket deliveries", float64(ws), "")
	if last > start {
		d := time.Duration(last - start)
		r.add("SSE deliveries/s", perSecond(sse, d), "1/s")
		r.add("WebSocket deliveries/s", perSecond(ws, d), "1/s")
	}
}
