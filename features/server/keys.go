package server

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/meshfast/meshfast/coord/redis"
)

// A key is one setting of the configuration. Its path is where it sits in
// the file ("max_connections", "log.format"); its environment variable
// and flag names are derived from the path (EnvName, FlagName), so that
// the three never disagree and no table of names is kept twice.
//
// Flat keys at the top are the node's listener, limits and liveness: their
// variables are the ones the binary read before it had a file
// (MESHFAST_ADDR, MESHFAST_MAX_CONNECTIONS). Sections hold the features
// with several keys: log, expose, redis (redis.url, MESHFAST_REDIS_URL,
// -redis), and later the server API's keys, JWT and the command proxy.
// A key that stops meaning anything is removed, never kept as a no-op: the
// loader refuses what this table does not list.
type key struct {
	path  string
	usage string // -h; a `word` in it names the flag's argument, as in package flag
	flag  bool   // also settable by a flag (the common ones)
	// secret: -print-config shows <redacted> instead of the value
	// (Settings.Redacted), and the README says to keep it out of files
	// others read.
	secret bool
	// flagAs, if set, is the flag's name instead of FlagName(path): a
	// short name for a key everyone sets (-redis for redis.url).
	flagAs string
	// value is how the key reads and writes its field of a Settings. Set
	// parses what an environment variable or flag gives (and a scalar in
	// the file); String gives it back in a form Set takes, which
	// -print-config writes. A key whose file value is not a scalar (a
	// list) also implements nodeValue.
	value func(*Settings) flag.Value
}

