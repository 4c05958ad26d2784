package zps

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/meshfast/meshfast/protocol/jsonx"
)

// The gateway protocol: zero-pub-sub's WebSocket wire protocol, one JSON
// object per text message, each with a "type". A client sends
//
//	{"type":"init","subscriberId":"device-1","token":"jwt"}
//	{"type":"subscribe","room":"chat:123","eventTypes":["message.created"],"fromSequence":0}
//	{"type":"unsubscribe","room":"chat:123"}
//	{"type":"publish","event":{"type":"message.created","room":"chat:123","payload":{"text":"Hello"}}}
//	{"type":"ack","room":"chat:123","sequence":10}
//	{"type":"replay_request","room":"chat:123","fromSequence":10,"limit":100}
//
// and the server answers
//
//	{"type":"ready","subscriberId":"device-1"}
//	{"type":"subscribed","room":"chat:123"}
//	{"type":"event","data":{…the envelope…}}
//	{"type":"replay","room":"chat:123","events":[…envelopes…]}
//	{"type":"ack","room":"chat:123","sequence":1}
//	{"type":"unsubscribed","room":"chat:123"}
//	{"type":"error","message":"Access denied for room: chat:123","code":"4408"}
//
// Where the document is silent meshfast adds, without changing a message
// the document shows: a publish is answered with an ack that also carries
// the stored event's id ({"type":"ack","room":…,"sequence":…,"id":…}),
// and a replay_request may name eventTypes and toSequence. The document's
// client publishes and subscribes to ephemeral events (typing, cursors),
// which its wire protocol does not list; meshfast carries them as
//
//	{"type":"subscribe_ephemeral","room":"chat:123","eventTypes":["typing"]} → {"type":"subscribed","room":"chat:123","ephemeral":true}
//	{"type":"unsubscribe_ephemeral","room":"chat:123"}                       → {"type":"unsubscribed","room":"chat:123","ephemeral":true}
//	{"type":"publish_ephemeral","event":{"type":"typing","room":"chat:123","payload":{…}}} → {"type":"ack","room":"chat:123","ephemeral":true}
//	{"type":"ephemeral","data":{"id":…,"type":"typing","room":"chat:123","emittedAt":…,"payload":{…}}}

// Message types, the "type" member of every message.
const (
	TypeInit          = "init"
	TypeSubscribe     = "subscribe"
	TypeUnsubscribe   = "unsubscribe"
	TypePublish       = "publish"
	TypeAck           = "ack" // both ways
	TypeReplayRequest = "replay_request"

	TypeSubscribeEphemeral   = "subscribe_ephemeral"
	TypeUnsubscribeEphemeral = "unsubscribe_ephemeral"
	TypePublishEphemeral     = "publish_ephemeral"

	TypeReady        = "ready"
	TypeSubscribed   = "subscribed"
	TypeEvent        = "event"
	TypeReplay       = "replay"
	TypeUnsubscribed = "unsubscribed"
	TypeError        = "error"
	TypeEphemeral    = "ephemeral"
)

// Error codes of the "error" message: strings, as the document writes its
// one example ("4408"), numbered from 4400 so that each fits a WebSocket
// close code as well (4000–4999 are the application's); the gateway closes
// with the same code when an error ends the connection. The document names
// only 4408; the others are meshfast's.
const (
	// CodeInvalidMessage: not JSON, not an object, an unknown type, or a
	// member missing or of the wrong kind (the message says which).
	CodeInvalidMessage = "4400"
	// CodeUnauthorized: init without a valid token while the gateway
	// verifies tokens. The connection is closed.
	CodeUnauthorized = "4401"
	// CodeInitRequired: a message other than init before init.
	CodeInitRequired = "4402"
	// CodeInitTimeout: no init within the init timeout. The connection is
	// closed.
	CodeInitTimeout = "4403"
	// CodePublishDisabled: a publish while client publishing is off (the
	// default).
	CodePublishDisabled = "4405"
	// CodePayloadTooLarge: a message over the payload limit; it is dropped.
	CodePayloadTooLarge = "4406"
	// CodeRateLimited: a message past the rate limit of its window; it is
	// dropped.
	CodeRateLimited = "4407"
	// CodeAccessDenied: a room whose scope is not allowed, or that the
	// authorization refused for the action (the document's code).
	CodeAccessDenied = "4408"
	// CodeTooManySubscriptions: a subscribe past the subscription limit.
	CodeTooManySubscriptions = "4409"
	// CodeTooManyConnections: a connection past the gateway's limit. The
	// connection is closed.
	CodeTooManyConnections = "4410"
	// CodeServerError: the node could not do what was asked (storage
	// unavailable, a middleware refusal that is not about access).
	CodeServerError = "4500"
)

