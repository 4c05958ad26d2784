package engine

import "fmt"

// LimitConnections caps the open connections of the WebSocket route on
// path (registered with Handle): past n, a handshake is answered 503
// Service Unavailable with a Retry-After, before the route's
// HandshakeChecker runs. Zero or less removes the cap. Call it after Handle
// and before Serve; the cap of an SSE endpoint is SSEOptions.MaxStreams.
func (e *Engine) LimitConnections(path string, n int) error {
	e.routesMu.Lock()
	defer e.routesMu.Unlock()
	wr := e.ws[path]
	if wr == nil {
		return fmt.Errorf("%w: LimitConnections: no WebSocket route on %q", ErrInvalidRoute, path)
	}
	e.serveMu.Lock()
	serving := e.serving
	e.serveMu.Unlock()
	if serving {
		return fmt.Errorf("%w: LimitConnections on %q after Serve", ErrInvalidRoute, path)
	}
	wr.max = int64(max(n, 0))
	return nil
}

// LimitPendingBytes gives the WebSocket route on path a MaxPendingBytes of
// its own: a connection of the route that owes more than n bytes is closed
// as a slow consumer, whatever Options.MaxPendingBytes says for the
// others (a protocol whose clients must keep up more closely, or may lag
// more, than the engine's default). Zero or less removes it; n may not
// exceed the most Options.MaxPendingBytes may be. Call it after Handle and
// before Serve.
func (e *Engine) LimitPendingBytes(path string, n int) error {
	e.routesMu.Lock()
	defer e.routesMu.Unlock()
	wr := e.ws[path]
	if wr == nil {
		return fmt.Errorf("%w: LimitPendingBytes: no WebSocket route on %q", ErrInvalidRoute, path)
	}
	if n > maxPendingBytes {
		return fmt.Errorf("%w: LimitPendingBytes %d on %q: at most %d", ErrInvalidOptions, n, path, maxPendingBytes)
	}
	e.serveMu.Lock()
	serving := e.serving
	e.serveMu.Unlock()
	if serving {
		return fmt.Errorf("%w: LimitPendingBytes on %q after Serve", ErrInvalidRoute, path)
	}
	wr.maxPending = max(n, 0)
	return nil
}

// RouteConnections is how many connections the WebSocket route on path has
// open, counted only while it has a cap (LimitConnections): 0 otherwise.
func (e *Engine) RouteConnections(path string) int64 {
	e.routesMu.RLock()
	wr := e.ws[path]
	e.routesMu.RUnlock()
	if wr == nil {
		return 0
	}
	return wr.open.Load()
}
