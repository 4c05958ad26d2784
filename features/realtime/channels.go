package realtime

import (
	"context"
	"sync"

	"github.com/meshfast/meshfast/engine"
)

// chanState is the node's state for a channel that has streams (joined or
// joining) on this node: it exists exactly while it has one, and while it
// does, the channel's messages are given a stream variant (DeliverChannel).
// Channels without streams cost one map lookup per message.
type chanState struct {
	refs int // streams joined or joining (Realtime.chanMu)

	// mu orders the channel's deliveries with the joins of resuming
	// streams (pendingJoin): DeliverChannel holds it while it encodes and
	// publishes a message, a resuming join while it plans its replay and
	// its loop sends it.
	mu      sync.Mutex
	pending []*pendingJoin
}

// pendingJoin is a stream resuming the channel: it is sent the channel's
// history after its Last-Event-ID, and enters the channel's topic only
// once the messages of that history still on their way to this node have
// arrived (a message is stored in the history before it is published), so
// that it receives each message once: replayed or live.
//
// Until it is planned, it collects what is delivered meanwhile (the
// history is being read). Once planned, a delivered message that the
// history held is one the stream was replayed or had seen, and is skipped;
// the first one it did not hold is newer than all of it: it is sent to the
// stream, which then enters the topic, both in the order of the channel's
// publishes on the stream's loop.
type pendingJoin struct {
	ec      *engine.Conn
	topic   string
	planned bool
	seen    []entry         // delivered while not planned (at most maxSeen)
	over    bool            // more than maxSeen were: the plan cannot be trusted
	skip    map[string]bool // once planned: digests of the history
}

// maxSeen bounds what a pending join keeps while its history is read:
// past it the resume is given up (the stream is told it missed events)
// rather than holding more.
const maxSeen = 4096

// entry is a channel message and its digest.
type entry struct {
	d   string
	msg []byte
}

// DeliverChannel implements mesh.ChannelTap: a message of a channel with
// streams on this node gets its stream variant, encoded once, and is
// published; resuming streams of the channel are then served
// (pendingJoin).
func (rt *Realtime) DeliverChannel(channel, topic string, message []byte, f *engine.Frame) {
	rt.chanMu.RLock()
	cs := rt.chans[channel]
	rt.chanMu.RUnlock()
	if cs == nil {
		rt.e.Publish(topic, f, nil)
		return
	}
	d := digest(message)
	f.SetStreamBytes(appendChannelEvent(f.StreamBuf(), channel, d, message))
	cs.mu.Lock()
	defer cs.mu.Unlock()
	rt.e.Publish(topic, f, nil)
	for i := 0; i < len(cs.pending); i++ {
		p := cs.pending[i]
		switch {
		case !p.planned && len(p.seen) >= maxSeen:
			p.over = true
		case !p.planned:
			p.seen = append(p.seen, entry{d: d, msg: append([]byte(nil), message...)})
		case p.skip[d]:
			delete(p.skip, d)
		default:
			// Posted after the publish, to the stream's loop: it gets this
			// message from here, and the next from the topic, which must
			// know the loop before the next publish: one loop round trip,
			// once per resuming stream.
			p.ec.Send(f)
			rt.e.SubscribeWait(p.ec, p.topic)
			cs.dropPending(p)
			i--
		}
	}
}

// dropPending removes p. cs.mu is held.
func (cs *chanState) dropPending(p *pendingJoin) {
	for i, x := range cs.pending {
		if x == p {
			cs.pending = append(cs.pending[:i], cs.pending[i+1:]...)
			return
		}
	}
}

// interest adds a stream's interest in channel, making its state if it is
// the first.
func (rt *Realtime) interest(channel string) *chanState {
	rt.chanMu.Lock()
	defer rt.chanMu.Unlock()
	cs := rt.chans[channel]
	if cs == nil {
		cs = &chanState{}
		rt.chans[channel] = cs
	}
	cs.refs++
	return cs
}

// disinterest drops what interest added.
func (rt *Realtime) disinterest(channel string) {
	rt.chanMu.Lock()
	defer rt.chanMu.Unlock()
	cs := rt.chans[channel]
	if cs == nil {
		return
	}
	if cs.refs--; cs.refs <= 0 {
		delete(rt.chans, channel)
	}
}

// leave gives back a stream's holds: on each channel a pending resume, the
// interest and the node's coordinator reference, and on its user the
// same. The stream has left the topics (it closed) or never joined them.
func (rt *Realtime) leave(ec *engine.Conn, h holds) {
	if len(h.channels) == 0 && h.user == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), joinTimeout)
	defer cancel()
	for _, ch := range h.channels {
		rt.chanMu.RLock()
		cs := rt.chans[ch]
		rt.chanMu.RUnlock()
		if cs != nil {
			cs.mu.Lock()
			for _, p := range cs.pending {
				if p.ec == ec {
					cs.dropPending(p)
					break
				}
			}
			cs.mu.Unlock()
		}
		rt.ms.ReleaseChannel(ctx, ch)
		rt.disinterest(ch)
	}
	if h.user != "" {
		rt.ms.ReleaseUser(ctx, h.user)
		rt.userInterest(h.userTopic, -1)
	}
}

// planReplay decides what a stream resuming a channel after the message
// whose digest is want is replayed: the messages after it, oldest first,
// from the history (hist, newest first) and then those delivered while it
// was read that it does not hold (seen, in order: published after the
// read). found is false if want is not among them (too old for the
// history, or not a message of this channel): the stream is then told it
// missed events. Matching is by digest, so a message repeated with the
// same text matches its newest copy (see the ids in event.go).
func planReplay(hist []entry, seen []entry, want string) (replay []entry, found bool) {
	inHist := make(map[string]bool, len(hist))
	seq := make([]entry, 0, len(hist)+len(seen))
	for i := len(hist) - 1; i >= 0; i-- {
		seq = append(seq, hist[i])
		inHist[hist[i].d] = true
	}
	for _, e := range seen {
		if !inHist[e.d] {
			seq = append(seq, e)
		}
	}
	for i := len(seq) - 1; i >= 0; i-- {
		if seq[i].d == want {
			return seq[i+1:], true
		}
	}
	return nil, false
}