// ClientMessage is one message from a client, decoded. Which fields are
// set depends on Type.
type ClientMessage struct {
	Type string
	// init
	SubscriberID string
	Token        string
	// subscribe, unsubscribe, ack, replay_request
	Room string
	// subscribe, replay_request
	EventTypes []string
	// subscribe, replay_request: HasFrom is false when fromSequence is
	// absent (or null), which for a subscribe means "after the cursor".
	FromSequence uint64
	HasFrom      bool
	// replay_request: 0 when absent.
	Limit      int
	ToSequence uint64
	// ack
	Sequence uint64
	// publish
	Event PublishEvent
}

// PublishEvent is the "event" of a publish: what a publisher gives of the
// envelope. TTLMs is the document's ttlMs, 0 when absent.
type PublishEvent struct {
	ID        string
	Type      string
	Room      string
	Payload   json.RawMessage
	Metadata  json.RawMessage
	Encrypted bool
	TTLMs     int64
}

// DecodeClientMessage reads one client message into m, replacing all of
// it. Payload and Metadata are slices of b; strings are copies. It checks
// the shape (a string type, members of the right JSON kinds, the members
// each type needs) and names what is wrong; whether a room, a name or a
// number is acceptable is the gateway's to judge. Unknown members are
// ignored. Errors wrap ErrInvalidMessage.
func DecodeClientMessage(b []byte, m *ClientMessage) error {
	*m = ClientMessage{}
	var it jsonx.ObjectIter
	if !it.Start(b) {
		return fmt.Errorf("%w: not a JSON object", ErrInvalidMessage)
	}
	var event []byte
	for it.Next() {
		key, kesc := it.Key()
		val, vesc := it.Value()
		if kesc {
			key = jsonx.AppendUnescaped(nil, key)
		}
		var err error
		switch string(key) {
		case "type":
			m.Type, err = msgStr(val, vesc, "type")
		case "subscriberId":
			m.SubscriberID, err = optStr(val, vesc, "subscriberId")
		case "token":
			m.Token, err = optStr(val, vesc, "token")
		case "room":
			m.Room, err = msgStr(val, vesc, "room")
		case "eventTypes":
			m.EventTypes, err = strList(val, "eventTypes")
		case "fromSequence":
			if string(val) != "null" {
				m.FromSequence, err = msgUint(val, "fromSequence")
				m.HasFrom = err == nil
			}
		case "toSequence":
			if string(val) != "null" {
				m.ToSequence, err = msgUint(val, "toSequence")
			}
		case "limit":
			if string(val) != "null" {
				var n uint64
				n, err = msgUint(val, "limit")
				if err == nil && n > 1<<31 {
					err = fmt.Errorf("%w: limit %d out of range", ErrInvalidMessage, n)
				}
				m.Limit = int(n)
			}
		case "sequence":
			m.Sequence, err = msgUint(val, "sequence")
		case "event":
			if val[0] != '{' {
				err = fmt.Errorf("%w: event is not an object", ErrInvalidMessage)
			}
			event = val
		}
		if err != nil {
			*m = ClientMessage{}
			return err
		}
	}
	if !it.End() {
		*m = ClientMessage{}
		return fmt.Errorf("%w: malformed JSON", ErrInvalidMessage)
	}
	if m.Type == "" {
		*m = ClientMessage{}
		return fmt.Errorf("%w: no type", ErrInvalidMessage)
	}
	if err := m.needs(event); err != nil {
		*m = ClientMessage{}
		return err
	}
	return nil
}

