package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/meshfast/meshfast/protocol"
)

// role is what a client connection does once open.
type role uint8

const (
	roleHold   role = iota // connect, idle: hold the connection, answer pings
	roleRPC                // echo round trips
	roleSub                // subscribe, then track subscription messages
	rolePub                // publish requests
	roleRawSub             // ceiling: track frames, no subscribe
)

// connState is where a client connection is in its life. Loop only.
type connState uint8

const (
	stHandshake connState = iota
	stSubscribing
	stReady
	stClosed
)

// maxRing caps a requester's table of send times (a power of two).
const maxRing = 1024

var (
	errPeerClosed       = errors.New("bench: server closed the connection")
	errSubscribeRefused = errors.New("bench: subscribe refused")
	subscribedMark      = []byte(`"success":true`)
	messageKey          = []byte(`"message":"`)
	idPrefix            = []byte(`{"id":`)
	meshPingPrefix      = []byte(`{"command":"ping"`)
	meshLatencyPrefix   = []byte(`{"command":"latency:request"`)
)

// cconn is one client connection. Everything but ready belongs to the
// connection's loop (see eloop.go) once a dialer has added it there.
type cconn struct {
	w     *worker
	loop  *cloop
	out   []byte      // bytes the socket did not take yet
	ready atomic.Bool // past handshake (and subscribe); read by the sweep
	fd    int32       // -1 once closed
	role  role
	state connState
	// outArmed: EPOLLOUT is asked for (cloop.add, armOut)
	outArmed bool
	target   int   // index into the worker's targets
	start    int64 // dial start, unix ns
	now      int64 // time of the read being handled
	hs       handshakeReader
	fp       frameParser
	req      *requester // rpc, pub
	seq      seqTracker // sub, rawsub
	sse      *sseReader // a Server-Sent Events stream rather than a WebSocket (sse.go)
}

// traffic handles bytes read from the socket: the 101, then frames. False
// closes the connection.
func (cc *cconn) traffic(buf []byte) bool {
	w := cc.w
	w.counts.add(cBytesIn, uint64(len(buf)))
	if cc.sse != nil {
		return cc.streamTraffic(buf)
	}
	if cc.state == stHandshake {
		n, done, err := cc.hs.feed(buf, w.accept)
		if err != nil {
			return false // closed() counts the failure
		}
		if !done {
			return true
		}
		buf = buf[n:]
		cc.upgraded()
	}
	if len(buf) == 0 {
		return true
	}
	if cc.role == roleSub || cc.role == roleRawSub {
		w.counts.inc(cSubReads)
	}
	return cc.fp.parse(buf, cc) == nil
}

// closed settles the connection's accounting; close calls it once.
func (cc *cconn) closed() {
	w := cc.w
	prev := cc.state
	cc.state = stClosed
	switch {
	case prev == stClosed:
	case prev < stReady:
		w.counts.inc(cHandshakeErrors)
		w.release()
	case !w.stopping.Load():
		w.counts.inc(cClosed)
	}
	if cc.req != nil && prev != stClosed {
		cc.req.finish(cc)
	}
}

// upgraded runs when the 101 arrives.
func (cc *cconn) upgraded() {
	w := cc.w
	w.counts.inc(cUpgraded)
	w.hist[hHandshake].RecordValue(cc.now - cc.start)
	if cc.role == roleSub {
		cc.state = stSubscribing
		cc.write(w.subFrame)
		return
	}
	if w.zps && cc.role == rolePub {
		cc.state = stSubscribing // until init is answered
		cc.write(w.pubInit)
		return
	}
	cc.setReady()
}

func (cc *cconn) setReady() {
	cc.state = stReady
	cc.ready.Store(true)
	cc.w.counts.inc(cReady)
	if cc.role == roleSub || cc.role == roleRawSub {
		cc.w.counts.inc(cSubsReady)
	}
	if cc.sse != nil {
		cc.w.counts.inc(cSSEReady)
	}
	cc.w.lastReady.Store(cc.now)
	cc.w.release()
}

