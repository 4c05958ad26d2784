package server

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/mesh"
	"github.com/meshfast/meshfast/features/realtime"
	"github.com/meshfast/meshfast/protocol/zps"
)

// Defaults of the Settings fields that are not a Config's.
const (
	// DefaultShutdownTimeout is the default of Settings.ShutdownTimeout.
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultLogFormat is the default of LogSettings.Format.
	DefaultLogFormat = LogText
	// DefaultLogLevel is the default of LogSettings.Level.
	DefaultLogLevel = slog.LevelInfo
)

// Settings is everything a meshfast configuration sets: the node's Config
// and what the program around it needs (how long a shutdown waits, how it
// logs). The configuration file, the environment and the flags write it
// through a Loader; keys.go lists its keys.
//
// Its zero value is not the binary's default (the engine's zero ReusePort
// is off, the binary's on): start from DefaultSettings.
type Settings struct {
	// Node is the node's configuration, passed to Start.
	Node Config
	// ShutdownTimeout bounds how long a shutdown waits for clients after
	// sending them 1001; more than zero (DefaultShutdownTimeout in
	// DefaultSettings).
	ShutdownTimeout time.Duration
	// Log says how the program logs.
	Log LogSettings
}

// DefaultSettings returns the settings of a meshfast binary given no
// configuration: every value concrete, so that -print-config shows what
// runs rather than zeros.
func DefaultSettings() Settings {
	return Settings{
		Node: Config{
			Engine: engine.Options{
				Addr:             engine.DefaultAddr,
				ReusePort:        true,
				MaxMessageSize:   engine.DefaultMaxMessageSize,
				MaxPendingBytes:  engine.DefaultMaxPendingBytes,
				MaxHeaderBytes:   engine.DefaultMaxHeaderBytes,
				HandshakeTimeout: engine.DefaultHandshakeTimeout,
				IdleTimeout:      -1, // Mesh's ping/pong is the liveness check (Start's default too)
			},
			Mesh: mesh.Options{
				Path:              mesh.DefaultPath,
				PingInterval:      mesh.DefaultPingInterval,
				LatencyInterval:   mesh.DefaultLatencyInterval,
				MaxMissedPongs:    mesh.DefaultMaxMissedPongs,
				MaxQueuedCommands: mesh.DefaultMaxQueuedCommands,
				MaxQueuedBytes:    mesh.DefaultMaxQueuedBytes,
				MaxInFlight:       mesh.DefaultMaxInFlight,
				AuthTimeout:       mesh.DefaultAuthTimeout,
				NodeTTL:           mesh.DefaultNodeTTL,
			},
			API:   APIConfig{Prefix: DefaultAPIPrefix, MaxBodySize: DefaultAPIMaxBodySize},
			JWT:   JWTConfig{QueryParam: DefaultJWTQueryParam},
			Proxy: ProxyConfig{Timeout: DefaultProxyTimeout, MaxConcurrency: DefaultProxyMaxConcurrency},
			SSE: realtime.SSEOptions{
				Path:      realtime.DefaultSSEPath,
				Heartbeat: realtime.DefaultHeartbeat,
				Retry:     realtime.DefaultRetry,
			},
			Streams: defaultStreams(),
		},
		ShutdownTimeout: DefaultShutdownTimeout,
		Log:             LogSettings{Format: DefaultLogFormat, Level: DefaultLogLevel},
	}
}

// Validate reports settings the node or the program would refuse.
func (s Settings) Validate() error {
	if err := s.Node.Validate(); err != nil {
		return err
	}
	if s.ShutdownTimeout <= 0 {
		return fmt.Errorf("%w: shutdown timeout %v is not more than 0", ErrInvalidConfig, s.ShutdownTimeout)
	}
	return s.Log.validate()
}

// LogFormat is how log lines are written.
type LogFormat string

// Log formats.
const (
	// LogText is slog's key=value text.
	LogText LogFormat = "text"
	// LogJSON is one JSON object per line.
	LogJSON LogFormat = "json"
)

// LogSettings says how the program logs: through log/slog, in Format, the
// lines at Level and above.
type LogSettings struct {
	// Format is the line format. Zero means DefaultLogFormat.
	Format LogFormat
	// Level is the least severe level written. Zero is slog.LevelInfo,
	// DefaultLogLevel.
	Level slog.Level
}

