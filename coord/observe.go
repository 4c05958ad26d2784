package coord

import "context"

// Observed is implemented by a coordinator with a backend worth watching
// (coord/redis): the server shows its Health on /health and its Metrics on
// /metrics through this interface, without knowing the backend. The
// embedded memory coordinator has nothing to report and does not
// implement it.
type Observed interface {
	// Health reports whether the backend answers and the coordinator's
	// links to it are up: nil when they are, else an error wrapping
	// ErrUnavailable that says what is down. It may wait for the backend
	// (a round trip), honouring ctx: call it off any event loop.
	Health(ctx context.Context) error

	// Metrics returns the coordinator's figures now: the same names, in
	// the same order, at every call. No I/O.
	Metrics() []Metric
}

// Metric is one figure of Observed.Metrics.
type Metric struct {
	// Name is a Prometheus metric name ("meshfast_redis_round_trips_total").
	Name string
	Help string
	// Counter: the value only grows (a Prometheus counter); else a gauge.
	Counter bool
	Value   float64
}