// needs checks the members m.Type requires, and decodes a publish's event.
func (m *ClientMessage) needs(event []byte) error {
	missing := func(what string) error {
		return fmt.Errorf("%w: %s needs %s", ErrInvalidMessage, m.Type, what)
	}
	switch m.Type {
	case TypeInit:
	case TypeSubscribe, TypeUnsubscribe, TypeReplayRequest, TypeSubscribeEphemeral, TypeUnsubscribeEphemeral:
		if m.Room == "" {
			return missing("a room")
		}
	case TypeAck:
		if m.Room == "" {
			return missing("a room")
		}
		if m.Sequence == 0 {
			return missing("a sequence of 1 or more")
		}
	case TypePublish, TypePublishEphemeral:
		if event == nil {
			return missing("an event")
		}
		return decodePublishEvent(event, &m.Event)
	default:
		return fmt.Errorf("%w: unknown type %q", ErrInvalidMessage, m.Type)
	}
	return nil
}

func decodePublishEvent(b []byte, e *PublishEvent) error {
	var it jsonx.ObjectIter
	it.Start(b)
	for it.Next() {
		key, kesc := it.Key()
		val, vesc := it.Value()
		if kesc {
			key = jsonx.AppendUnescaped(nil, key)
		}
		var err error
		switch string(key) {
		case "id":
			e.ID, err = optStr(val, vesc, "event.id")
		case "type":
			e.Type, err = msgStr(val, vesc, "event.type")
		case "room":
			e.Room, err = msgStr(val, vesc, "event.room")
		case "payload":
			e.Payload = payloadVal(val)
		case "metadata":
			switch {
			case string(val) == "null":
			case val[0] == '{':
				e.Metadata = val
			default:
				err = fmt.Errorf("%w: event.metadata is not an object", ErrInvalidMessage)
			}
		case "encrypted":
			switch string(val) {
			case "true":
				e.Encrypted = true
			case "false", "null":
			default:
				err = fmt.Errorf("%w: event.encrypted is not a boolean", ErrInvalidMessage)
			}
		case "ttlMs":
			if string(val) != "null" {
				var n uint64
				n, err = msgUint(val, "event.ttlMs")
				if err == nil && n > 1<<53 {
					err = fmt.Errorf("%w: event.ttlMs out of range", ErrInvalidMessage)
				}
				e.TTLMs = int64(n)
			}
		}
		if err != nil {
			*e = PublishEvent{}
			return err
		}
	}
	if !it.End() {
		*e = PublishEvent{}
		return fmt.Errorf("%w: malformed event", ErrInvalidMessage)
	}
	if e.Type == "" || e.Room == "" {
		*e = PublishEvent{}
		return fmt.Errorf("%w: publish needs an event with a type and a room", ErrInvalidMessage)
	}
	return nil
}

func msgStr(val []byte, esc bool, what string) (string, error) {
	if len(val) < 2 || val[0] != '"' {
		return "", fmt.Errorf("%w: %s is not a string", ErrInvalidMessage, what)
	}
	body := val[1 : len(val)-1]
	if esc {
		return string(jsonx.AppendUnescaped(nil, body)), nil
	}
	return string(body), nil
}

// optStr is msgStr that also takes null (as absent).
func optStr(val []byte, esc bool, what string) (string, error) {
	if string(val) == "null" {
		return "", nil
	}
	return msgStr(val, esc, what)
}

func msgUint(val []byte, what string) (uint64, error) {
	n, err := strconv.ParseUint(string(val), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %s is not a whole number", ErrInvalidMessage, what, val)
	}
	return n, nil
}

