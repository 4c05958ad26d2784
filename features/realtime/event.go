package realtime

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/protocol"
)

// Event is what the helpers send: a name and JSON data.
//
// A stream receives it as one Server-Sent Event ("event:" and the data as
// "data:" lines); a WebSocket (Mesh) connection as a Mesh push
// {"command": Event, "payload": Data}, "message" standing for an empty
// Event. Broadcast and SendTo travel as that Mesh push, which each node
// turns into the stream event once; a stream receives any Mesh push to
// every connection or to its user that way. Published to a channel, it travels as the
// channel message {"event","data","id"} (see ToChannel), which Mesh
// subscribers receive as it is and streams receive unwrapped.
type Event struct {
	// Event is the event's name: what a browser's
	// EventSource.addEventListener listens for. Empty means "message"
	// (EventSource.onmessage). It may not hold CR or LF.
	Event string
	// Data is encoded as JSON; a json.RawMessage is sent as it is (it
	// must then be JSON for WebSocket clients).
	Data any
	// ID is the stream event's id (EventSource's lastEventId, sent back in
	// Last-Event-ID when it reconnects) for Stream.Send; it may not hold
	// NUL, CR or LF. Broadcast and SendTo travel as Mesh pushes, which have
	// no id, and channel messages get ids of their own, which resume a
	// stream exactly (see the package doc): they ignore it.
	ID string
}

// ErrInvalidEvent wraps the error of an Event that cannot be sent.
var ErrInvalidEvent = errors.New("realtime: invalid event")

// appendData appends ev.Data as JSON.
func appendData(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case json.RawMessage:
		if len(x) == 0 {
			return append(dst, "null"...), nil
		}
		return append(dst, x...), nil
	}
	out, err := protocol.AppendJSON(dst, v)
	if err != nil {
		return dst, fmt.Errorf("%w: data: %w", ErrInvalidEvent, err)
	}
	return out, nil
}

// pushParts is ev as a Mesh push: its command and payload.
func pushParts(ev Event) (string, json.RawMessage, error) {
	if err := engine.CheckSSEEvent(ev.Event); err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	data, err := appendData(nil, ev.Data)
	if err != nil {
		return "", nil, err
	}
	name := ev.Event
	if name == "" {
		name = "message"
	}
	return name, json.RawMessage(data), nil
}

// streamFrame returns a frame holding ev as a stream event alone, with one
// reference.
func streamFrame(ev Event) (*engine.Frame, error) {
	data, err := appendData(nil, ev.Data)
	if err != nil {
		return nil, err
	}
	f := engine.AcquireFrame()
	b, err := engine.AppendSSEEvent(f.StreamBuf(), ev.ID, ev.Event, data)
	if err != nil {
		f.Release()
		return nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	f.SetStreamBytes(b)
	return f, nil
}

// appendPushEvent appends the stream event of a Mesh push
// {"command","payload"}: "event: <command>", the payload as data ("null"
// without one). A push whose command cannot be an event name gets none.
func appendPushEvent(dst, push []byte) []byte {
	var m protocol.Message
	if protocol.Decode(push, &m) != nil || engine.CheckSSEEvent(string(m.Command)) != nil {
		return dst
	}
	data := m.Payload
	if data == nil {
		data = []byte("null")
	}
	out, err := engine.AppendSSEEvent(dst, "", string(m.Command), data)
	if err != nil {
		return dst
	}
	return out
}

// Channel messages.
//
// An event published with ToChannel travels on the channel as the JSON
// object {"event":E,"data":D,"id":N}: what Mesh subscribers receive, and
// what a stream unwraps into "event: E" and D. N is 12 random bytes, so
// that no two events published are the same message (see ids below). Any
// other channel message (Server.PublishToChannel, the HTTP API) reaches
// streams as a "message" event whose data is the message itself.

// appendEnvelope appends ev as a channel message.
func appendEnvelope(dst []byte, ev Event) ([]byte, error) {
	if err := engine.CheckSSEEvent(ev.Event); err != nil {
		return dst, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	var nonce [12]byte
	_, _ = rand.Read(nonce[:])
	dst = append(dst, `{"event":`...)
	dst = protocol.AppendJSONString(dst, ev.Event)
	dst = append(dst, `,"data":`...)
	dst, err := appendData(dst, ev.Data)
	if err != nil {
		return dst, err
	}
	dst = append(dst, `,"id":"`...)
	dst = base64.RawURLEncoding.AppendEncode(dst, nonce[:])
	return append(dst, `"}`...), nil
}

// envelope is a channel message published by ToChannel.
type envelope struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
	ID    string          `json:"id"`
}

// parseEnvelope reads a channel message published by ToChannel; ok is
// false for any other message.
func parseEnvelope(msg []byte) (envelope, bool) {
	var env envelope
	if !bytes.HasPrefix(msg, []byte(`{"event":`)) || protocol.Unmarshal(msg, &env) != nil ||
		env.Data == nil || env.ID == "" || engine.CheckSSEEvent(env.Event) != nil {
		return envelope{}, false
	}
	return env, true
}

// Event ids of channel messages.
//
// A channel message's id is "<channel>:<digest>", the digest being the
// first 12 bytes of the message's SHA-256 in unpadded base64url (16
// characters). Every node computes the same id for the same message, from
// the message alone, so a stream resumes on any node, and after a
// restart, from whatever history the coordinator kept: the messages after
// the newest one with that digest (see planReplay). Events published with
// ToChannel carry a random nonce, so their digests never repeat and
// resuming from them is exact; a channel message published twice with the
// same text has one id for both, and a stream whose last event was the
// older copy resumes after the newer one.

const digestLen = 16 // base64url characters of 12 bytes

// digest returns msg's digest.
func digest(msg []byte) string {
	sum := sha256.Sum256(msg)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// parseEventID splits a channel message's id; ok is false for any other
// id.
func parseEventID(id string) (channel, dig string, ok bool) {
	n := len(id) - digestLen - 1
	if n < 1 || id[n] != ':' {
		return "", "", false
	}
	return id[:n], id[n+1:], true
}

// appendChannelEvent appends the stream event of a message of channel
// with digest d. The channel is known to fit in an id (checkSSEChannel).
func appendChannelEvent(dst []byte, channel, d string, msg []byte) []byte {
	dst = append(dst, "id: "...)
	dst = append(dst, channel...)
	dst = append(dst, ':')
	dst = append(dst, d...)
	dst = append(dst, '\n')
	if env, ok := parseEnvelope(msg); ok {
		if env.Event != "" {
			dst = append(dst, "event: "...)
			dst = append(dst, env.Event...)
			dst = append(dst, '\n')
		}
		msg = env.Data
	}
	dst = engine.AppendSSEData(dst, msg)
	return append(dst, '\n')
}
