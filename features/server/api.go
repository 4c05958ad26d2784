package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/mesh"
	"github.com/meshfast/meshfast/features/realtime"
	"github.com/meshfast/meshfast/perf"
)

// The server HTTP API: how a backend in any language publishes, sends and
// manages connections. Every endpoint is under APIConfig.Prefix, takes and
// answers JSON, and needs one of APIConfig.Keys in "Authorization: Bearer
// KEY" or "X-API-Key: KEY" (compared in constant time). Statuses: 200 with
// the result; 400 for a body or parameter that is wrong (the message names
// the field); 401 without a valid key; 404 for an unknown path or a
// connection no node has; 405 for a method the path does not take (with
// Allow); 413 for a body over the limit; 500 when the coordinator failed
// (the detail is logged, not sent). An error's body is {"error": "…"}.
//
//	POST publish          {"channel", "message"}                   → {"ok": true}
//	POST publish_batch    {"messages": [{"channel", "message"}, …]} → {"published": n}
//	POST publish_event    {"channel", "event", "data"}             → {"ok": true}
//	POST broadcast        {"command", "payload", "exclude": [ids]}  → {"ok": true}
//	POST broadcast_room   {"room", "command", "payload", "exclude"} → {"ok": true}
//	POST send             {"connection_id", "command", "payload"}   → {"ok": true}
//	POST send_user        {"user", "command", "payload"}            → {"ok": true}
//	POST record           {"record_id", "value"}                    → {"ok": true}
//	GET  record           ?record_id=                               → {"record_id", "value", "version"}
//	GET  connection_metadata ?connection_id=                        → {"connection_id", "metadata"}
//	POST connection_metadata {"connection_id", "metadata"}          → {"ok": true}
//	GET  room_metadata    ?room=                                    → {"room", "metadata"}
//	POST room_metadata    {"room", "metadata"}                      → {"ok": true}
//	GET  room_members     ?room=                                    → {"room", "members": [ids]}
//	POST room_join        {"room", "connection_id"}                 → {"ok": true}
//	POST room_leave       {"room", "connection_id"}                 → {"ok": true}
//	GET  presence         ?room=                                    → {"room", "present": [ids], "states": {id: state}}
//	POST disconnect       {"connection_id", "code", "reason"}       → {"ok": true}
//	POST streams/publish, streams/publish_batch, streams/publish_ephemeral: durable and ephemeral events (streams.go)
//
// A channel message is a string: "message" as a JSON string is sent as
// that string, any other JSON value as its JSON text. "payload" is any
// JSON, left out for a push without one. publish_event publishes an event
// of the realtime helpers (features/realtime: Realtime.ToChannel) to a
// channel: Mesh subscribers receive {"event","data","id"}, Server-Sent
// Events streams the event "event" with "data" (any JSON, null if left
// out). Pushes (broadcast, send, send_user) reach a node's streams too, as
// the event named by the command, with the payload as data.
//
// The HTTP handler runs on an event loop, so it only checks the key,
// copies the body and hands the request to a goroutine, which calls the
// Mesh server (and through it the coordinator, a network round trip with
// Redis) and answers through engine.Response.Defer: a loop never waits on
// the coordinator for the API.

// api serves the API for a node.
type api struct {
	n      *Node
	cfg    APIConfig
	keys   [][32]byte // SHA-256 of each key: compared in constant time and constant length
	log    *slog.Logger
	status map[int]*perf.Counter
}

// apiError is an answer other than 200.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &apiError{400, fmt.Sprintf(format, args...)}
}

var errNoConnection = &apiError{404, "no such connection"}

// apiRequest is what an endpoint gets: the body and query, copied off the
// loop's buffer.
type apiRequest struct {
	body  []byte
	query url.Values
}

type endpoint struct {
	path   string
	method string
	fn     func(a *api, ctx context.Context, r *apiRequest) (any, error)
}

