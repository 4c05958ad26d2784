package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"time"

	coordredis "github.com/meshfast/meshfast/coord/redis"
	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/streams"
	"github.com/meshfast/meshfast/features/streams/gateway"
	"github.com/meshfast/meshfast/features/streams/store"
	redisstore "github.com/meshfast/meshfast/features/streams/store/redis"
	"github.com/meshfast/meshfast/perf"
	"github.com/meshfast/meshfast/protocol/zps"
)

// Durable event streams on the node (features/streams) and zero-pub-sub's
// gateway beside Mesh (features/streams/gateway). The streams share the
// node's coordinator for their live events; their events are kept in
// memory, or in Redis Streams on the node's Redis. The gateway verifies
// init's token with the node's JWT settings, and without an Authorize of
// the embedder's decides each room by the token's allow claim:
//
//	{"allow": {"streams": ["^chat:"], "write_streams": ["^chat:"]}}
//
// "streams" governs subscribe, replay and ack, "write_streams" publish; a
// list left out restricts nothing, an empty list allows nothing (as the
// Mesh lists of perms.go). The HTTP API publishes durable events (single
// and batch, idempotent by event id) and ephemeral ones.

// Storage names for StreamsConfig.Storage.
const (
	// StorageAuto is Redis when the node runs on Redis, memory otherwise.
	StorageAuto = "auto"
	// StorageMemory keeps events in this process: one node (or nodes of
	// one process sharing a Store).
	StorageMemory = "memory"
	// StorageRedis keeps events in Redis Streams on Config.Redis.URL: every
	// node on that Redis shares each room's sequence.
	StorageRedis = "redis"
)

// StreamsConfig configures the node's durable event streams and its
// zero-pub-sub gateway.
type StreamsConfig struct {
	// Storage is StorageAuto, StorageMemory or StorageRedis. Empty means
	// StorageAuto.
	Storage string
	// TTL is how long an event published without one stays in replay.
	// Zero means streams.DefaultTTL.
	TTL time.Duration
	// MaxLen, if positive, keeps at most that many of each room's newest
	// events.
	MaxLen int
	// Gateway configures the gateway: its path (gateway.DefaultPath,
	// "/zps"), limits and scopes. Its Auth.JWT is the node's JWT when JWT
	// is set; its Auth.Authorize, when nil, reads the token's allow claim
	// (see above); its AllowedOrigins, when nil, are Mesh's. Metrics and
	// Logger are the node's.
	Gateway gateway.Options
	// Store, if set, keeps the events instead of what Storage names (an
	// embedder's store, in-process nodes sharing one); the node does not
	// close it.
	Store store.Store
}

