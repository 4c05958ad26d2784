package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/mesh"
	"github.com/meshfast/meshfast/internal/ratelog"
	"github.com/meshfast/meshfast/perf"
	"github.com/meshfast/meshfast/protocol"
)

// The proxies to a backend over HTTP: a command no Go handler is
// registered for (ProxyConfig.CommandURL), and a new connection to
// authenticate (ProxyConfig.ConnectURL).
//
// A proxied command runs as the command's handler (mesh.ExposeFallback), on
// the connection's command goroutine, never on an event loop; the
// connection's commands run one after another in arrival order, so its
// proxied commands reach the backend, and their replies the client, in the
// order it sent them. A connect call runs in mesh.Identity.Verify, on a
// goroutine of its own after the upgrade; the connection's commands wait
// for it.
//
// Every call to the backend, of either kind, takes one of
// ProxyConfig.MaxConcurrency slots for the node, and waits for one within
// ProxyConfig.Timeout, which bounds the whole call.
//
// The command call: POST CommandURL, Content-Type application/json,
//
//	{"command": "chat/send", "payload": <the command's payload, or null>,
//	 "connection_id": "conn-…", "user": "<its user id, or empty>",
//	 "metadata": <its Mesh metadata, or null>, "node": "<node id>"}
//
// and the backend answers 200 with one of
//
//	{"result": <any JSON: the command's reply; left out: no payload>}
//	{"error": {"message": "…", "code": "ENOPE", "name": "NopeError"}}
//
// The error becomes Mesh's error reply {"error": message, "code": code,
// "name": name} (code defaults to ESERVER, name to CodeError, as a
// CodeError's). Anything else (another status, a body that is not one of
// these, a backend down) is answered with code EUNAVAILABLE, a call past
// Timeout with ETIMEOUT, one that found no slot in time with EBUSY; the
// cause is logged, not sent.
//
// The connect call: POST ConnectURL with
//
//	{"remote_addr": "…", "path": "/", "query": "…", "headers": {"Authorization": "…", …}}
//
// (headers: Authorization, Cookie, Origin, User-Agent, X-Forwarded-For,
// X-Real-Ip, those present), and the backend answers 200 with
//
//	{"user": "<user id>", "metadata": <any JSON>, "allow": <Permissions>}
//
// every member optional ({} accepts an anonymous connection), or refuses:
//
//	{"refuse": {"code": 4003, "reason": "banned"}}
//
// The connection is then closed with that code (4000 to 4999; 4003 if left
// out) and reason. A backend that cannot answer, or not within Timeout,
// closes it with 1013 (try again later); one still not answered when
// mesh.Options.AuthTimeout (auth_timeout) ends, with 1008 as any
// authentication not done in time.

// Error codes of proxied commands the backend did not choose.
const (
	// CodeUnavailable: the backend could not give an answer.
	CodeUnavailable = "EUNAVAILABLE"
)

var (
	errBackendDown    = protocol.NewCodeError("the backend could not answer", CodeUnavailable, "BackendError")
	errBackendTimeout = protocol.NewCodeError("the backend did not answer in time", protocol.CodeTimeout, "BackendError")
	errBackendBusy    = protocol.NewCodeError("too many calls to the backend", "EBUSY", "BackendError")
	errConnectDown    = &mesh.CloseError{Code: engine.CloseTryAgainLater, Reason: "authentication unavailable, try again later"}
)

// connectHeaders are the request headers a connect call passes on.
var connectHeaders = []string{"Authorization", "Cookie", "Origin", "User-Agent", "X-Forwarded-For", "X-Real-Ip"}

// proxy calls the backend for one node.
type proxy struct {
	cfg    ProxyConfig
	client *http.Client
	slots  chan struct{}
	node   *Node
	log    *slog.Logger
	errLog ratelog.Limiter // a backend down fails every call: a line per interval

	calls map[string]*perf.Counter // by outcome
}