// onMessage handles one server message or control frame (frameSink).
func (cc *cconn) onMessage(op byte, p []byte) error {
	w := cc.w
	if cc.role == roleSub || cc.role == roleRawSub {
		w.counts.inc(cSubFrames)
	}
	switch op {
	case opPing:
		w.counts.inc(cLiveness)
		cc.write(appendMaskedFrame(nil, opPong, p, w.key))
	case opClose:
		if len(p) >= 2 && binary.BigEndian.Uint16(p) == 1013 {
			w.counts.inc(cSlowCloses)
		}
		cc.write(appendMaskedFrame(nil, opClose, p[:min(len(p), 2)], w.key))
		return errPeerClosed
	case opText, opBinary:
		return cc.onData(p)
	}
	return nil
}

func (cc *cconn) onData(p []byte) error {
	if cc.w.zps {
		return cc.onZPS(p)
	}
	// Mesh's liveness pushes: a server closes a client that misses pongs.
	if bytes.HasPrefix(p, meshPingPrefix) {
		cc.w.counts.inc(cLiveness)
		cc.write(cc.w.pongFrame)
		return nil
	}
	if bytes.HasPrefix(p, meshLatencyPrefix) {
		cc.w.counts.inc(cLiveness)
		cc.write(cc.w.latencyFrame)
		return nil
	}
	switch cc.role {
	case roleRPC, rolePub:
		if id, ok := scanID(p); ok {
			cc.req.reply(cc, id)
		}
	case roleSub:
		if cc.state == stSubscribing {
			if id, ok := scanID(p); ok && id == 1 {
				if !bytes.Contains(p, subscribedMark) {
					cc.w.counts.inc(cSubscribeFailed)
					return errSubscribeRefused
				}
				cc.setReady()
				return nil
			}
		}
		cc.deliver(p)
	case roleRawSub:
		cc.deliver(p)
	}
	return nil
}

// deliver accounts one subscription message.
func (cc *cconn) deliver(p []byte) {
	ts, seq, ok := parseDelivery(p, messageKey)
	if !ok {
		return
	}
	cc.delivered(ts, seq)
}

// delivered accounts one subscription message, whichever transport.
func (cc *cconn) delivered(ts int64, seq uint64) {
	w := cc.w
	w.counts.inc(cDeliveries)
	switch cc.seq.add(seq) {
	case seqNew:
		w.counts.inc(cUnique)
		if cc.sse != nil {
			w.counts.inc(cSSEUnique)
		}
	case seqDup:
		w.counts.inc(cDups)
	default:
		w.counts.inc(cStale)
	}
	w.hist[hDelivery].RecordValue(cc.now - ts)
	w.lastRecv.Store(cc.now)
}

// parseDelivery finds "<ts-ns>|<seq>|" at the start of the string after
// key (the Mesh message's, or a zps event's payload).
func parseDelivery(p, key []byte) (ts int64, seq uint64, ok bool) {
	i := bytes.Index(p, key)
	if i < 0 {
		return 0, 0, false
	}
	s := p[i+len(key):]
	t, n := parseUint(s)
	if n == 0 || n >= len(s) || s[n] != '|' {
		return 0, 0, false
	}
	s = s[n+1:]
	q, m := parseUint(s)
	if m == 0 {
		return 0, 0, false
	}
	return int64(t), q, true
}

// scanID returns the id of a reply: the fast path reads a leading {"id":n,
// anything else goes through the Mesh codec.
func scanID(p []byte) (int64, bool) {
	if bytes.HasPrefix(p, idPrefix) {
		if v, n := parseUint(p[len(idPrefix):]); n > 0 {
			return int64(v), true
		}
	}
	var m protocol.Message
	if protocol.Decode(p, &m) == nil && m.HasID {
		return m.ID, true
	}
	return 0, false
}

// parseUint reads leading decimal digits (at most 19).
func parseUint(s []byte) (uint64, int) {
	var v uint64
	n := 0
	for n < len(s) && n < 19 && s[n] >= '0' && s[n] <= '9' {
		v = v*10 + uint64(s[n]-'0')
		n++
	}
	return v, n
}

// Request kinds.
const (
	reqEcho byte = iota
	reqPublish
)

// sentAt is a requester's record of one request in flight.
type sentAt struct{ id, at int64 }