// table lists every key, in the order -print-config writes them.
var table = []key{
	{path: "addr", flag: true, usage: "listen `address`, host:port",
		value: func(s *Settings) flag.Value { return (*nonEmpty)(&s.Node.Engine.Addr) }},
	{path: "path", flag: true, usage: "WebSocket `path` of the Mesh protocol, starting with /",
		value: func(s *Settings) flag.Value { return (*text)(&s.Node.Mesh.Path) }},
	{path: "loops", flag: true, usage: "`n` event loops, 0 = one per CPU",
		value: func(s *Settings) flag.Value { return (*count)(&s.Node.Engine.Loops) }},
	{path: "reuseport", flag: true, usage: "one listening socket per loop (SO_REUSEPORT), no acceptor hand-off; -reuseport=false (or the variable set to 0) for one acceptor",
		value: func(s *Settings) flag.Value { return (*boolean)(&s.Node.Engine.ReusePort) }},
	{path: "max_connections", flag: true, usage: "close TCP connections past `n` at once (handshakes and HTTP included), 0 = no limit of its own (the file limit still caps them)",
		value: func(s *Settings) flag.Value { return (*count)(&s.Node.Engine.MaxConnections) }},
	{path: "max_connections_per_ip", flag: true, usage: "close TCP connections from one client address past `n` at once (the TCP peer's: behind a proxy, the proxy's), 0 = no limit",
		value: func(s *Settings) flag.Value { return (*count)(&s.Node.Engine.MaxConnectionsPerIP) }},
	{path: "max_message_size", flag: true, usage: "largest client message in `bytes` (or with KiB, MiB, GiB); larger ones close with 1009",
		value: func(s *Settings) flag.Value { return (*size)(&s.Node.Engine.MaxMessageSize) }},
	{path: "max_pending_bytes", flag: true, usage: "outbound `bytes` a connection may owe before it is closed as a slow consumer",
		value: func(s *Settings) flag.Value { return (*size)(&s.Node.Engine.MaxPendingBytes) }},
	{path: "max_header_bytes", usage: "largest HTTP request head in `bytes`; past it the request is answered 431",
		value: func(s *Settings) flag.Value { return (*size)(&s.Node.Engine.MaxHeaderBytes) }},
	{path: "handshake_timeout", flag: true, usage: "`duration` allowed for the HTTP request head",
		value: func(s *Settings) flag.Value { return (*positiveDuration)(&s.Node.Engine.HandshakeTimeout) }},
	{path: "idle_timeout", flag: true, usage: "close connections silent for this `duration` (WebSocket pings are sent first); off (or 0) leaves liveness to Mesh's ping/pong",
		value: func(s *Settings) flag.Value { return (*offDuration)(&s.Node.Engine.IdleTimeout) }},
	{path: "ping_interval", flag: true, usage: "Mesh ping push `period`; off (or 0) sends none",
		value: func(s *Settings) flag.Value { return (*offDuration)(&s.Node.Mesh.PingInterval) }},
	{path: "max_missed_pongs", flag: true, usage: "`n` unanswered pings before a connection is closed (Mesh's default)",
		value: func(s *Settings) flag.Value { return (*missedPongs)(&s.Node.Mesh.MaxMissedPongs) }},
	{path: "latency_interval", flag: true, usage: "Mesh latency probe `period`; off (or 0) sends none",
		value: func(s *Settings) flag.Value { return (*offDuration)(&s.Node.Mesh.LatencyInterval) }},
	{path: "max_queued_commands", usage: "commands one connection may have queued or running; at this many the node stops reading it until half are done (the client is slowed, not refused)",
		value: func(s *Settings) flag.Value { return (*positiveCount)(&s.Node.Mesh.MaxQueuedCommands) }},
	{path: "max_queued_bytes", usage: "payload `bytes` of one connection's queued or running commands; past it the node stops reading it the same way",
		value: func(s *Settings) flag.Value { return (*size)(&s.Node.Mesh.MaxQueuedBytes) }},
	{path: "max_inflight_commands", usage: "commands queued or running on the whole node; past it a command is answered EBUSY",
		value: func(s *Settings) flag.Value { return (*positiveCount)(&s.Node.Mesh.MaxInFlight) }},
	{path: "max_rooms_per_connection", usage: "rooms one connection may join; past it mesh/join-room answers ELIMIT; 0 = no limit",
		value: func(s *Settings) flag.Value { return (*count)(&s.Node.Mesh.MaxRoomsPerConnection) }},
	{path: "max_subscriptions_per_connection", usage: "channel, record and presence subscriptions one connection may hold; past it a subscription answers ELIMIT; 0 = no limit",
		value: func(s *Settings) flag.Value { return (*count)(&s.Node.Mesh.MaxSubscriptionsPerConnection) }},
	{path: "command_rate", flag: true, usage: "commands per second one connection may send on average (a token bucket of command_burst); past it a command answers ELIMIT; 0 = no limit",
		value: func(s *Settings) flag.Value { return (*rate)(&s.Node.Mesh.CommandRate) }},
	{path: "command_burst", usage: "commands a connection may send at once after a quiet spell; 0 = command_rate rounded up",
		value: func(s *Settings) flag.Value { return (*count)(&s.Node.Mesh.CommandBurst) }},
	{path: "auth_timeout", usage: "`duration` a connection may take to be authenticated after the upgrade (the connect proxy's answer); past it it is closed with 1008",
		value: func(s *Settings) flag.Value { return (*positiveDuration)(&s.Node.Mesh.AuthTimeout) }},
	{path: "private", usage: "clients may join only the rooms in expose.rooms and read only their own connection's metadata and their rooms' (Mesh leaves both open)",
		value: func(s *Settings) flag.Value { return (*boolean)(&s.Node.Mesh.Private) }},
	{path: "allowed_origins", usage: "browser origins allowed to connect (https://app.example.com, https://*.example.com); a handshake with another Origin is refused 403 (Mesh, event streams, gateway); [] allows all",
		value: func(s *Settings) flag.Value { return stringList{&s.Node.Mesh.AllowedOrigins} }},
	{path: "shutdown_timeout", flag: true, usage: "on SIGINT or SIGTERM, wait at most this `duration` for clients after sending them 1001",
		value: func(s *Settings) flag.Value { return (*positiveDuration)(&s.ShutdownTimeout) }},
	{path: "bench", flag: true, usage: "expose the bench/publish command and the bench channels for meshfast-bench",
		value: func(s *Settings) flag.Value { return (*boolean)(&s.Node.Bench) }},
	{path: "demo", flag: true, usage: "serve the demo page on /demo (EventSource and WebSocket side by side) and expose what it uses",
		value: func(s *Settings) flag.Value { return (*boolean)(&s.Node.Demo) }},

	{path: "sse.path", usage: "`path` of the Server-Sent Events endpoint, starting with /",
		value: func(s *Settings) flag.Value { return (*nonEmpty)(&s.Node.SSE.Path) }},
	{path: "sse.heartbeat", usage: "comment line sent to each stream every `period`; off sends none",
		value: func(s *Settings) flag.Value { return (*offDuration)(&s.Node.SSE.Heartbeat) }},
	{path: "sse.retry", usage: "reconnection `delay` a stream asks its client for; off sends no hint",
		value: func(s *Settings) flag.Value { return (*offDuration)(&s.Node.SSE.Retry) }},
	{path: "sse.max_connections", usage: "answer 503 to streams past `n` open ones, 0 = no cap of their own (max_connections still applies)",
		value: func(s *Settings) flag.Value { return (*count)(&s.Node.SSE.MaxConnections) }},

	{path: "log.format", flag: true, usage: "log line `format`: text or json",
		value: func(s *Settings) flag.Value { return (*logFormat)(&s.Log.Format) }},
	{path: "log.level", flag: true, usage: "least severe `level` logged: debug, info, warn or error",
		value: func(s *Settings) flag.Value { return (*logLevel)(&s.Log.Level) }},

	{path: "redis.url", flag: true, flagAs: "redis", usage: "run the node on Redis at this `URL` (redis://host:port, redis://:password@host:port/db; a comma-separated list of nodes for a Redis Cluster): nodes on one Redis serve as one; empty runs the node alone",
		value: func(s *Settings) flag.Value { return (*redisURL)(&s.Node.Redis.URL) }},
	{path: "redis.node_ttl", usage: "a node counts as alive this `duration` after its last heartbeat (sent every third of it); the others remove a dead node's clients from rooms and presence within about 1.6× it (keep it at most 5/8 of the presence ttl)",
		value: func(s *Settings) flag.Value { return (*positiveDuration)(&s.Node.Mesh.NodeTTL) }},

	{path: "expose.channels", usage: "channels clients may subscribe to: a list of {name or pattern, history, durable}; durable keeps a channel (scope:resourceId) in a stream that meshfast's Go client resumes without a loss",
		value: func(s *Settings) flag.Value { return channelList(&s.Node.Expose.Channels) }},
	{path: "expose.records", usage: "records clients may subscribe to: a list of {name or pattern}",
		value: func(s *Settings) flag.Value { return recordList(&s.Node.Expose.Records) }},
	{path: "expose.writable_records", usage: "records clients may write (and read): a list of {name or pattern}",
		value: func(s *Settings) flag.Value { return recordList(&s.Node.Expose.WritableRecords) }},
	{path: "expose.presence", usage: "rooms whose presence is tracked: a list of {name or pattern, ttl}",
		value: func(s *Settings) flag.Value { return presenceList(&s.Node.Expose.Presence) }},
	{path: "expose.rooms", usage: "rooms clients may join when private is set: a list of {name or pattern}",
		value: func(s *Settings) flag.Value { return recordList(&s.Node.Expose.Rooms) }},

	{path: "api.keys", secret: true, usage: "API keys of the server HTTP API (Authorization: Bearer KEY or X-API-Key: KEY), 16 characters or more each; [] turns the API off",
		value: func(s *Settings) flag.Value { return stringList{&s.Node.API.Keys} }},
	{path: "api.addr", flag: true, usage: "serve the API on this `address` of its own (host:port) instead of the clients' port",
		value: func(s *Settings) flag.Value { return (*text)(&s.Node.API.Addr) }},
	{path: "api.prefix", usage: "path `prefix` of the API's endpoints",
		value: func(s *Settings) flag.Value { return (*text)(&s.Node.API.Prefix) }},
	{path: "api.max_body_size", usage: "largest API request body in `bytes`; past it 413 (on the clients' port, max_message_size too)",
		value: func(s *Settings) flag.Value { return (*size)(&s.Node.API.MaxBodySize) }},

	{path: "jwt.hmac_secret", secret: true, usage: "secret that verifies HS256 tokens at connect (32 bytes or more); empty: no HS256",
		value: func(s *Settings) flag.Value { return (*text)(&s.Node.JWT.HMACSecret) }},
	{path: "jwt.rsa_public_key_file", usage: "PEM `file` of the RSA public key that verifies RS256 tokens at connect; empty: no RS256",
		value: func(s *Settings) flag.Value { return (*text)(&s.Node.JWT.RSAPublicKeyFile) }},
	{path: "jwt.audience", usage: "the aud a token must name; empty: not checked",
		value: func(s *Settings) flag.Value { return (*text)(&s.Node.JWT.Audience) }},
	{path: "jwt.issuer", usage: "the iss a token must have; empty: not checked",
		value: func(s *Settings) flag.Value { return (*text)(&s.Node.JWT.Issuer) }},
	{path: "jwt.query_param", usage: "query parameter that carries the token when the Authorization header does not",
		value: func(s *Settings) flag.Value { return (*nonEmpty)(&s.Node.JWT.QueryParam) }},

	{path: "proxy.command_url", usage: "backend `URL` that answers commands no handler is registered for (HTTP POST, JSON); empty: ENOTFOUND",
		value: func(s *Settings) flag.Value { return (*text)(&s.Node.Proxy.CommandURL) }},
	{path: "proxy.connect_url", usage: "backend `URL` that accepts or refuses each new connection and names its user (not with jwt)",
		value: func(s *Settings) flag.Value { return (*text)(&s.Node.Proxy.ConnectURL) }},
	{path: "proxy.timeout", usage: "`duration` one backend call may take, waiting for a slot included",
		value: func(s *Settings) flag.Value { return (*positiveDuration)(&s.Node.Proxy.Timeout) }},
	{path: "proxy.max_concurrency", usage: "backend calls this node makes at once; more wait for a slot",
		value: func(s *Settings) flag.Value { return (*positiveCount)(&s.Node.Proxy.MaxConcurrency) }},

	{path: "streams.storage", flag: true, usage: "where durable events are kept: auto (redis with redis.url, else memory), memory or redis (Redis Streams on redis.url)",
		value: func(s *Settings) flag.Value { return (*storageName)(&s.Node.Streams.Storage) }},
	{path: "streams.ttl", usage: "`duration` an event published without a ttlMs stays in replay",
		value: func(s *Settings) flag.Value { return (*positiveDuration)(&s.Node.Streams.TTL) }},
	{path: "streams.max_len", usage: "keep at most `n` newest events per room; 0 = no limit (retention by age only)",
		value: func(s *Settings) flag.Value { return (*count)(&s.Node.Streams.MaxLen) }},
	{path: "streams.gateway.path", flag: true, usage: "WebSocket `path` of the zero-pub-sub gateway, starting with /",
		value: func(s *Settings) flag.Value { return (*nonEmpty)(&s.Node.Streams.Gateway.Path) }},
	{path: "streams.gateway.max_connections", usage: "gateway connections past `n` are told 4410 and closed; 0 = no limit",
		value: func(s *Settings) flag.Value { return (*limitCount)(&s.Node.Streams.Gateway.Limits.MaxConnections) }},
	{path: "streams.gateway.max_subscriptions", usage: "rooms and patterns one gateway connection may subscribe to; past it 4409; 0 = no limit",
		value: func(s *Settings) flag.Value { return (*limitCount)(&s.Node.Streams.Gateway.Limits.MaxSubscriptions) }},
	{path: "streams.gateway.max_payload_bytes", usage: "a gateway message over this many `bytes` is dropped and answered 4406; 0 = no limit (max_message_size still closes)",
		value: func(s *Settings) flag.Value { return (*limitSize)(&s.Node.Streams.Gateway.Limits.MaxPayloadBytes) }},
	{path: "streams.gateway.max_messages_per_window", usage: "messages one gateway connection may send per rate_limit_window; past it 4407; 0 = no limit",
		value: func(s *Settings) flag.Value {
			return (*limitCount)(&s.Node.Streams.Gateway.Limits.MaxMessagesPerWindow)
		}},
	{path: "streams.gateway.rate_limit_window", usage: "the `duration` max_messages_per_window counts over",
		value: func(s *Settings) flag.Value {
			return (*positiveDuration)(&s.Node.Streams.Gateway.Limits.RateLimitWindow)
		}},
	{path: "streams.gateway.init_timeout", usage: "a gateway connection without init after this `duration` is told 4403 and closed; off waits forever",
		value: func(s *Settings) flag.Value { return (*offDuration)(&s.Node.Streams.Gateway.Limits.InitTimeout) }},
	{path: "streams.gateway.heartbeat_interval", usage: "a gateway connection silent this `duration` is sent a WebSocket ping; off sends none",
		value: func(s *Settings) flag.Value { return (*offDuration)(&s.Node.Streams.Gateway.Limits.HeartbeatInterval) }},
	{path: "streams.gateway.heartbeat_timeout", usage: "`duration` a pinged gateway connection has to answer before it is closed",
		value: func(s *Settings) flag.Value {
			return (*positiveDuration)(&s.Node.Streams.Gateway.Limits.HeartbeatTimeout)
		}},
	{path: "streams.gateway.max_socket_buffered_bytes", usage: "outbound `bytes` a gateway connection may owe before it is closed as a slow consumer; 0 = max_pending_bytes",
		value: func(s *Settings) flag.Value {
			return (*limitSize)(&s.Node.Streams.Gateway.Limits.MaxSocketBufferedBytes)
		}},
	{path: "streams.gateway.allow_client_publish", usage: "let gateway clients publish (off: only the backend does, through the API or Go)",
		value: func(s *Settings) flag.Value { return (*boolean)(&s.Node.Streams.Gateway.Limits.AllowClientPublish) }},
	{path: "streams.gateway.scopes", usage: "the only scopes gateway rooms may have (chat, order); [] allows every scope",
		value: func(s *Settings) flag.Value { return stringList{&s.Node.Streams.Gateway.Auth.Scopes} }},
}

