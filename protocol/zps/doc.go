// Package zps is the wire format of zero-pub-sub's event streams
// (@savanapoint/zero-pub-sub), shared by the streams feature
// (features/streams), its storage backends, its gateway and the Go client:
// room names (scope:resourceId and the scope:* pattern), the durable event
// envelope and the ephemeral event, with their JSON codecs, and the
// gateway's WebSocket protocol (gateway.go: the messages each way, their
// append-style encoders and decoders, the error codes).
//
//	room, err := zps.Room("chat", "123")        // "chat:123"
//	scope, wildcard, err := zps.ParsePattern(s)  // "chat:*" → "chat", true
//	b := ev.AppendJSON(buf[:0])                  // the envelope, as the gateway sends it
//	err = zps.DecodeEvent(b, &ev)                // ev's byte slices alias b
//	err = zps.DecodeClientMessage(b, &msg)       // {"type":"subscribe",…} → msg.Type, msg.Room…
//	b = zps.AppendEventMessage(b[:0], &ev)       // {"type":"event","data":{…}}
//
// # Envelope
//
// An Event encodes as zero-pub-sub's RealtimeEnvelope:
//
//	{"id":"evt_1","type":"message.created","room":"chat:123","sequence":1,
//	 "emittedAt":"2025-01-02T03:04:05.678Z","expiresAt":"2025-01-03T03:04:05.678Z",
//	 "payload":{"text":"hi"},"metadata":{"producer":"api"},"encrypted":true}
//
// Times are JavaScript's Date.toISOString (UTC, milliseconds, "Z");
// payload is any JSON value (null when absent), metadata a JSON object or
// absent, encrypted present only when true. Decoding accepts members in
// any order, ignores unknown ones, and needs id, type, room and sequence
// only: the document's own wire example leaves the times out.
//
// # Concurrency
//
// Every function is pure and safe from any goroutine. An Event is a plain
// value: share it read-only, or copy it (Clone) to change it.
package zps
