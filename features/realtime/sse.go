package realtime

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/mesh"
	"github.com/meshfast/meshfast/protocol"
)

// Stream is one Server-Sent Events connection. Its exported methods are
// safe from any goroutine.
type Stream struct {
	rt          *Realtime
	ec          *engine.Conn
	member      atomic.Pointer[mesh.Connection] // what guards see: ID, user, claims (replaced once verified)
	identity    mesh.Identity                   // as authenticated; Verify runs in join
	channels    []string                        // asked for at connect, checked
	lastEventID string

	mu     sync.Mutex
	verify bool  // identity.Verify is still to run
	joined holds // what join took and leave gives back
	closed bool  // OnClose ran: join gives back what it took
}

// holds is what a joined stream holds on the node: for each of its
// channels and for its user, an interest (which gives their messages a
// stream variant) and a node reference on their coordinator subscription.
type holds struct {
	channels  []string
	user      string
	userTopic string
}

// ID is the stream's id, unique in the cluster like a Mesh connection's.
func (s *Stream) ID() string { return s.member.Load().ID() }

// User is the stream's user as Options.Mesh.Authenticate named it ("" for
// an anonymous stream).
func (s *Stream) User() string { return s.member.Load().User() }

// Claims is the stream's Identity.Claims.
func (s *Stream) Claims() any { return s.member.Load().Claims() }

// Channels are the channels the stream asked for at connect.
func (s *Stream) Channels() []string { return slices.Clone(s.channels) }

// LastEventID is the Last-Event-ID the client sent ("" if none): the id of
// the last event it saw before reconnecting.
func (s *Stream) LastEventID() string { return s.lastEventID }

// RemoteAddr is the client's address.
func (s *Stream) RemoteAddr() net.Addr { return s.ec.RemoteAddr() }

// Send sends ev to this stream alone. It returns once ev is queued; a
// closed stream drops it.
func (s *Stream) Send(ev Event) error {
	f, err := streamFrame(ev)
	if err != nil {
		return err
	}
	s.ec.Send(f)
	f.Release()
	return nil
}

// Close ends the stream: the client gets the end of the body, and an
// EventSource reconnects after its retry delay.
func (s *Stream) Close() { s.ec.CloseAsync(engine.CloseNormal, "") }

// SSE answers the request r with a stream, from an HTTP handler (on the
// event loop, as engine.HTTPHandler runs): it checks that the client
// accepts text/event-stream (else 406), authenticates it with
// Options.Mesh.Authenticate under the Mesh Origin allow-list (a refusal's
// status, else 401), and checks the channels it asks for in its query
// string, "?channel=a&channel=b", against the Mesh channel exposures and
// their guards, as a Mesh client's subscription would be (else 403; an
// Identity with Verify has them checked once it is verified, and is closed
// if one is refused). On an error the response already holds the refusal.
//
// The stream opens once the handler returns (or is answered 503 past
// SSEOptions.MaxConnections). Its first event, "ready", says what it
// receives (see the package doc); its channels' messages follow, and
// whatever Send, SendTo and Broadcast send it. The returned Stream may be
// sent to at once: what is sent waits for the stream to open.
func (rt *Realtime) SSE(w *engine.Response, r *engine.Request) (*Stream, error) {
	refuse := func(status int, msg string, headers ...string) error {
		w.Status, w.ContentType, w.Body, w.Headers = status, "text/plain; charset=utf-8", []byte(msg+"\n"), headers
		return &engine.HTTPError{Status: status, Message: msg, Headers: headers}
	}
	if !engine.AcceptsEventStream(r) {
		return nil, refuse(406, "this endpoint sends text/event-stream")
	}
	id, err := rt.ms.AuthenticateRequest(r)
	if err != nil {
		var he *engine.HTTPError
		if !errors.As(err, &he) {
			return nil, refuse(401, "Unauthorized")
		}
		return nil, refuse(he.Status, he.Message, he.Headers...)
	}
	q, err := url.ParseQuery(string(r.Query))
	if err != nil {
		return nil, refuse(400, "malformed query string")
	}
	var channels []string
	for _, ch := range q["channel"] {
		if !slices.Contains(channels, ch) {
			channels = append(channels, ch)
		}
	}
	if len(channels) > rt.opts.SSE.MaxChannels {
		return nil, refuse(400, fmt.Sprintf("at most %d channels per stream", rt.opts.SSE.MaxChannels))
	}
	ec := r.Conn()
	st := &Stream{
		rt:          rt,
		ec:          ec,
		identity:    id,
		channels:    channels,
		lastEventID: string(r.Header("Last-Event-ID")),
		verify:      id.Verify != nil,
	}
	st.member.Store(rt.ms.MemberConnection(ec, id))
	for _, ch := range channels {
		if err := checkSSEChannel(ch); err != nil {
			return nil, refuse(400, fmt.Sprintf("channel %q: %v", ch, err))
		}
		if !st.verify && !rt.ms.ChannelAllowed(st.member.Load(), ch) {
			return nil, refuse(403, fmt.Sprintf("channel %q is not exposed to this client", ch))
		}
	}
	ec.SetValue(st)
	w.OpenSSE(rt.sse)
	return st, nil
}