// EnvName is the environment variable of a key: "max_message_size" is
// MESHFAST_MAX_MESSAGE_SIZE, "log.format" MESHFAST_LOG_FORMAT,
// "expose.channels" MESHFAST_EXPOSE_CHANNELS.
func EnvName(path string) string {
	return "MESHFAST_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(path))
}

// FlagName is the flag of a key that has one: "max_message_size" is
// -max-message-size, "log.format" -log-format.
func FlagName(path string) string {
	return strings.NewReplacer(".", "-", "_", "-").Replace(path)
}

// flagName is the key's flag, without its dash.
func (k key) flagName() string {
	if k.flagAs != "" {
		return k.flagAs
	}
	return FlagName(k.path)
}

// KeyInfo describes one configuration key, for documentation.
type KeyInfo struct {
	Path    string // in the file
	Env     string // the environment variable
	Flag    string // the flag without its dash, "" if the key has none
	Default string // as -print-config writes it (a list in YAML's flow form)
	Usage   string
	Secret  bool // -print-config shows <redacted>
}

// Keys lists every configuration key in the order -print-config writes them.
func Keys() []KeyInfo {
	def := DefaultSettings()
	out := make([]KeyInfo, len(table))
	for i, k := range table {
		out[i] = KeyInfo{Path: k.path, Env: EnvName(k.path), Default: k.value(&def).String(), Usage: k.usage, Secret: k.secret}
		if k.flag {
			out[i].Flag = k.flagName()
		}
	}
	return out
}