var endpoints = []endpoint{
	{"publish", "POST", (*api).publish},
	{"publish_batch", "POST", (*api).publishBatch},
	{"publish_event", "POST", (*api).publishEvent},
	{"broadcast", "POST", (*api).broadcast},
	{"broadcast_room", "POST", (*api).broadcastRoom},
	{"send", "POST", (*api).send},
	{"send_user", "POST", (*api).sendUser},
	{"record", "POST", (*api).setRecord},
	{"record", "GET", (*api).getRecord},
	{"connection_metadata", "GET", (*api).getConnMeta},
	{"connection_metadata", "POST", (*api).setConnMeta},
	{"room_metadata", "GET", (*api).getRoomMeta},
	{"room_metadata", "POST", (*api).setRoomMeta},
	{"room_members", "GET", (*api).roomMembers},
	{"room_join", "POST", (*api).roomJoin},
	{"room_leave", "POST", (*api).roomLeave},
	{"presence", "GET", (*api).presence},
	{"disconnect", "POST", (*api).disconnect},
}

func newAPI(n *Node, cfg APIConfig, reg *perf.Metrics, log *slog.Logger) *api {
	a := &api{n: n, cfg: cfg.withDefaults(), log: log, status: make(map[int]*perf.Counter)}
	for _, k := range cfg.Keys {
		a.keys = append(a.keys, sha256.Sum256([]byte(k)))
	}
	for _, s := range []int{200, 400, 401, 403, 404, 413, 500} {
		a.status[s] = reg.Counter("meshfast_api_requests_total", "Server API requests by the status answered.",
			perf.Label{Name: "status", Value: strconv.Itoa(s)})
	}
	return a
}

// register adds the API's routes to e, whose body limit is maxBody.
func (a *api) register(e *engine.Engine) {
	byPath := map[string][]endpoint{}
	var order []string
	for _, ep := range append(slices.Clip(endpoints), streamEndpoints...) {
		if byPath[ep.path] == nil {
			order = append(order, ep.path)
		}
		byPath[ep.path] = append(byPath[ep.path], ep)
	}
	for _, p := range order {
		eps := byPath[p]
		var methods []string
		for _, ep := range eps {
			methods = append(methods, ep.method)
		}
		e.HandleHTTPMethods(a.cfg.Prefix+"/"+p, func(w *engine.Response, r *engine.Request) { a.serve(w, r, eps) }, methods...)
	}
}

// authorized reports whether the request carries one of the keys. Every
// key is compared, each in constant time over its hash.
func (a *api) authorized(r *engine.Request) bool {
	var key []byte
	if h := r.Header("Authorization"); h != nil {
		scheme, rest, ok := strings.Cut(string(h), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return false
		}
		key = []byte(strings.TrimSpace(rest))
	} else {
		key = r.Header("X-API-Key")
	}
	if len(key) == 0 {
		return false
	}
	sum := sha256.Sum256(key)
	ok := 0
	for i := range a.keys {
		ok |= subtle.ConstantTimeCompare(sum[:], a.keys[i][:])
	}
	return ok == 1
}

// serve is the engine handler of one path. Loop only: it decides what it
// can without waiting and defers the rest.
func (a *api) serve(w *engine.Response, r *engine.Request, eps []endpoint) {
	if !a.authorized(r) {
		a.answer(w, nil, &apiError{401, "a valid API key is required (Authorization: Bearer KEY, or X-API-Key: KEY)"},
			`WWW-Authenticate: Bearer realm="meshfast-api"`)
		return
	}
	if len(r.Body) > a.cfg.MaxBodySize {
		a.answer(w, nil, &apiError{413, fmt.Sprintf("the body is over %d bytes", a.cfg.MaxBodySize)})
		return
	}
	var ep endpoint
	for _, e := range eps {
		if string(r.Method) == e.method || (e.method == "GET" && string(r.Method) == "HEAD") {
			ep = e
		}
	}
	query, err := url.ParseQuery(string(r.Query))
	if err != nil {
		a.answer(w, nil, badRequest("the query string: %v", err))
		return
	}
	req := &apiRequest{body: append([]byte(nil), r.Body...), query: query}
	d := w.Defer()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), a.n.coordTimeout)
		defer cancel()
		var out engine.Response
		res, err := ep.fn(a, ctx, req)
		a.answer(&out, res, err)
		d.Respond(out)
	}()
}