// checkSSEChannel refuses a channel name that cannot be part of an event
// id (NUL, CR, LF) and the empty one.
func checkSSEChannel(ch string) error {
	if ch == "" {
		return errors.New("empty name")
	}
	return engine.CheckSSEID(ch)
}

// serveSSE is the HTTP handler mounted on SSEOptions.Path.
func (rt *Realtime) serveSSE(w *engine.Response, r *engine.Request) { _, _ = rt.SSE(w, r) }

// sseHandler serves the streams on their loops.
type sseHandler Realtime

func (h *sseHandler) OnOpen(ec *engine.Conn, _ *engine.Request) {
	rt := (*Realtime)(h)
	st, _ := ec.Value().(*Stream)
	if st == nil {
		ec.Close(engine.CloseInternalError, "")
		return
	}
	rt.streams.Add(1)
	if len(st.channels) == 0 && !st.verify && st.User() == "" {
		_ = ec.WriteRaw(appendReady(nil, st, "", 0, st.lastEventID != ""))
		return
	}
	// Joining waits on the coordinator: off the loop, for as long as it
	// takes, and no longer.
	go rt.join(st)
}

func (h *sseHandler) OnMessage(*engine.Conn, engine.OpCode, []byte) {}

func (h *sseHandler) OnClose(ec *engine.Conn, _ engine.CloseInfo) {
	rt := (*Realtime)(h)
	st, _ := ec.Value().(*Stream)
	if st == nil {
		return
	}
	rt.streams.Add(-1)
	st.mu.Lock()
	st.closed = true
	joined := st.joined
	st.joined = holds{}
	st.mu.Unlock()
	if len(joined.channels) > 0 || joined.user != "" {
		go rt.leave(ec, joined) // it may wait on the coordinator
	}
}

// joinTimeout bounds what a stream's join, and a leave, wait for.
const joinTimeout = 10 * time.Second

// join verifies the stream's identity if it has to, takes a hold on each
// of its channels and on its user's messages, and then, on the stream's
// loop in one step, sends the "ready" event and whatever the stream
// resumes, and subscribes it to their topics. It runs on a goroutine of
// its own.
func (rt *Realtime) join(st *Stream) {
	ctx, cancel := context.WithTimeout(context.Background(), joinTimeout)
	defer cancel()
	if st.verify {
		id, err := rt.ms.VerifyIdentity(ctx, st.identity)
		if err != nil {
			rt.log.Info("realtime: stream refused: authentication failed", "stream", st.ID(), "remote", st.RemoteAddr(), "err", err)
			rt.refuseStream(st, "authentication failed")
			return
		}
		m := rt.ms.MemberConnection(st.ec, id)
		for _, ch := range st.channels {
			if !rt.ms.ChannelAllowed(m, ch) {
				rt.refuseStream(st, fmt.Sprintf("channel %q is not exposed to this client", ch))
				return
			}
		}
		st.member.Store(m)
		st.mu.Lock()
		st.verify = false
		st.mu.Unlock()
	}
	var held holds
	var topics []string
	for _, ch := range st.channels {
		rt.interest(ch)
		topic, err := rt.ms.RetainChannel(ctx, ch)
		if err != nil {
			rt.disinterest(ch)
			rt.log.Warn("realtime: a stream could not join a channel; closed", "stream", st.ID(), "channel", ch, "err", err)
			rt.leave(st.ec, held)
			rt.refuseStream(st, fmt.Sprintf("channel %q is unavailable", ch))
			return
		}
		held.channels = append(held.channels, ch)
		topics = append(topics, topic)
	}
	if u := st.User(); u != "" {
		topic, err := rt.ms.RetainUser(ctx, u)
		if err != nil {
			rt.log.Warn("realtime: a stream could not subscribe to its user's messages; closed", "stream", st.ID(), "user", u, "err", err)
			rt.leave(st.ec, held)
			rt.refuseStream(st, "its user's messages are unavailable")
			return
		}
		rt.userInterest(topic, 1)
		held.user, held.userTopic = u, topic
		topics = append(topics, topic) // after the channels': joinResuming indexes them alike
	}
	resumeCh, want, resuming := parseEventID(st.lastEventID)
	resuming = resuming && slices.Contains(st.channels, resumeCh)
	var ok bool
	if resuming {
		ok = rt.joinResuming(ctx, st, topics, resumeCh, want)
	} else {
		ready := appendReady(nil, st, "", 0, st.lastEventID != "")
		ok = st.ec.DoWait(func(ec *engine.Conn) { rt.enter(ec, ready, topics) })
	}
	if !ok {
		rt.leave(st.ec, held) // closed before it joined
		return
	}
	st.mu.Lock()
	closed := st.closed
	if !closed {
		st.joined = held
	}
	st.mu.Unlock()
	if closed {
		rt.leave(st.ec, held) // closed after it joined, before its hold was on record
		return
	}
	for _, ch := range st.channels {
		rt.joined(st, ch)
	}
}