// The value types. Each refuses what its field would otherwise take
// silently as its zero meaning (a negative size becoming the default, a
// zero duration becoming "off"), and its error says what it wants.

// text is a string.
type text string

func (v *text) String() string     { return string(*v) }
func (v *text) Set(s string) error { *v = text(s); return nil }

// nonEmpty is a string that must be given.
type nonEmpty string

func (v *nonEmpty) String() string { return string(*v) }

func (v *nonEmpty) Set(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	*v = nonEmpty(s)
	return nil
}

// boolean is strconv.ParseBool's: true, false, 1, 0, t, f.
type boolean bool

func (v *boolean) String() string   { return strconv.FormatBool(bool(*v)) }
func (v *boolean) IsBoolFlag() bool { return true }

func (v *boolean) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("not a boolean (true or false)")
	}
	*v = boolean(b)
	return nil
}

// count is a whole number, 0 or more.
type count int

func (v *count) String() string { return strconv.Itoa(int(*v)) }

func (v *count) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("not a whole number")
	}
	if n < 0 {
		return errors.New("negative; use 0 or more")
	}
	*v = count(n)
	return nil
}

// positiveCount is a whole number, 1 or more (its field's zero would mean
// the default, not zero).
type positiveCount int

func (v *positiveCount) String() string { return strconv.Itoa(int(*v)) }