// requester sends echo or publish requests on one connection, closed loop
// (Depth in flight, the next leaves on a reply) or open loop (a pacer ticks
// it at Rate). It belongs to the connection's loop.
type requester struct {
	kind     byte
	pub      uint64 // global publisher index (publish)
	pubs     uint64 // publishers in the run
	depth    int
	rate     float64 // requests/s; 0 is closed loop
	budget   uint64
	sent     uint64
	inflight int
	startNs  int64
	deadline int64
	running  bool
	done     bool
	ring     []sentAt // power-of-two table indexed by id
	body     []byte   // scratch: payload, message, frame
	msg      []byte
	frame    []byte
}

// start begins the run phase. Loop only. Every start is matched by exactly
// one worker.requesterDone, now or when the requester finishes.
func (r *requester) start(cc *cconn, d time.Duration) {
	if r.running {
		return
	}
	r.running = true
	if r.done || cc.state != stReady || r.budget == 0 {
		r.done = true
		cc.w.requesterDone()
		return
	}
	now := time.Now().UnixNano()
	r.startNs, r.deadline = now, now+int64(d)
	if r.rate == 0 {
		cc.now = now
		r.fill(cc)
	}
}

// fill tops the closed-loop window up to depth.
func (r *requester) fill(cc *cconn) {
	for r.inflight < r.depth && r.sent < r.budget && cc.now < r.deadline {
		r.send(cc)
	}
	r.checkDone(cc)
}

// tick sends what the open-loop schedule says is due. Loop only.
func (r *requester) tick(cc *cconn, now int64) {
	if !r.running || r.done || cc.state != stReady {
		return
	}
	cc.now = now
	due := min(r.budget, uint64(float64(now-r.startNs)*r.rate/1e9)+1)
	for r.sent < due && now < r.deadline {
		r.send(cc)
	}
	r.checkDone(cc)
}

func (r *requester) send(cc *cconn) {
	w := cc.w
	r.sent++
	id := int64(r.sent)
	switch {
	case r.kind == reqPublish && w.zps:
		r.msg = w.appendZPSPublish(r.msg[:0], r.pub, id, cc.now, uint64(id-1)*r.pubs+r.pub)
	case r.kind == reqPublish:
		b := append(r.body[:0], w.pubPrefix...)
		mark := len(b)
		b = strconv.AppendInt(b, cc.now, 10)
		b = append(b, '|')
		b = strconv.AppendUint(b, uint64(id-1)*r.pubs+r.pub, 10)
		b = append(b, '|')
		if pad := w.plan.Payload - (len(b) - mark); pad > 0 {
			b = append(b, w.pad[:pad]...)
		}
		r.body = append(b, `"}`...)
		r.msg = protocol.AppendMessage(r.msg[:0], id, true, w.pubCommand, r.body)
	default:
		r.msg = protocol.AppendMessage(r.msg[:0], id, true, cmdEcho, w.echoPayload)
	}
	r.frame = appendMaskedFrame(r.frame[:0], opText, r.msg, w.key)
	r.ring[id&int64(len(r.ring)-1)] = sentAt{id, cc.now}
	r.inflight++
	w.counts.inc(cRequests)
	cc.write(r.frame)
}

// reply accounts the reply to id. Loop only.
func (r *requester) reply(cc *cconn, id int64) {
	s := &r.ring[id&int64(len(r.ring)-1)]
	if s.id != id {
		return // not ours, or overwritten
	}
	cc.w.hist[hRTT].RecordValue(cc.now - s.at)
	s.id = 0
	r.inflight--
	cc.w.counts.inc(cReplies)
	if r.rate == 0 && r.running {
		r.fill(cc)
		return
	}
	r.checkDone(cc)
}

func (r *requester) checkDone(cc *cconn) {
	if r.running && !r.done && r.inflight == 0 && (r.sent >= r.budget || cc.now >= r.deadline) {
		r.finish(cc)
	}
}

// finish marks the requester done once; the worker's run phase waits for all.
func (r *requester) finish(cc *cconn) {
	if r.done {
		return
	}
	r.done = true
	if r.running {
		cc.w.requesterDone()
	}
}