func (l LogSettings) validate() error {
	switch l.Format {
	case "", LogText, LogJSON:
		return nil
	}
	return fmt.Errorf("%w: log format %q is neither %q nor %q", ErrInvalidConfig, l.Format, LogText, LogJSON)
}

// Exposures say which channels, records and presence rooms clients may
// use, by exact name or regular expression (Go's RE2 syntax, matched
// anywhere in the name as Mesh's RegExp.test does: anchor it with ^ and $).
// For each kind, an exact name wins over patterns and the first matching
// pattern wins over later ones, as in Mesh. Start exposes them, without
// guards, on the node's Mesh server; a program may add more (with guards)
// through Node.Mesh.
type Exposures struct {
	// Channels clients may subscribe to, each with its history.
	Channels []ChannelExposure
	// Records clients may subscribe to.
	Records []Exposure
	// WritableRecords clients may write (mesh/publish-record-update) and,
	// as in Mesh, read.
	WritableRecords []Exposure
	// Presence lists the rooms whose presence is tracked, each with its TTL.
	Presence []PresenceExposure
	// Rooms lists the rooms clients may join (mesh/join-room) when
	// mesh.Options.Private is set; without it every room may be joined, as
	// in Mesh, and the list only carries the permissions' check, which
	// every room gets anyway.
	Rooms []Exposure
}

// Exposure names a channel, record or room, or a pattern of them: exactly
// one of Name and Pattern is set.
type Exposure struct {
	Name    string
	Pattern *regexp.Regexp
}

// String is the name, or the pattern between slashes.
func (x Exposure) String() string {
	if x.Pattern != nil {
		return "/" + x.Pattern.String() + "/"
	}
	return fmt.Sprintf("%q", x.Name)
}

// errNameOrPattern refuses an exposure with neither or both.
var errNameOrPattern = errors.New("needs a name or a pattern, and not both")

func (x Exposure) validate() error {
	if (x.Name == "") == (x.Pattern == nil) {
		return errNameOrPattern
	}
	return nil
}

// ChannelExposure is an exposed channel or pattern of channels.
type ChannelExposure struct {
	Exposure
	// History is how many of the channel's newest messages are kept, and
	// the most a subscriber gets back however many it asks for: every
	// publish made through the node (Node.PublishToChannel) keeps History
	// messages, and a client's historyLimit is lowered to it. Zero keeps
	// none and gives subscribers none.
	History int
	// Durable keeps the channel in a durable stream (mesh.
	// ExposeDurableChannel): every message is stored with the channel's
	// next sequence before it is delivered, on the node's Redis when it
	// has one, so that meshfast's Go client resumes it after a reconnect
	// with nothing lost or repeated; Mesh clients see Mesh's frames. Its
	// name, or every name its pattern matches, must be scope:resourceId.
	// History then bounds what a subscriber gets back, from the stream,
	// whose retention (a day) decides what is kept.
	Durable bool
}

// PresenceExposure is a room, or pattern of rooms, whose presence is
// tracked.
type PresenceExposure struct {
	Exposure
	// TTL is how long a connection stays present without a pong; keep it
	// above the ping interval. Zero means mesh.DefaultPresenceTTL.
	TTL time.Duration
}

func (e Exposures) validate() error {
	for _, c := range e.Channels {
		if err := c.validate(); err != nil {
			return fmt.Errorf("%w: a channel exposure %w", ErrInvalidConfig, err)
		}
		if c.History < 0 {
			return fmt.Errorf("%w: channel %s: negative history", ErrInvalidConfig, c.Exposure)
		}
		if c.Durable && c.Pattern == nil && !zps.ValidRoom(c.Name) {
			return fmt.Errorf("%w: durable channel %s: its name must be scope:resourceId", ErrInvalidConfig, c.Exposure)
		}
	}
	for _, list := range []struct {
		kind string
		l    []Exposure
	}{{"record", e.Records}, {"record", e.WritableRecords}, {"room", e.Rooms}} {
		for _, r := range list.l {
			if err := r.validate(); err != nil {
				return fmt.Errorf("%w: a %s exposure %w", ErrInvalidConfig, list.kind, err)
			}
		}
	}
	for _, p := range e.Presence {
		if err := p.validate(); err != nil {
			return fmt.Errorf("%w: a presence exposure %w", ErrInvalidConfig, err)
		}
		if p.TTL < 0 {
			return fmt.Errorf("%w: presence %s: negative TTL", ErrInvalidConfig, p.Exposure)
		}
	}
	return nil
}