func (v *positiveCount) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("not a whole number")
	}
	if n < 1 {
		return errors.New("must be 1 or more")
	}
	*v = positiveCount(n)
	return nil
}

// missedPongs is Mesh's maxMissedPongs: n is n, 0 included, where the
// option's own zero means the default and only a negative means zero.
type missedPongs int

func (v *missedPongs) String() string { return strconv.Itoa(max(int(*v), 0)) }

func (v *missedPongs) Set(s string) error {
	var c count
	if err := c.Set(s); err != nil {
		return err
	}
	if c == 0 {
		*v = -1
	} else {
		*v = missedPongs(c)
	}
	return nil
}

// size is a byte count, 0 or more: a whole number, or one followed by KiB,
// MiB or GiB.
type size int

var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}}

func (v *size) String() string {
	n := int(*v)
	for _, u := range sizeUnits {
		if n != 0 && n%(1<<u.shift) == 0 {
			return strconv.Itoa(n>>u.shift) + u.suffix
		}
	}
	return strconv.Itoa(n)
}

func (v *size) Set(s string) error {
	digits, shift := s, uint(0)
	for _, u := range sizeUnits {
		if d, ok := strings.CutSuffix(s, u.suffix); ok {
			digits, shift = strings.TrimSpace(d), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return errors.New("not a size (a whole number of bytes, or one followed by KiB, MiB or GiB)")
	}
	if n < 0 {
		return errors.New("negative; use 0 or more")
	}
	if n > math.MaxInt>>shift {
		return errors.New("too large")
	}
	*v = size(n << shift)
	return nil
}

// offDuration is a duration that can be off: "off", 0 or a negative
// duration set it to -1, which the options read as disabled.
type offDuration time.Duration

func (v *offDuration) String() string {
	if *v < 0 {
		return "off"
	}
	return time.Duration(*v).String()
}

func (v *offDuration) Set(s string) error {
	if s == "off" {
		*v = -1
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New(`not a duration (like 30s or 2m) or "off"`)
	}
	if d <= 0 {
		d = -1
	}
	*v = offDuration(d)
	return nil
}

// positiveDuration is a duration over zero, which its field would
// otherwise take silently as the default.
type positiveDuration time.Duration

func (v *positiveDuration) String() string { return time.Duration(*v).String() }

func (v *positiveDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration (like 10s or 2m)")
	}
	if d <= 0 {
		return errors.New("must be more than 0")
	}
	*v = positiveDuration(d)
	return nil
}

