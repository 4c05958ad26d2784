// Package server assembles a meshfast node: the engine, the Mesh protocol
// server, the coordinator, /health and /metrics. cmd/meshfast maps flags
// and environment variables onto Config, calls Config.Validate and Start;
// embedders can do the same.
//
// # Concurrency
//
// Config is a value; Validate and Start may be called from any goroutine.
// A Node's methods are safe from any goroutine. Its metrics are read by
// whoever scrapes /metrics or /health, on the event loop that serves the
// request: one scrape reads Engine.Stats and Mesh.LocalTopics once, in the
// registry's OnScrape hook, into a copy that the series' funcs read under
// the same registry lock, so concurrent scrapes are serialized and never
// see each other's half-written copy.
package server
