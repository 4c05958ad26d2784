package bench

import (
	"bytes"
	"strconv"
	"time"

	"github.com/meshfast/meshfast/protocol/zps"
)

// The fanout over zero-pub-sub's gateway protocol (FanoutOptions.Protocol
// ProtocolZPS), the shape of the Mesh fanout: subscribers init and
// subscribe to one room from sequence 0, publishers init and publish
// events whose payload is the string "<ts-ns>|<seq>|<padding>", and the
// node answers each publish with an ack carrying the event's id (the
// request's number), which is how a reply finds its request.

var (
	zpsEventPrefix      = []byte(`{"type":"event"`)
	zpsReadyPrefix      = []byte(`{"type":"ready"`)
	zpsSubscribedPrefix = []byte(`{"type":"subscribed"`)
	zpsAckPrefix        = []byte(`{"type":"ack"`)
	zpsErrorPrefix      = []byte(`{"type":"error"`)
	zpsPayloadKey       = []byte(`"payload":"`)
	zpsIDKey            = []byte(`"id":"`)
)

// zpsRoom is the room of a run: channel itself if it names one, else a
// fresh room of that scope, so that subscribing from sequence 0 replays
// nothing.
func zpsRoom(channel string) string {
	if bytes.IndexByte([]byte(channel), ':') >= 0 {
		return channel
	}
	return channel + ":run-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// setupZPS prepares the worker's frames for the gateway protocol.
func (w *worker) setupZPS() {
	w.zps = true
	id := "bench-" + strconv.Itoa(w.plan.Index)
	sub := appendMaskedFrame(nil, opText, zps.AppendInit(nil, id, ""), w.key)
	w.subFrame = appendMaskedFrame(sub, opText, zps.AppendSubscribe(nil, w.plan.Channel, nil, 0, true), w.key)
	w.pubInit = appendMaskedFrame(nil, opText, zps.AppendInit(nil, id+"-pub", ""), w.key)
}

// appendZPSPublish appends publisher pub's publish number id, stamped now,
// carrying seq. The event's id is "<pub>-<id>": unique in the room, since
// the gateway takes an id it has stored as a retry of that event.
func (w *worker) appendZPSPublish(dst []byte, pub uint64, id, now int64, seq uint64) []byte {
	dst = append(dst, `{"type":"publish","event":{"id":"`...)
	dst = strconv.AppendUint(dst, pub, 10)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, id, 10)
	dst = append(dst, `","type":"bench","room":"`...)
	dst = append(dst, w.plan.Channel...)
	dst = append(dst, `","payload":"`...)
	mark := len(dst)
	dst = strconv.AppendInt(dst, now, 10)
	dst = append(dst, '|')
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, '|')
	if pad := w.plan.Payload - (len(dst) - mark); pad > 0 {
		dst = append(dst, w.pad[:pad]...)
	}
	return append(dst, `"}}`...)
}

// onZPS handles one gateway message. Loop only.
func (cc *cconn) onZPS(p []byte) error {
	switch {
	case bytes.HasPrefix(p, zpsEventPrefix):
		if cc.role == roleSub {
			if ts, seq, ok := parseDelivery(p, zpsPayloadKey); ok {
				cc.delivered(ts, seq)
			}
		}
	case cc.state == stSubscribing && bytes.HasPrefix(p, zpsErrorPrefix):
		cc.w.counts.inc(cSubscribeFailed)
		return errSubscribeRefused
	case cc.state == stSubscribing && cc.role == roleSub && bytes.HasPrefix(p, zpsSubscribedPrefix),
		cc.state == stSubscribing && cc.role == rolePub && bytes.HasPrefix(p, zpsReadyPrefix):
		cc.setReady()
	case cc.role == rolePub && bytes.HasPrefix(p, zpsAckPrefix):
		if i := bytes.Index(p, zpsIDKey); i >= 0 {
			s := p[i+len(zpsIDKey):]
			if _, n := parseUint(s); n > 0 && n < len(s) && s[n] == '-' {
				if id, m := parseUint(s[n+1:]); m > 0 {
					cc.req.reply(cc, int64(id))
				}
			}
		}
	}
	return nil
}