// joinResuming is join's last step for a stream whose Last-Event-ID names
// a message of channel ch: it is sent the messages after that one, and
// enters ch's topic once the rest of the history has reached this node
// (pendingJoin), so that it receives each message once, in order:
// replayed, or live. The channel's deliveries wait while the plan is made
// and the stream's loop sends the replay (one loop round trip).
func (rt *Realtime) joinResuming(ctx context.Context, st *Stream, topics []string, ch, want string) bool {
	rt.chanMu.RLock()
	cs := rt.chans[ch]
	rt.chanMu.RUnlock()
	i := slices.Index(st.channels, ch)
	p := &pendingJoin{ec: st.ec, topic: topics[i]}
	others := slices.Delete(slices.Clone(topics), i, i+1)
	cs.mu.Lock()
	cs.pending = append(cs.pending, p)
	cs.mu.Unlock()
	// Mesh's ChannelHistory, not the coordinator's: a durable channel's
	// history is its stream's.
	raw, err := rt.ms.ChannelHistory(ctx, ch, rt.opts.SSE.MaxReplay)
	hist := make([]entry, len(raw))
	for i, m := range raw {
		b := []byte(m)
		hist[i] = entry{d: digest(b), msg: b}
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var replay []entry
	found := false
	if err != nil {
		rt.log.Warn("realtime: reading a channel's history to resume a stream failed; nothing replayed", "stream", st.ID(), "channel", ch, "err", err)
	} else if !p.over {
		replay, found = planReplay(hist, p.seen, want)
	}
	if found {
		p.skip = make(map[string]bool, len(hist))
		for _, e := range hist {
			p.skip[e.d] = true
		}
		for _, e := range p.seen {
			delete(p.skip, e.d) // delivered already: they will not come again
		}
		p.seen, p.planned = nil, true
	} else {
		// Nothing replayed: whatever arrives from now on is the stream's.
		cs.dropPending(p)
		others = topics
	}
	missed := !found || len(st.channels) > 1
	resumed := ""
	if found {
		resumed = ch
	}
	out := appendReady(nil, st, resumed, len(replay), missed)
	for _, e := range replay {
		out = appendChannelEvent(out, ch, e.d, e.msg)
	}
	ok := st.ec.DoWait(func(ec *engine.Conn) { rt.enter(ec, out, others) })
	if !ok {
		cs.dropPending(p)
	}
	return ok
}

// enter sends a stream its first events and subscribes it to its topics.
// Loop only.
func (rt *Realtime) enter(ec *engine.Conn, first []byte, topics []string) {
	_ = ec.WriteRaw(first)
	for _, t := range topics {
		rt.e.Subscribe(ec, t)
	}
}

// refuseStream tells a stream why it is closed, as an "error" event, and
// closes it.
func (rt *Realtime) refuseStream(st *Stream, why string) {
	data := protocol.AppendJSONString([]byte(`{"error":`), why)
	data = append(data, '}')
	ev, _ := engine.AppendSSEEvent(nil, "", "error", data)
	st.ec.Do(func(ec *engine.Conn) {
		_ = ec.WriteRaw(ev)
		ec.Close(engine.ClosePolicyViolation, why)
	})
}

// appendReady appends a stream's first event:
//
//	event: ready
//	data: {"id":"conn-…","channels":["a","b"],"resumed":"a","replayed":2,"missed":false}
//
// resumed names the channel the stream resumed ("" if none), replayed how
// many of its messages followed, and missed whether the client may have
// missed events: it sent a Last-Event-ID that could not be resumed, or it
// resumed one channel of several.
func appendReady(dst []byte, st *Stream, resumed string, replayed int, missed bool) []byte {
	data := append(make([]byte, 0, 128), `{"id":`...)
	data = protocol.AppendJSONString(data, st.ID())
	data = append(data, `,"channels":[`...)
	for i, ch := range st.channels {
		if i > 0 {
			data = append(data, ',')
		}
		data = protocol.AppendJSONString(data, ch)
	}
	data = append(data, `],"resumed":`...)
	data = protocol.AppendJSONString(data, resumed)
	data = append(data, `,"replayed":`...)
	data = fmt.Appendf(data, "%d", replayed)
	data = append(data, `,"missed":`...)
	data = protocol.AppendBool(data, missed)
	data = append(data, '}')
	out, _ := engine.AppendSSEEvent(dst, "", "ready", data)
	return out
}

// userInterest counts the streams subscribed, or subscribing, to a user
// topic on this node (d is 1 or -1): while there are some, the user's
// messages are given their stream variant (StreamPush).
func (rt *Realtime) userInterest(topic string, d int) {
	rt.usersMu.Lock()
	defer rt.usersMu.Unlock()
	if n := rt.users[topic] + d; n > 0 {
		rt.users[topic] = n
	} else {
		delete(rt.users, topic)
	}
}