// redisURL is a Redis URL (coord/redis.ParseURL), or empty for none.
type redisURL string

func (v *redisURL) String() string { return string(*v) }

func (v *redisURL) Set(s string) error {
	if s != "" {
		if _, err := redis.ParseURL(s); err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), "coord/redis: "))
		}
	}
	*v = redisURL(s)
	return nil
}

// logFormat is text or json.
type logFormat LogFormat

func (v *logFormat) String() string { return string(*v) }

func (v *logFormat) Set(s string) error {
	switch f := LogFormat(strings.ToLower(s)); f {
	case LogText, LogJSON:
		*v = logFormat(f)
		return nil
	}
	return fmt.Errorf("%q is neither %q nor %q", s, LogText, LogJSON)
}

// logLevel is one of slog's four levels by name.
type logLevel slog.Level

var levels = []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}

func (v *logLevel) String() string { return strings.ToLower(slog.Level(*v).String()) }

func (v *logLevel) Set(s string) error {
	for _, l := range levels {
		if strings.EqualFold(s, l.String()) {
			*v = logLevel(l)
			return nil
		}
	}
	return fmt.Errorf("%q is not debug, info, warn or error", s)
}

// rate is a rate per second, 0 or more: a decimal number.
type rate float64

func (v *rate) String() string { return strconv.FormatFloat(float64(*v), 'g', -1, 64) }

func (v *rate) Set(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return errors.New("not a number (like 20 or 0.5)")
	}
	if f < 0 {
		return errors.New("negative; use 0 or more")
	}
	*v = rate(f)
	return nil
}

// Redacted is s with every secret (a key marked secret: the API keys, the
// JWT HMAC secret) that is set replaced by "<redacted>": what -print-config
// prints, so that the configuration can be shown without giving them away.
func (s Settings) Redacted() Settings {
	if n := len(s.Node.API.Keys); n > 0 {
		s.Node.API.Keys = make([]string, n)
		for i := range s.Node.API.Keys {
			s.Node.API.Keys[i] = redacted
		}
	}
	if s.Node.JWT.HMACSecret != "" {
		s.Node.JWT.HMACSecret = redacted
	}
	return s
}

const redacted = "<redacted>"
