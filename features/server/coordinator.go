package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/coord/redis"
	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/perf"
	"github.com/meshfast/meshfast/protocol"
)

// RedisConfig puts a node on Redis (or a Redis Cluster): nodes on one
// Redis share rooms, presence, metadata, channels, records and routing, and
// a client on any of them sees what it would see if everyone were on its
// node.
type RedisConfig struct {
	// URL is the Redis to coordinate through (coord/redis.ParseURL:
	// redis://host:port, with an optional user, password and /db, or a
	// comma-separated list of a cluster's nodes). Empty runs the node
	// alone, on the in-memory coordinator.
	URL string
	// Options tunes the coordinator; its Addrs, Username, Password and DB
	// come from URL. Zero is coord/redis's defaults.
	Options redis.Options
}

// DefaultHealthInterval is how often a node checks its coordinator's
// backend for /health (a PING and the pub/sub connections).
const DefaultHealthInterval = time.Second

// options returns the coordinator options URL and Options give.
func (r RedisConfig) options() (redis.Options, error) {
	u, err := redis.ParseURL(r.URL)
	if err != nil {
		return redis.Options{}, err
	}
	o := r.Options
	o.Addrs, o.Username, o.Password, o.DB = u.Addrs, u.Username, u.Password, u.DB
	return o, o.Validate()
}

func (r RedisConfig) validate(meshCoordinator bool) error {
	if r.URL == "" {
		return nil
	}
	if meshCoordinator {
		return fmt.Errorf("%w: both a Redis URL and Mesh.Coordinator are set", ErrInvalidConfig)
	}
	if _, err := r.options(); err != nil {
		return fmt.Errorf("%w: redis: %w", ErrInvalidConfig, err)
	}
	return nil
}

// connectRedis starts the Redis coordinator, bounded by its dial and write
// timeouts.
func connectRedis(r RedisConfig, log *slog.Logger) (*redis.Coordinator, error) {
	o, err := r.options()
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = log
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*(redis.DefaultDialTimeout+redis.DefaultWriteTimeout))
	defer cancel()
	c, err := redis.New(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("redis %s: %w", r.URL, err)
	}
	return c, nil
}

// health is the last check of each backend the node depends on (the
// coordinator's, and the streams store's when the node opened one), which
// /health shows: a check waits for Redis, so checks run on a goroutine of
// their own, never on the event loop that serves /health.
type health struct {
	probes []*healthProbe
	stop   chan struct{}
	done   chan struct{}
}

// healthProbe is one backend: its /health member and its check.
type healthProbe struct {
	name  string
	check func(context.Context) error
	last  atomic.Pointer[healthCheck]
}

type healthCheck struct {
	err error
	at  time.Time
}

// startHealth checks each probe now, then every interval; nil without
// probes.
func startHealth(interval time.Duration, probes ...*healthProbe) *health {
	if len(probes) == 0 {
		return nil
	}
	h := &health{probes: probes, stop: make(chan struct{}), done: make(chan struct{})}
	h.check(interval)
	go h.run(interval)
	return h
}

func (h *health) check(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, p := range h.probes {
		p.last.Store(&healthCheck{err: p.check(ctx), at: time.Now()})
	}
}

func (h *health) run(interval time.Duration) {
	defer close(h.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			h.check(interval)
		}
	}
}

func (h *health) close() {
	close(h.stop)
	<-h.done
}

// appendJSON appends the probes' last checks as members of /health and
// reports whether every one was ok.
func (h *health) appendJSON(dst []byte) (_ []byte, ok bool) {
	ok = true
	for _, p := range h.probes {
		c := p.last.Load()
		dst = append(dst, ',')
		dst = protocol.AppendJSONString(dst, p.name)
		dst = append(dst, `:{"ok":`...)
		dst = strconv.AppendBool(dst, c.err == nil)
		if c.err != nil {
			ok = false
			dst = append(dst, `,"error":`...)
			dst = protocol.AppendJSONString(dst, c.err.Error())
		}
		dst = append(dst, `,"checked_ms_ago":`...)
		dst = strconv.AppendInt(dst, time.Since(c.at).Milliseconds(), 10)
		dst = append(dst, '}')
	}
	return dst, ok
}

// healthHandler is the engine's /health with the node's id, its metrics
// and, for each backend (the coordinator's, the streams store's), its state
// at the last check: 503 while one is down, so that a load balancer sends
// new clients elsewhere (the node's commands and publishes that need it
// fail meanwhile). (A health request is rare: its handler is built per
// request.)
func (n *Node) healthHandler() engine.HTTPHandler {
	return func(w *engine.Response, r *engine.Request) {
		ok := true
		n.Engine.HealthHandler(func(dst []byte) []byte {
			dst = append(dst, `"node":`...)
			dst = strconv.AppendQuote(dst, n.Mesh.NodeID())
			if n.health != nil {
				dst, ok = n.health.appendJSON(dst)
			}
			dst = append(dst, `,"metrics":`...)
			return n.Metrics.WriteJSON(dst)
		})(w, r)
		if !ok {
			w.Status = 503
		}
	}
}

// registerCoordMetrics adds the coordinator's figures (coord.Observed) to
// m, read once per scrape.
func registerCoordMetrics(m *perf.Metrics, co coord.Observed) {
	first := co.Metrics()
	cur := first
	m.OnScrape(func() { cur = co.Metrics() })
	for i, x := range first {
		value := func() float64 {
			if i < len(cur) {
				return cur[i].Value
			}
			return 0
		}
		if x.Counter {
			m.CounterFunc(x.Name, x.Help, func() uint64 { return uint64(value()) })
		} else {
			m.GaugeFunc(x.Name, x.Help, value)
		}
	}
}

// closeCoordinator stops the health checks and closes a coordinator the
// node opened. Idempotent.
func (n *Node) closeCoordinator() error {
	var err error
	n.closeOnce.Do(func() {
		if n.health != nil {
			n.health.close()
		}
		if n.ownedCo != nil {
			if err = n.ownedCo.Close(); errors.Is(err, coord.ErrClosed) {
				err = nil
			}
		}
	})
	return err
}