// answer writes res, or err's status and message, as JSON on w.
func (a *api) answer(w *engine.Response, res any, err error, headers ...string) {
	w.ContentType = "application/json"
	w.Headers = headers
	status := 200
	if err != nil {
		var ae *apiError
		switch {
		case errors.As(err, &ae):
			status = ae.status
		case errors.Is(err, mesh.ErrConnectionNotFound):
			status, ae = 404, errNoConnection
		default:
			a.log.Warn("api: request failed", "err", err)
			status, ae = 500, &apiError{500, "the server could not complete the request"}
		}
		res = map[string]any{"error": ae.msg}
		if p, ok := err.(*partialError); ok {
			res = map[string]any{"error": ae.msg, "published": p.done}
		}
	}
	if res == nil {
		res = map[string]bool{"ok": true}
	}
	b, merr := json.Marshal(res)
	if merr != nil {
		status, b = 500, []byte(`{"error":"the server could not encode the answer"}`)
	}
	w.Status, w.Body = status, append(b, '\n')
	if c := a.status[status]; c != nil {
		c.Inc()
	}
}

// decode reads a request's JSON object into v, refusing unknown fields.
func decode(r *apiRequest, v any) error {
	if len(r.body) == 0 {
		return badRequest("a JSON object body is required")
	}
	dec := json.NewDecoder(strings.NewReader(string(r.body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return badRequest("%q: expected %s", te.Field, te.Type)
		}
		return badRequest("the body: %v", err)
	}
	if dec.More() {
		return badRequest("the body: one JSON object, nothing after it")
	}
	return nil
}

// required refuses empty fields, named.
func required(fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i+1] == "" {
			return badRequest("%q is required", fields[i])
		}
	}
	return nil
}

// pushPayload is a push's payload: nil (none) when left out.
func pushPayload(p json.RawMessage) any {
	if p == nil {
		return nil
	}
	return p
}

// channelMessage is a channel message from the "message" member.
func channelMessage(m json.RawMessage) (string, error) {
	if m == nil {
		return "", badRequest(`"message" is required`)
	}
	var s string
	if json.Unmarshal(m, &s) == nil {
		return s, nil
	}
	return string(m), nil
}

type publishReq struct {
	Channel string          `json:"channel"`
	Message json.RawMessage `json:"message"`
}

func (p publishReq) check() (string, error) {
	if err := required("channel", p.Channel); err != nil {
		return "", err
	}
	if strings.HasPrefix(p.Channel, "mesh:") {
		return "", badRequest(`"channel": the mesh: prefix is reserved`)
	}
	return channelMessage(p.Message)
}

func (a *api) publish(ctx context.Context, r *apiRequest) (any, error) {
	var req publishReq
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	msg, err := req.check()
	if err != nil {
		return nil, err
	}
	return nil, a.n.PublishToChannel(ctx, req.Channel, msg)
}

// partialError is a batch that failed after publishing some.
type partialError struct {
	err  error
	done int
}

func (e *partialError) Error() string { return e.err.Error() }
func (e *partialError) Unwrap() error { return e.err }