// strList reads a JSON array of strings (null is none).
func strList(val []byte, what string) ([]string, error) {
	if string(val) == "null" {
		return nil, nil
	}
	var out []string
	if val[0] != '[' || json.Unmarshal(val, &out) != nil {
		return nil, fmt.Errorf("%w: %s is not a list of strings", ErrInvalidMessage, what)
	}
	return out, nil
}

// AppendInit appends an init message; token is left out when empty.
func AppendInit(dst []byte, subscriberID, token string) []byte {
	dst = append(dst, `{"type":"init","subscriberId":`...)
	dst = jsonx.AppendString(dst, subscriberID)
	if token != "" {
		dst = append(dst, `,"token":`...)
		dst = jsonx.AppendString(dst, token)
	}
	return append(dst, '}')
}

// AppendSubscribe appends a subscribe message; eventTypes is left out
// when empty, fromSequence when hasFrom is false.
func AppendSubscribe(dst []byte, room string, eventTypes []string, from uint64, hasFrom bool) []byte {
	dst = append(dst, `{"type":"subscribe","room":`...)
	dst = jsonx.AppendString(dst, room)
	dst = appendTypes(dst, eventTypes)
	if hasFrom {
		dst = append(dst, `,"fromSequence":`...)
		dst = strconv.AppendUint(dst, from, 10)
	}
	return append(dst, '}')
}

func appendTypes(dst []byte, eventTypes []string) []byte {
	if len(eventTypes) == 0 {
		return dst
	}
	dst = append(dst, `,"eventTypes":[`...)
	for i, t := range eventTypes {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonx.AppendString(dst, t)
	}
	return append(dst, ']')
}

// AppendUnsubscribe appends an unsubscribe message.
func AppendUnsubscribe(dst []byte, room string) []byte {
	return appendRoomMsg(dst, TypeUnsubscribe, room)
}

// AppendPublish appends a publish message. Payload and Metadata are
// written as given (nil payload as null; nil metadata, empty id, false
// encrypted and zero TTLMs left out).
func AppendPublish(dst []byte, e *PublishEvent) []byte { return appendPublish(dst, TypePublish, e) }

// AppendPublishEphemeral appends a publish_ephemeral message (only the
// event's type, room and payload count).
func AppendPublishEphemeral(dst []byte, room, typ string, payload []byte) []byte {
	return appendPublish(dst, TypePublishEphemeral, &PublishEvent{Type: typ, Room: room, Payload: payload})
}

// AppendSubscribeEphemeral appends a subscribe_ephemeral message.
func AppendSubscribeEphemeral(dst []byte, room string, eventTypes []string) []byte {
	dst = append(dst, `{"type":"subscribe_ephemeral","room":`...)
	dst = jsonx.AppendString(dst, room)
	dst = appendTypes(dst, eventTypes)
	return append(dst, '}')
}

// AppendUnsubscribeEphemeral appends an unsubscribe_ephemeral message.
func AppendUnsubscribeEphemeral(dst []byte, room string) []byte {
	return appendRoomMsg(dst, TypeUnsubscribeEphemeral, room)
}

// AppendEphemeralReply appends the answer typ (subscribed, unsubscribed
// or ack) to an ephemeral message: {"type":…,"room":…,"ephemeral":true}.
func AppendEphemeralReply(dst []byte, typ, room string) []byte {
	dst = appendRoomMsg(dst, typ, room)
	return append(dst[:len(dst)-1], `,"ephemeral":true}`...)
}

// AppendEphemeralMessage appends {"type":"ephemeral","data":<event>}.
func AppendEphemeralMessage(dst []byte, ev *EphemeralEvent) []byte {
	dst = append(dst, `{"type":"ephemeral","data":`...)
	dst = ev.AppendJSON(dst)
	return append(dst, '}')
}