// proxy outcomes, as meshfast_proxy_calls_total labels them.
const (
	outcomeOK      = "ok"
	outcomeError   = "error" // the backend's own error answer, or a refusal
	outcomeFailed  = "failed"
	outcomeTimeout = "timeout"
	outcomeBusy    = "busy"
)

func newProxy(n *Node, cfg ProxyConfig, reg *perf.Metrics, log *slog.Logger) *proxy {
	cfg = cfg.withDefaults()
	p := &proxy{
		cfg:   cfg,
		node:  n,
		log:   log,
		slots: make(chan struct{}, cfg.MaxConcurrency),
		client: &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: cfg.MaxConcurrency,
			MaxConnsPerHost:     cfg.MaxConcurrency,
			IdleConnTimeout:     90 * time.Second,
		}},
		calls: make(map[string]*perf.Counter),
	}
	for _, kind := range []string{"command", "connect"} {
		for _, o := range []string{outcomeOK, outcomeError, outcomeFailed, outcomeTimeout, outcomeBusy} {
			p.calls[kind+"/"+o] = reg.Counter("meshfast_proxy_calls_total", "Calls to the backend by kind and outcome.",
				perf.Label{Name: "kind", Value: kind}, perf.Label{Name: "outcome", Value: o})
		}
	}
	reg.GaugeFunc("meshfast_proxy_inflight", "Calls to the backend in progress.", func() float64 { return float64(len(p.slots)) })
	return p
}

func (p *proxy) count(kind, outcome string) { p.calls[kind+"/"+outcome].Inc() }

// post sends body to url within ctx, holding a slot, and decodes a 200
// answer's JSON into out. Its error says which outcome it was.
func (p *proxy) post(ctx context.Context, url string, body any, out any) error {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return errSlot
	}
	defer func() { <-p.slots }()
	if ctx.Err() != nil {
		return errSlot // the slot came free as the call's time ran out: no doomed request
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, DefaultProxyMaxResponseSize+1))
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("backend answered %s", resp.Status)
	}
	if len(data) > DefaultProxyMaxResponseSize {
		return fmt.Errorf("backend's answer over %d bytes", DefaultProxyMaxResponseSize)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("backend's answer: %w", err)
	}
	return nil
}

var errSlot = errors.New("no free slot for a backend call in time")

// outcome classifies a failed call.
func outcome(ctx context.Context, err error) string {
	switch {
	case errors.Is(err, errSlot):
		return outcomeBusy
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return outcomeTimeout
	}
	return outcomeFailed
}

func (p *proxy) logFailure(msg string, args ...any) {
	if ok, more := p.errLog.Allow(); ok {
		if more > 0 {
			args = append(args, "more_failed_since_last_line", more)
		}
		p.log.Warn(msg, args...)
	}
}

type commandCall struct {
	Command      string          `json:"command"`
	Payload      json.RawMessage `json:"payload"`
	ConnectionID string          `json:"connection_id"`
	User         string          `json:"user"`
	Metadata     json.RawMessage `json:"metadata"`
	Node         string          `json:"node"`
}

type commandAnswer struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
		Code    string `json:"code"`
		Name    string `json:"name"`
	} `json:"error"`
}

// command is the fallback handler: it forwards the command to the backend.
func (p *proxy) command(c *mesh.Context) (any, error) {
	ctx, cancel := context.WithTimeout(c, p.cfg.Timeout)
	defer cancel()
	call := commandCall{Command: c.Command, Payload: c.Payload, ConnectionID: c.Conn.ID(), User: c.Conn.User(), Node: p.node.Mesh.NodeID()}
	if call.Payload == nil {
		call.Payload = json.RawMessage("null")
	}
	meta, err := p.node.Mesh.ConnectionMetadata(ctx, c.Conn.ID())
	if err != nil {
		p.log.Warn("proxy: reading a connection's metadata failed", "conn", c.Conn.ID(), "err", err)
		return nil, errBackendDown
	}
	call.Metadata = meta
	if call.Metadata == nil {
		call.Metadata = json.RawMessage("null")
	}
	var ans commandAnswer
	if err := p.post(ctx, p.cfg.CommandURL, call, &ans); err != nil {
		o := outcome(ctx, err)
		p.count("command", o)
		p.logFailure("proxy: command call failed", "command", c.Command, "conn", c.Conn.ID(), "outcome", o, "err", err)
		switch o {
		case outcomeBusy:
			return nil, errBackendBusy
		case outcomeTimeout:
			return nil, errBackendTimeout
		}
		return nil, errBackendDown
	}
	if ans.Error != nil {
		p.count("command", outcomeError)
		msg := ans.Error.Message
		if msg == "" {
			msg = "error"
		}
		return nil, protocol.NewCodeError(msg, ans.Error.Code, ans.Error.Name)
	}
	p.count("command", outcomeOK)
	if len(ans.Result) == 0 {
		return nil, nil // left out: no payload, as a handler's nil
	}
	return ans.Result, nil
}