func (a *api) publishBatch(ctx context.Context, r *apiRequest) (any, error) {
	var req struct {
		Messages []publishReq `json:"messages"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if len(req.Messages) == 0 {
		return nil, badRequest(`"messages": a list of at least one {"channel", "message"}`)
	}
	msgs := make([]string, len(req.Messages))
	for i, m := range req.Messages {
		s, err := m.check()
		if err != nil {
			return nil, badRequest("messages[%d]: %s", i, err.Error())
		}
		msgs[i] = s
	}
	// In order, each after the one before: a channel's messages keep the
	// batch's order, for its subscribers and in its history.
	for i, m := range req.Messages {
		if err := a.n.PublishToChannel(ctx, m.Channel, msgs[i]); err != nil {
			return nil, &partialError{err: err, done: i}
		}
	}
	return map[string]int{"published": len(req.Messages)}, nil
}

func (a *api) publishEvent(ctx context.Context, r *apiRequest) (any, error) {
	var req struct {
		Channel string          `json:"channel"`
		Event   string          `json:"event"`
		Data    json.RawMessage `json:"data"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := required("channel", req.Channel); err != nil {
		return nil, err
	}
	if strings.HasPrefix(req.Channel, "mesh:") {
		return nil, badRequest(`"channel": the mesh: prefix is reserved`)
	}
	if engine.CheckSSEEvent(req.Event) != nil {
		return nil, badRequest(`"event": a name without CR or LF`)
	}
	return nil, a.n.Realtime.ToChannel(req.Channel).Broadcast(ctx, realtime.Event{Event: req.Event, Data: req.Data})
}

type pushReq struct {
	Command string          `json:"command"`
	Payload json.RawMessage `json:"payload"`
	Exclude []string        `json:"exclude"`
}

func (a *api) broadcast(ctx context.Context, r *apiRequest) (any, error) {
	var req pushReq
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := required("command", req.Command); err != nil {
		return nil, err
	}
	return nil, a.n.Mesh.BroadcastExclude(ctx, req.Command, pushPayload(req.Payload), req.Exclude)
}

func (a *api) broadcastRoom(ctx context.Context, r *apiRequest) (any, error) {
	var req struct {
		pushReq
		Room string `json:"room"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := required("room", req.Room, "command", req.Command); err != nil {
		return nil, err
	}
	return nil, a.n.Mesh.BroadcastRoomExclude(ctx, req.Room, req.Command, pushPayload(req.Payload), req.Exclude)
}

// known refuses a connection no node has registered.
func (a *api) known(ctx context.Context, connID string) error {
	_, err := a.n.Mesh.Coordinator().ConnectionNode(ctx, connID)
	if errors.Is(err, coord.ErrNotFound) {
		return errNoConnection
	}
	return err
}

func (a *api) send(ctx context.Context, r *apiRequest) (any, error) {
	var req struct {
		ConnectionID string          `json:"connection_id"`
		Command      string          `json:"command"`
		Payload      json.RawMessage `json:"payload"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := required("connection_id", req.ConnectionID, "command", req.Command); err != nil {
		return nil, err
	}
	if err := a.known(ctx, req.ConnectionID); err != nil {
		return nil, err
	}
	return nil, a.n.Mesh.Broadcast(ctx, req.Command, pushPayload(req.Payload), req.ConnectionID)
}

func (a *api) sendUser(ctx context.Context, r *apiRequest) (any, error) {
	var req struct {
		User    string          `json:"user"`
		Command string          `json:"command"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := required("user", req.User, "command", req.Command); err != nil {
		return nil, err
	}
	return nil, a.n.Mesh.SendToUser(ctx, req.User, req.Command, pushPayload(req.Payload))
}

func (a *api) setRecord(ctx context.Context, r *apiRequest) (any, error) {
	var req struct {
		RecordID string          `json:"record_id"`
		Value    json.RawMessage `json:"value"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := required("record_id", req.RecordID); err != nil {
		return nil, err
	}
	if req.Value == nil {
		return nil, badRequest(`"value" is required (null for null)`)
	}
	return nil, a.n.Mesh.PublishRecordUpdate(ctx, req.RecordID, req.Value)
}

// param is a required query parameter.
func param(r *apiRequest, name string) (string, error) {
	v := r.query.Get(name)
	if v == "" {
		return "", badRequest("the query parameter %q is required", name)
	}
	return v, nil
}

// jsonOrNull is raw, or null for nothing.
func jsonOrNull(raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return json.RawMessage("null")
	}
	return raw
}

func (a *api) getRecord(ctx context.Context, r *apiRequest) (any, error) {
	id, err := param(r, "record_id")
	if err != nil {
		return nil, err
	}
	v, version, err := a.n.Mesh.Record(ctx, id)
	if err != nil {
		return nil, err
	}
	return map[string]any{"record_id": id, "value": jsonOrNull(v), "version": version}, nil
}

func (a *api) getConnMeta(ctx context.Context, r *apiRequest) (any, error) {
	id, err := param(r, "connection_id")
	if err != nil {
		return nil, err
	}
	if err := a.known(ctx, id); err != nil {
		return nil, err
	}
	m, err := a.n.Mesh.ConnectionMetadata(ctx, id)
	if err != nil {
		return nil, err
	}
	return map[string]any{"connection_id": id, "metadata": jsonOrNull(m)}, nil
}

func (a *api) setConnMeta(ctx context.Context, r *apiRequest) (any, error) {
	var req struct {
		ConnectionID string          `json:"connection_id"`
		Metadata     json.RawMessage `json:"metadata"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := required("connection_id", req.ConnectionID); err != nil {
		return nil, err
	}
	if err := a.known(ctx, req.ConnectionID); err != nil {
		return nil, err
	}
	return nil, a.n.Mesh.SetConnectionMetadata(ctx, req.ConnectionID, jsonOrNull(req.Metadata))
}

func (a *api) getRoomMeta(ctx context.Context, r *apiRequest) (any, error) {
	room, err := param(r, "room")
	if err != nil {
		return nil, err
	}
	m, err := a.n.Mesh.RoomMetadata(ctx, room)
	if err != nil {
		return nil, err
	}
	return map[string]any{"room": room, "metadata": jsonOrNull(m)}, nil
}

func (a *api) setRoomMeta(ctx context.Context, r *apiRequest) (any, error) {
	var req struct {
		Room     string          `json:"room"`
		Metadata json.RawMessage `json:"metadata"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := required("room", req.Room); err != nil {
		return nil, err
	}
	return nil, a.n.Mesh.SetRoomMetadata(ctx, req.Room, jsonOrNull(req.Metadata))
}

func (a *api) roomMembers(ctx context.Context, r *apiRequest) (any, error) {
	room, err := param(r, "room")
	if err != nil {
		return nil, err
	}
	m, err := a.n.Mesh.RoomMembers(ctx, room)
	if err != nil {
		return nil, err
	}
	if m == nil {
		m = []string{}
	}
	return map[string]any{"room": room, "members": m}, nil
}

type roomConnReq struct {
	Room         string `json:"room"`
	ConnectionID string `json:"connection_id"`
}

func (a *api) roomConn(ctx context.Context, r *apiRequest) (roomConnReq, error) {
	var req roomConnReq
	if err := decode(r, &req); err != nil {
		return req, err
	}
	if err := required("room", req.Room, "connection_id", req.ConnectionID); err != nil {
		return req, err
	}
	return req, a.known(ctx, req.ConnectionID)
}

func (a *api) roomJoin(ctx context.Context, r *apiRequest) (any, error) {
	req, err := a.roomConn(ctx, r)
	if err != nil {
		return nil, err
	}
	return nil, a.n.Mesh.AddToRoom(ctx, req.Room, req.ConnectionID)
}

func (a *api) roomLeave(ctx context.Context, r *apiRequest) (any, error) {
	req, err := a.roomConn(ctx, r)
	if err != nil {
		return nil, err
	}
	return nil, a.n.Mesh.RemoveFromRoom(ctx, req.Room, req.ConnectionID)
}

func (a *api) presence(ctx context.Context, r *apiRequest) (any, error) {
	room, err := param(r, "room")
	if err != nil {
		return nil, err
	}
	present, err := a.n.Mesh.PresentConnections(ctx, room)
	if err != nil {
		return nil, err
	}
	states, err := a.n.Mesh.PresenceStates(ctx, room)
	if err != nil {
		return nil, err
	}
	if present == nil {
		present = []string{}
	}
	if states == nil {
		states = map[string]json.RawMessage{}
	}
	return map[string]any{"room": room, "present": present, "states": states}, nil
}

func (a *api) disconnect(ctx context.Context, r *apiRequest) (any, error) {
	var req struct {
		ConnectionID string `json:"connection_id"`
		Code         int    `json:"code"`
		Reason       string `json:"reason"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := required("connection_id", req.ConnectionID); err != nil {
		return nil, err
	}
	if req.Code != 0 && (req.Code < 3000 || req.Code > 4999) && req.Code != 1000 {
		return nil, badRequest(`"code": 1000, or 3000 to 4999`)
	}
	return nil, a.n.Mesh.Disconnect(ctx, req.ConnectionID, engine.CloseCode(req.Code), req.Reason)
}