func appendPublish(dst []byte, typ string, e *PublishEvent) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","event":{`...)
	if e.ID != "" {
		dst = append(dst, `"id":`...)
		dst = jsonx.AppendString(dst, e.ID)
		dst = append(dst, ',')
	}
	dst = append(dst, `"type":`...)
	dst = jsonx.AppendString(dst, e.Type)
	dst = append(dst, `,"room":`...)
	dst = jsonx.AppendString(dst, e.Room)
	dst = append(dst, `,"payload":`...)
	dst = appendRaw(dst, e.Payload)
	if e.Metadata != nil {
		dst = append(dst, `,"metadata":`...)
		dst = append(dst, e.Metadata...)
	}
	if e.Encrypted {
		dst = append(dst, `,"encrypted":true`...)
	}
	if e.TTLMs > 0 {
		dst = append(dst, `,"ttlMs":`...)
		dst = strconv.AppendInt(dst, e.TTLMs, 10)
	}
	return append(dst, "}}"...)
}

// AppendAck appends an ack: the client's acknowledgement, or the server's
// confirmation of it.
func AppendAck(dst []byte, room string, seq uint64) []byte {
	dst = append(dst, `{"type":"ack","room":`...)
	dst = jsonx.AppendString(dst, room)
	dst = append(dst, `,"sequence":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	return append(dst, '}')
}

// AppendPublished appends the server's answer to a publish: an ack with
// the stored event's sequence and id.
func AppendPublished(dst []byte, room string, seq uint64, id string) []byte {
	dst = AppendAck(dst, room, seq)
	dst = append(dst[:len(dst)-1], `,"id":`...)
	dst = jsonx.AppendString(dst, id)
	return append(dst, '}')
}

// AppendReplayRequest appends a replay_request; limit is left out when 0.
func AppendReplayRequest(dst []byte, room string, from uint64, limit int) []byte {
	dst = append(dst, `{"type":"replay_request","room":`...)
	dst = jsonx.AppendString(dst, room)
	dst = append(dst, `,"fromSequence":`...)
	dst = strconv.AppendUint(dst, from, 10)
	if limit > 0 {
		dst = append(dst, `,"limit":`...)
		dst = strconv.AppendInt(dst, int64(limit), 10)
	}
	return append(dst, '}')
}

// AppendReady appends the answer to init.
func AppendReady(dst []byte, subscriberID string) []byte {
	dst = append(dst, `{"type":"ready","subscriberId":`...)
	dst = jsonx.AppendString(dst, subscriberID)
	return append(dst, '}')
}

// AppendSubscribed appends the answer to subscribe.
func AppendSubscribed(dst []byte, room string) []byte {
	return appendRoomMsg(dst, TypeSubscribed, room)
}

// AppendUnsubscribed appends the answer to unsubscribe.
func AppendUnsubscribed(dst []byte, room string) []byte {
	return appendRoomMsg(dst, TypeUnsubscribed, room)
}

func appendRoomMsg(dst []byte, typ, room string) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","room":`...)
	dst = jsonx.AppendString(dst, room)
	return append(dst, '}')
}

// AppendEventMessage appends {"type":"event","data":<envelope>}: what every
// subscriber of the event's room receives, encoded once per node. It
// allocates only to grow dst.
func AppendEventMessage(dst []byte, ev *Event) []byte {
	dst = append(dst, `{"type":"event","data":`...)
	dst = ev.AppendJSON(dst)
	return append(dst, '}')
}

// AppendReplay appends {"type":"replay","room":…,"events":[…]}.
func AppendReplay(dst []byte, room string, events []Event) []byte {
	dst = append(dst, `{"type":"replay","room":`...)
	dst = jsonx.AppendString(dst, room)
	dst = append(dst, `,"events":[`...)
	for i := range events {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = events[i].AppendJSON(dst)
	}
	return append(dst, "]}"...)
}

// AppendError appends {"type":"error","message":…,"code":…}.
func AppendError(dst []byte, message, code string) []byte {
	dst = append(dst, `{"type":"error","message":`...)
	dst = jsonx.AppendString(dst, message)
	dst = append(dst, `,"code":`...)
	dst = jsonx.AppendString(dst, code)
	return append(dst, '}')
}

// ServerMessage is one message from the gateway, decoded (by a client).
// Which fields are set depends on Type.
type ServerMessage struct {
	Type string
	// ready
	SubscriberID string
	// subscribed, unsubscribed, ack, replay
	Room string
	// ack
	Sequence uint64
	ID       string // an ack answering a publish
	// event
	Event Event
	// replay
	Events []Event
	// error
	Message string
	Code    string
	// Ephemeral marks the answer to an ephemeral message.
	Ephemeral bool
	// ephemeral
	EphemeralEvent EphemeralEvent
}

// DecodeServerMessage reads one gateway message into m, replacing all of
// it. Event payloads are slices of b. Unknown members are ignored, and so
// is an unknown type (Type is then set and nothing else), so that a client
// keeps working with a newer server. Errors wrap ErrInvalidMessage.
func DecodeServerMessage(b []byte, m *ServerMessage) error {
	*m = ServerMessage{}
	var it jsonx.ObjectIter
	if !it.Start(b) {
		return fmt.Errorf("%w: not a JSON object", ErrInvalidMessage)
	}
	var data, events []byte
	for it.Next() {
		key, kesc := it.Key()
		val, vesc := it.Value()
		if kesc {
			key = jsonx.AppendUnescaped(nil, key)
		}
		var err error
		switch string(key) {
		case "type":
			m.Type, err = msgStr(val, vesc, "type")
		case "subscriberId":
			m.SubscriberID, err = optStr(val, vesc, "subscriberId")
		case "room":
			m.Room, err = msgStr(val, vesc, "room")
		case "sequence":
			m.Sequence, err = msgUint(val, "sequence")
		case "id":
			m.ID, err = optStr(val, vesc, "id")
		case "message":
			m.Message, err = optStr(val, vesc, "message")
		case "code":
			if len(val) > 0 && val[0] == '"' {
				m.Code, err = msgStr(val, vesc, "code")
			} else {
				m.Code = string(val) // a number, leniently
			}
		case "data":
			data = val
		case "ephemeral":
			m.Ephemeral = string(val) == "true"
		case "events":
			events = val
		}
		if err != nil {
			*m = ServerMessage{}
			return err
		}
	}
	if !it.End() {
		*m = ServerMessage{}
		return fmt.Errorf("%w: malformed JSON", ErrInvalidMessage)
	}
	var err error
	switch m.Type {
	case "":
		err = fmt.Errorf("%w: no type", ErrInvalidMessage)
	case TypeEvent:
		if data == nil {
			err = fmt.Errorf("%w: event without data", ErrInvalidMessage)
		} else if err = DecodeEvent(data, &m.Event); err != nil {
			err = fmt.Errorf("%w: %w", ErrInvalidMessage, err)
		}
	case TypeReplay:
		err = decodeEvents(events, &m.Events)
	case TypeEphemeral:
		if data == nil {
			err = fmt.Errorf("%w: ephemeral without data", ErrInvalidMessage)
		} else if err = DecodeEphemeral(data, &m.EphemeralEvent); err != nil {
			err = fmt.Errorf("%w: %w", ErrInvalidMessage, err)
		}
	}
	if err != nil {
		*m = ServerMessage{}
		return err
	}
	return nil
}

func decodeEvents(b []byte, out *[]Event) error {
	if b == nil || string(b) == "null" {
		return nil
	}
	var raws []json.RawMessage
	if b[0] != '[' || json.Unmarshal(b, &raws) != nil {
		return fmt.Errorf("%w: events is not a list", ErrInvalidMessage)
	}
	evs := make([]Event, len(raws))
	for i, r := range raws {
		if err := DecodeEvent(r, &evs[i]); err != nil {
			return fmt.Errorf("%w: events[%d]: %w", ErrInvalidMessage, i, err)
		}
	}
	*out = evs
	return nil
}