type connectCall struct {
	RemoteAddr string            `json:"remote_addr"`
	Path       string            `json:"path"`
	Query      string            `json:"query"`
	Headers    map[string]string `json:"headers"`
}

type connectAnswer struct {
	User     string          `json:"user"`
	Metadata json.RawMessage `json:"metadata"`
	Allow    json.RawMessage `json:"allow"`
	Refuse   *struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	} `json:"refuse"`
}

// authenticate is mesh.Options.Authenticate with a connect proxy: it
// captures what the backend needs from the request (gone by the time
// Verify runs) and leaves the call to Verify. Loop only.
func (p *proxy) authenticate(r *engine.Request) (mesh.Identity, error) {
	call := connectCall{Path: string(r.Path), Query: string(r.Query), Headers: map[string]string{}}
	if c := r.Conn(); c != nil && c.RemoteAddr() != nil {
		call.RemoteAddr = c.RemoteAddr().String()
	}
	for _, h := range connectHeaders {
		if v := r.Header(h); v != nil {
			call.Headers[h] = string(v)
		}
	}
	return mesh.Identity{Verify: func(ctx context.Context) (mesh.Identity, error) { return p.connect(ctx, call) }}, nil
}

// connect asks the backend about a connection. It runs in Verify, whose
// context ends at mesh.Options.AuthTimeout; the proxy's own Timeout applies
// too.
func (p *proxy) connect(verify context.Context, call connectCall) (mesh.Identity, error) {
	ctx, cancel := context.WithTimeout(verify, p.cfg.Timeout)
	defer cancel()
	var ans connectAnswer
	if err := p.post(ctx, p.cfg.ConnectURL, call, &ans); err != nil {
		o := outcome(ctx, err)
		p.count("connect", o)
		p.logFailure("proxy: connect call failed", "remote", call.RemoteAddr, "outcome", o, "err", err)
		if verify.Err() != nil {
			// auth_timeout, or the client gone: mesh closes with 1008 as
			// for any authentication not done in time.
			return mesh.Identity{}, verify.Err()
		}
		return mesh.Identity{}, fmt.Errorf("%w: %w", errConnectDown, err)
	}
	if ans.Refuse != nil {
		p.count("connect", outcomeError)
		code := engine.CloseCode(ans.Refuse.Code)
		if code == 0 {
			code = 4003
		}
		if code < 4000 || code > 4999 {
			return mesh.Identity{}, fmt.Errorf("%w: the backend refused with close code %d, not 4000 to 4999", errConnectDown, code)
		}
		return mesh.Identity{}, &mesh.CloseError{Code: code, Reason: ans.Refuse.Reason}
	}
	perms, err := parsePermissions(ans.Allow)
	if err != nil {
		p.count("connect", outcomeFailed)
		return mesh.Identity{}, fmt.Errorf("%w: the backend's answer: %w", errConnectDown, err)
	}
	p.count("connect", outcomeOK)
	id := mesh.Identity{User: ans.User, Claims: &connIdentity{Perms: perms}}
	if len(ans.Metadata) > 0 && string(ans.Metadata) != "null" {
		id.Metadata = ans.Metadata
	}
	return id, nil
}
