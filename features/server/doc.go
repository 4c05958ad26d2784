// Package server assembles a meshfast node: the engine, the Mesh protocol
// server, the coordinator, the exposures clients may use, /health and
// /metrics. It also reads meshfast's configuration: a Loader applies the
// built-in defaults, a YAML file, MESHFAST_* environment variables and
// flags, in that order, into Settings, whose Node is the Config that
// Start takes. cmd/meshfast does only that; embedders can do the same:
//
//	l := server.NewLoader()
//	if err := l.LoadFile(name, data); err != nil { ... }   // name:line: key: what is wrong
//	if err := l.LoadEnv(os.LookupEnv); err != nil { ... }
//	if err := l.Validate(); err != nil { ... }
//	cfg := l.Settings.Node
//	cfg.Logger = l.Settings.Log.NewLogger(os.Stderr)
//	node, err := server.Start(cfg)
//
// keys.go lists every key; the environment variable and flag of each are
// derived from its path (EnvName, FlagName).
//
// With Config.Redis.URL set (redis.url, MESHFAST_REDIS_URL, -redis) Start
// connects to Redis (coord/redis) and the node serves with every other
// node on that Redis as one; Shutdown removes the node's state and closes
// the connection. /health shows the backend, and the streams store's
// ("streams"), as checked every DefaultHealthInterval by a goroutine of the
// node (503 while one is down), and /metrics the coordinator's counters,
// through coord.Observed.
//
// A channel exposure with Durable set makes Start keep the node's durable
// channels in a features/streams Streams it owns (expose.go): on Redis
// Streams, with the Redis coordinator as its pub/sub, when the node is on
// Redis; in memory otherwise. Shutdown closes it after the Mesh server and
// before the coordinator.
//
// # Concurrency
//
// Config and Settings are values; Validate and Start may be called from
// any goroutine. A Loader is used by one goroutine. A Node's methods are
// safe from any goroutine. Its metrics are read by whoever scrapes
// /metrics or /health, on the event loop that serves the request: one
// scrape reads Engine.Stats and Mesh.LocalTopics once, in the registry's
// OnScrape hook, into a copy that the series' funcs read under the same
// registry lock, so concurrent scrapes are serialized and never see each
// other's half-written copy. The channel histories Start records are
// read-only once the node serves, so the subscribe middleware and
// PublishToChannel read them without a lock.
//
// Every node also keeps durable event streams (features/streams: memory,
// or Redis Streams on the node's Redis) and serves zero-pub-sub's gateway
// protocol over them on Config.Streams.Gateway.Path (/zps) beside Mesh
// (streams.go): the gateway takes the node's JWT settings for init's
// token, and the API publishes durable and ephemeral events. Node.Streams
// and Node.Gateway are safe from any goroutine; Shutdown closes them after
// the engine, before the coordinator their live events travel on.
//
// The edge tier: the API's HTTP handler (api.go) runs on an event loop and
// only checks the key and copies the body there; the request's work runs
// on a goroutine of its own and answers through engine.Response.Defer. A
// token is verified on the loop, in mesh.Options.Authenticate (CPU only).
// A proxied command runs on its connection's command goroutine, a connect
// call in mesh.Identity.Verify's goroutine; the proxy's slots are a
// buffered channel, its HTTP client is safe for concurrent use.
package server