func (s StreamsConfig) validate(redisURL, meshPath, ssePath string) error {
	if p := s.Gateway.Path; p != "" && (p == meshPath || p == ssePath) {
		return fmt.Errorf("%w: the gateway's path %q is already Mesh's or the event streams'", ErrInvalidConfig, p)
	}
	switch s.Storage {
	case "", StorageAuto, StorageMemory:
	case StorageRedis:
		if redisURL == "" && s.Store == nil {
			return fmt.Errorf("%w: streams storage redis needs redis.url", ErrInvalidConfig)
		}
	default:
		return fmt.Errorf("%w: streams storage %q is not %s, %s or %s", ErrInvalidConfig, s.Storage, StorageAuto, StorageMemory, StorageRedis)
	}
	if s.TTL < 0 || s.MaxLen < 0 {
		return fmt.Errorf("%w: negative streams ttl or max_len", ErrInvalidConfig)
	}
	if err := (streams.Options{TTL: s.TTL}).Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := s.Gateway.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// storage is what Storage means for a node with redisURL.
func (s StreamsConfig) storage(redisURL string) string {
	if s.Storage == "" || s.Storage == StorageAuto {
		if redisURL != "" {
			return StorageRedis
		}
		return StorageMemory
	}
	return s.Storage
}

// defaultStreams is DefaultSettings' streams: every default concrete.
func defaultStreams() StreamsConfig {
	return StreamsConfig{
		Storage: StorageAuto,
		TTL:     streams.DefaultTTL,
		Gateway: gateway.Options{Path: gateway.DefaultPath, Limits: gateway.Limits{
			MaxConnections:         gateway.DefaultMaxConnections,
			MaxSubscriptions:       gateway.DefaultMaxSubscriptions,
			MaxPayloadBytes:        gateway.DefaultMaxPayloadBytes,
			MaxMessagesPerWindow:   gateway.DefaultMaxMessagesPerWindow,
			RateLimitWindow:        gateway.DefaultRateLimitWindow,
			InitTimeout:            gateway.DefaultInitTimeout,
			HeartbeatInterval:      gateway.DefaultHeartbeatInterval,
			HeartbeatTimeout:       gateway.DefaultHeartbeatTimeout,
			MaxSocketBufferedBytes: gateway.DefaultMaxSocketBufferedBytes,
		}},
	}
}

// gatewaySweep lowers the engine's sweep period for the gateway's timers
// as sweepFor does for Mesh's, unless the engine's options set it.
func gatewaySweep(eo engine.Options, set time.Duration, gw gateway.Options) (sweep, tick time.Duration) {
	sweep, tick = eo.SweepPeriod, eo.TickInterval
	finest := gw.Finest()
	if set != 0 || finest == 0 {
		return sweep, tick
	}
	cur := sweep
	if cur == 0 {
		cur = engine.DefaultSweepPeriod
	}
	if finest >= 2*cur {
		return sweep, tick
	}
	sweep = max(finest/2, minSweep)
	if tick == 0 || tick > sweep {
		tick = sweep
	}
	return sweep, tick
}

// startStreams builds the node's streams, before its Mesh server (whose
// durable channels live in them): on cfg.Streams.Store if set, else on
// Redis Streams when the node is on Redis (or storage says so), else in
// memory; their live fan-out goes through the node's coordinator when it
// has one other nodes share, else in process. On error nothing is left
// running.
func (n *Node) startStreams(cfg *Config, reg *perf.Metrics, log *slog.Logger) error {
	sc := cfg.Streams
	st := sc.Store
	if st == nil {
		switch sc.storage(cfg.Redis.URL) {
		case StorageRedis:
			u, err := coordredis.ParseURL(cfg.Redis.URL)
			if err != nil {
				return fmt.Errorf("%w: streams: %w", ErrInvalidConfig, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*(redisstore.DefaultDialTimeout+redisstore.DefaultWriteTimeout))
			defer cancel()
			rs, err := redisstore.New(ctx, redisstore.Options{Addrs: u.Addrs, Username: u.Username, Password: u.Password, DB: u.DB})
			if err != nil {
				return fmt.Errorf("streams store on redis %s: %w", cfg.Redis.URL, err)
			}
			st, n.ownedStore = rs, rs
		default:
			// Streams' own memory store, closed with it.
		}
	}
	so := streams.Options{Store: st, Metrics: reg, Logger: log.With("component", "streams"), TTL: sc.TTL, MaxLen: sc.MaxLen}
	if cfg.Mesh.Coordinator != nil {
		so.PubSub = cfg.Mesh.Coordinator
	}
	s, err := streams.New(so)
	if err != nil {
		n.closeStore()
		return fmt.Errorf("%w: streams: %w", ErrInvalidConfig, err)
	}
	n.Streams = s
	return nil
}

// startGateway serves zero-pub-sub's gateway over the node's streams on e,
// before e serves. On error the caller closes the streams.
func (n *Node) startGateway(cfg *Config, e *engine.Engine, jwtCfg JWTConfig, reg *perf.Metrics, log *slog.Logger) error {
	s := n.Streams
	gopts := cfg.Streams.Gateway
	gopts.Metrics, gopts.Logger = reg, log.With("component", "gateway")
	if gopts.AllowedOrigins == nil {
		// One allow-list per node: a page refused on Mesh's path must not
		// get the same user's events through the gateway's.
		gopts.AllowedOrigins = cfg.Mesh.AllowedOrigins
	}
	if jwtCfg.Enabled() {
		auth := newJWTAuth(jwtCfg)
		gopts.Auth.JWT = func(_ context.Context, tok string) (map[string]any, error) {
			claims, err := auth.verify(tok)
			if err != nil {
				return nil, err
			}
			perms, err := streamPermsFromClaims(claims)
			if err != nil {
				return nil, err
			}
			claims[streamPermsClaim] = perms
			return claims, nil
		}
		if gopts.Auth.Authorize == nil {
			gopts.Auth.Authorize = authorizeByClaims
		}
	}
	gw, err := gateway.New(e, s, gopts)
	if err != nil {
		return fmt.Errorf("%w: gateway: %w", ErrInvalidConfig, err)
	}
	n.Gateway = gw
	return nil
}

// closeStreams stops the gateway and the streams, then the store the node
// opened. After the engine has shut down.
func (n *Node) closeStreams() error {
	if n.Gateway != nil {
		_ = n.Gateway.Close()
		n.Gateway = nil
	}
	var err error
	if n.Streams != nil && !n.givenStreams {
		err = n.Streams.Close()
	}
	n.Streams = nil
	return errors.Join(err, n.closeStore())
}

func (n *Node) closeStore() error {
	if n.ownedStore == nil {
		return nil
	}
	err := n.ownedStore.Close()
	n.ownedStore = nil
	return err
}

// streamPermsClaim is where the gateway's JWT check keeps the compiled
// stream permissions among a connection's claims, for authorizeByClaims:
// compiled once per connection, at init. A name a JSON claim would hardly
// use; a token that has it anyway gets it overwritten.
const streamPermsClaim = "\x00meshfast/streams"

// streamPerms are a token's allow.streams and allow.write_streams.
type streamPerms struct {
	read, write       []*regexp.Regexp
	hasRead, hasWrite bool
}

// streamPermsFromClaims compiles the claims' allow.streams and
// allow.write_streams (nil: none given).
func streamPermsFromClaims(claims map[string]any) (*streamPerms, error) {
	raw, ok := claims[claimAllow]
	if !ok || raw == nil {
		return nil, nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, errors.New("allow claim unreadable")
	}
	var pj struct {
		Streams      *[]string `json:"streams"`
		WriteStreams *[]string `json:"write_streams"`
	}
	if err := json.Unmarshal(b, &pj); err != nil {
		return nil, fmt.Errorf("allow: %w", err)
	}
	p := &streamPerms{}
	compile := func(name string, src *[]string, dst *[]*regexp.Regexp, has *bool) error {
		if src == nil {
			return nil
		}
		*has = true
		if len(*src) > maxPermPatterns {
			return fmt.Errorf("allow.%s: more than %d patterns", name, maxPermPatterns)
		}
		for _, s := range *src {
			if len(s) > maxPermPatternSz {
				return fmt.Errorf("allow.%s: a pattern over %d bytes", name, maxPermPatternSz)
			}
			re, err := regexp.Compile(s)
			if err != nil {
				return fmt.Errorf("allow.%s: %w", name, err)
			}
			*dst = append(*dst, re)
		}
		return nil
	}
	if err := compile("streams", pj.Streams, &p.read, &p.hasRead); err != nil {
		return nil, err
	}
	if err := compile("write_streams", pj.WriteStreams, &p.write, &p.hasWrite); err != nil {
		return nil, err
	}
	return p, nil
}

// authorizeByClaims is the gateway's Authorize on a node with JWT: the
// token's stream permissions decide.
func authorizeByClaims(_ context.Context, a gateway.Access) (bool, error) {
	p, _ := a.Claims[streamPermsClaim].(*streamPerms)
	if p == nil {
		return true, nil
	}
	has, list := p.hasRead, p.read
	if a.Action == gateway.ActionPublish {
		has, list = p.hasWrite, p.write
	}
	if !has {
		return true, nil
	}
	for _, re := range list {
		if re.MatchString(a.Room) {
			return true, nil
		}
	}
	return false, nil
}

// The HTTP API's stream endpoints (api.go has the rest).
//
//	POST streams/publish          {"id","room","type","payload","metadata","encrypted","ttlMs"} → {"event": {…}, "duplicate": false}
//	POST streams/publish_batch    {"events": [{…}, …]}                                     → {"published": [{"event", "duplicate"}, …]}
//	POST streams/publish_ephemeral {"room","type","payload"}                               → {"ok": true}
//
// The members are the document's publish(event)'s. An event with an id is
// published once whatever the number of requests (a retry returns the
// event first stored, "duplicate": true); a batch is stored in one round
// trip, each room's events in the order given. A refusal of the streams
// middleware is 403; a room, type or JSON value that is not valid, 400.
var streamEndpoints = []endpoint{
	{"streams/publish", "POST", (*api).streamsPublish},
	{"streams/publish_batch", "POST", (*api).streamsPublishBatch},
	{"streams/publish_ephemeral", "POST", (*api).streamsPublishEphemeral},
}

type streamEventReq struct {
	ID        string          `json:"id"`
	Room      string          `json:"room"`
	Type      string          `json:"type"`
	Payload   json.RawMessage `json:"payload"`
	Metadata  json.RawMessage `json:"metadata"`
	Encrypted bool            `json:"encrypted"`
	TTLMs     int64           `json:"ttlMs"`
}

func (r *streamEventReq) message() (streams.Message, error) {
	if err := required("room", r.Room, "type", r.Type); err != nil {
		return streams.Message{}, err
	}
	if r.TTLMs < 0 {
		return streams.Message{}, badRequest(`"ttlMs": 0 or more`)
	}
	md := r.Metadata
	if string(md) == "null" {
		md = nil
	}
	return streams.Message{ID: r.ID, Room: r.Room, Type: r.Type, Payload: r.Payload, Metadata: md,
		Encrypted: r.Encrypted, TTL: time.Duration(r.TTLMs) * time.Millisecond}, nil
}

// publishedJSON is one stored event as the API answers it.
type publishedJSON struct {
	Event     json.RawMessage `json:"event"`
	Duplicate bool            `json:"duplicate"`
}

func published(p streams.Published) publishedJSON {
	return publishedJSON{Event: p.AppendJSON(nil), Duplicate: p.Duplicate}
}

// streamError maps a streams error to the API's statuses.
func streamError(err error) error {
	switch {
	case errors.Is(err, streams.ErrBlocked):
		return &apiError{403, err.Error()}
	case errors.Is(err, zps.ErrInvalidRoom), errors.Is(err, zps.ErrInvalidName), errors.Is(err, zps.ErrInvalidJSON),
		errors.Is(err, streams.ErrInvalidOptions), errors.Is(err, streams.ErrReservedType):
		return badRequest("%s", err.Error())
	}
	return err
}

func (a *api) streamsPublish(ctx context.Context, r *apiRequest) (any, error) {
	var req streamEventReq
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	m, err := req.message()
	if err != nil {
		return nil, err
	}
	p, err := a.n.Streams.Publish(ctx, m)
	if err != nil {
		return nil, streamError(err)
	}
	return published(p), nil
}

func (a *api) streamsPublishBatch(ctx context.Context, r *apiRequest) (any, error) {
	var req struct {
		Events []streamEventReq `json:"events"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if len(req.Events) == 0 {
		return nil, badRequest(`"events": a list of at least one event`)
	}
	ms := make([]streams.Message, len(req.Events))
	for i := range req.Events {
		m, err := req.Events[i].message()
		if err != nil {
			return nil, badRequest("events[%d]: %s", i, err.Error())
		}
		ms[i] = m
	}
	ps, err := a.n.Streams.PublishBatch(ctx, ms)
	if err != nil {
		return nil, streamError(err)
	}
	out := make([]publishedJSON, len(ps))
	for i, p := range ps {
		out[i] = published(p)
	}
	return map[string]any{"published": out}, nil
}

func (a *api) streamsPublishEphemeral(ctx context.Context, r *apiRequest) (any, error) {
	var req struct {
		Room    string          `json:"room"`
		Type    string          `json:"type"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := required("room", req.Room, "type", req.Type); err != nil {
		return nil, err
	}
	if err := a.n.Streams.PublishEphemeral(ctx, streams.EphemeralMessage{Room: req.Room, Type: req.Type, Payload: req.Payload}); err != nil {
		return nil, streamError(err)
	}
	return nil, nil
}

// storageName is StreamsConfig.Storage's key value.
type storageName string

func (v *storageName) String() string { return string(*v) }

func (v *storageName) Set(s string) error {
	switch s {
	case StorageAuto, StorageMemory, StorageRedis:
		*v = storageName(s)
		return nil
	}
	return fmt.Errorf("%q is not %s, %s or %s", s, StorageAuto, StorageMemory, StorageRedis)
}

// limitCount is a gateway limit: a whole number, 0 meaning no limit, which
// the gateway's options write as a negative (their zero is the default).
type limitCount int

func (v *limitCount) String() string { return strconv.Itoa(max(int(*v), 0)) }

func (v *limitCount) Set(s string) error {
	var c count
	if err := c.Set(s); err != nil {
		return err
	}
	*v = limitCount(c)
	if c == 0 {
		*v = -1
	}
	return nil
}

// limitSize is limitCount for a byte size.
type limitSize int

func (v *limitSize) String() string {
	n := size(max(int(*v), 0))
	return n.String()
}

func (v *limitSize) Set(s string) error {
	var n size
	if err := n.Set(s); err != nil {
		return err
	}
	*v = limitSize(n)
	if n == 0 {
		*v = -1
	}
	return nil
}
