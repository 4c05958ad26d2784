package realtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/meshfast/meshfast/features/mesh"
)

// Defaults of Options fields.
const (
	// DefaultHeartbeat is the default of SSEOptions.Heartbeat and
	// WebSocketOptions.Heartbeat (the seed API's 30000 ms).
	DefaultHeartbeat = 30 * time.Second
	// DefaultMaxConnections is the default of SSEOptions.MaxConnections
	// and WebSocketOptions.MaxConnections.
	DefaultMaxConnections = 10_000
	// DefaultSSEPath is the default of SSEOptions.Path.
	DefaultSSEPath = "/events"
	// DefaultRetry is the default of SSEOptions.Retry.
	DefaultRetry = 3 * time.Second
	// DefaultMaxChannels is the default of SSEOptions.MaxChannels.
	DefaultMaxChannels = 16
	// DefaultMaxReplay is the default of SSEOptions.MaxReplay.
	DefaultMaxReplay = 1000
	// DefaultMessageCommand is the default of WebSocketOptions.MessageCommand.
	DefaultMessageCommand = "message"
)

// Options configures a Realtime. The zero value works: one node, Mesh on
// "/", Server-Sent Events on DefaultSSEPath.
type Options struct {
	// Mesh configures the Mesh server that is the WebSocket driver (its
	// Authenticate names the user of WebSocket and SSE connections alike).
	Mesh mesh.Options
	// SSE configures the Server-Sent Events driver.
	SSE SSEOptions
	// WebSocket configures the WebSocket driver.
	WebSocket WebSocketOptions
	// History, if set, says how many of a channel's newest messages to
	// keep when ToChannel(name).Broadcast publishes to it, for a channel
	// that Channel did not give a History. Nil keeps none.
	History func(channel string) int
}

// SSEOptions configures the Server-Sent Events driver.
type SSEOptions struct {
	// Path is where streams are opened (HandleSSE's route). Zero means
	// DefaultSSEPath.
	Path string
	// Heartbeat is how often a stream is sent a comment line. Zero means
	// DefaultHeartbeat; negative sends none.
	Heartbeat time.Duration
	// Retry is the reconnection delay a stream asks its client for. Zero
	// means DefaultRetry; negative sends no hint.
	Retry time.Duration
	// MaxConnections caps the node's open streams; past it a request is
	// answered 503. Zero means DefaultMaxConnections; negative means no cap.
	MaxConnections int
	// MaxChannels caps the channels one stream may ask for. Zero means
	// DefaultMaxChannels.
	MaxChannels int
	// MaxReplay is how many of a channel's newest history messages a
	// resuming stream's Last-Event-ID is looked for in. Zero means
	// DefaultMaxReplay.
	MaxReplay int
}

// WebSocketOptions configures the WebSocket driver: Mesh connections.
type WebSocketOptions struct {
	// Heartbeat is the Mesh ping period (Options.Mesh.PingInterval): zero
	// takes Mesh's, itself defaulting to DefaultHeartbeat. Setting both to
	// different values is an error.
	Heartbeat time.Duration
	// MaxConnections caps the node's open WebSocket connections on the
	// Mesh path; past it a handshake is answered 503. Zero means
	// DefaultMaxConnections; negative means no cap.
	MaxConnections int
	// OnMessage, if set, receives the payload of every MessageCommand a
	// client sends (a Mesh client: client.command("message", data)), on
	// the command's goroutine, in the connection's order; the command is
	// answered true once it returns.
	OnMessage func(s *Socket, message json.RawMessage)
	// MessageCommand names the command OnMessage receives. Zero means
	// DefaultMessageCommand.
	MessageCommand string
	// OnClose, if set, runs once for each WebSocket connection that ends,
	// after its shared state is cleaned up.
	OnClose func(s *Socket)
}

// ErrInvalidOptions is wrapped by every error Options.Validate returns.
var ErrInvalidOptions = errors.New("realtime: invalid options")

// Validate reports options New would refuse.
func (o Options) Validate() error {
	if err := o.Mesh.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	if p := o.SSE.Path; p != "" && (!strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?# \t\r\n")) {
		return fmt.Errorf("%w: SSE.Path %q is not a request path", ErrInvalidOptions, p)
	}
	if p := o.SSE.Path; p != "" && p == o.Mesh.Path {
		// Both would be served on it (a WebSocket upgrade and a GET); that
		// works, but is more likely a mistake than a plan.
		return fmt.Errorf("%w: SSE.Path %q is the Mesh path too", ErrInvalidOptions, p)
	}
	if o.SSE.MaxChannels < 0 || o.SSE.MaxReplay < 0 {
		return fmt.Errorf("%w: SSE.MaxChannels and SSE.MaxReplay may not be negative", ErrInvalidOptions)
	}
	if hb, pi := o.WebSocket.Heartbeat, o.Mesh.PingInterval; hb != 0 && pi != 0 && hb != pi {
		return fmt.Errorf("%w: WebSocket.Heartbeat %v and Mesh.PingInterval %v differ (they are one setting)", ErrInvalidOptions, hb, pi)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.SSE.Path == "" {
		o.SSE.Path = DefaultSSEPath
	}
	if o.SSE.Heartbeat == 0 {
		o.SSE.Heartbeat = DefaultHeartbeat
	}
	if o.SSE.Retry == 0 {
		o.SSE.Retry = DefaultRetry
	}
	if o.SSE.MaxConnections == 0 {
		o.SSE.MaxConnections = DefaultMaxConnections
	}
	if o.SSE.MaxChannels == 0 {
		o.SSE.MaxChannels = DefaultMaxChannels
	}
	if o.SSE.MaxReplay == 0 {
		o.SSE.MaxReplay = DefaultMaxReplay
	}
	if o.WebSocket.Heartbeat != 0 && o.Mesh.PingInterval == 0 {
		o.Mesh.PingInterval = o.WebSocket.Heartbeat
	}
	if o.Mesh.PingInterval == 0 {
		o.Mesh.PingInterval = DefaultHeartbeat
	}
	o.WebSocket.Heartbeat = o.Mesh.PingInterval
	if o.WebSocket.MaxConnections == 0 {
		o.WebSocket.MaxConnections = DefaultMaxConnections
	}
	if o.WebSocket.MessageCommand == "" {
		o.WebSocket.MessageCommand = DefaultMessageCommand
	}
	if o.Mesh.Path == "" {
		o.Mesh.Path = mesh.DefaultPath
	}
	return o
}
