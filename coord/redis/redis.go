package redis

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/redis/rueidis"

	"github.com/meshfast/meshfast/coord"
)

// Coordinator is a coord.Coordinator on a Redis or a Redis Cluster. Safe
// for concurrent use; see the package documentation.
type Coordinator struct {
	opts    Options
	id      string // random, names this coordinator's probe channels
	client  rueidis.Client
	cluster bool
	l       layout
	st      stats

	ps    *pubsub
	sweep sweeper
	joins joiner

	reconnects handlers

	// bg is the context of the background work (sweeps, resubscriptions,
	// slot map reads), canceled by Close so that it never waits them out.
	bg     context.Context
	stopBG context.CancelFunc

	reloading atomic.Bool // a loadScripts after NOSCRIPT is running

	closed    atomic.Bool
	closeOnce sync.Once
	done      chan struct{} // closed by Close
	wg        sync.WaitGroup
}

var (
	_ coord.Coordinator = (*Coordinator)(nil)
	_ coord.Admin       = (*Coordinator)(nil)
	_ coord.Observed    = (*Coordinator)(nil)
)

// New connects to Redis, detects whether it is a cluster, and starts the
// presence sweeper and the pub/sub connections. It fails with
// coord.ErrUnavailable when Redis cannot be reached. Close releases it.
func New(ctx context.Context, o Options) (*Coordinator, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	c := &Coordinator{opts: o, id: rand.Text(), done: make(chan struct{})}
	c.bg, c.stopBG = context.WithCancel(context.Background())
	client, err := rueidis.NewClient(c.clientOption(o.Addrs, false))
	if err != nil {
		c.stopBG()
		return nil, fmt.Errorf("coord/redis: connect %v: %w: %w", o.Addrs, coord.ErrUnavailable, err)
	}
	c.client = client
	c.cluster = client.Mode() == rueidis.ClientModeCluster
	if c.cluster && o.DB != 0 {
		c.stopBG()
		client.Close()
		return nil, fmt.Errorf("coord/redis: DB %d on a cluster, which only has DB 0", o.DB)
	}
	parts := 1
	if c.cluster {
		parts = o.Partitions
	}
	c.l = newLayout(c.cluster, parts)
	if err := c.loadScripts(ctx); err != nil {
		// Not fatal: a NOSCRIPT falls back to EVAL.
		o.Logger.Warn("coord/redis: could not load scripts (EVAL falls back)", "err", err)
	}
	c.ps = newPubSub(c)
	if err := c.ps.start(ctx); err != nil {
		c.stopBG()
		c.ps.stop()
		client.Close()
		return nil, err
	}
	c.sweep.init(c)
	c.wg.Add(1)
	go c.sweep.run()
	c.joins.init(c)
	return c, nil
}

// clientOption is the rueidis configuration of the command client (and,
// single=true, of a client of one cluster node for its pub/sub).
func (c *Coordinator) clientOption(addrs []string, single bool) rueidis.ClientOption {
	o := c.opts
	co := rueidis.ClientOption{
		InitAddress:       addrs,
		Username:          o.Username,
		Password:          o.Password,
		SelectDB:          o.DB,
		ClientName:        "meshfast",
		Dialer:            net.Dialer{Timeout: o.DialTimeout, KeepAlive: o.KeepAlive},
		ConnWriteTimeout:  o.WriteTimeout,
		MaxFlushDelay:     o.MaxFlushDelay,
		PipelineMultiplex: o.PipelineMultiplex,
		// Reads would otherwise be retried until their context ends while
		// Redis is down; every call fails the same way instead, fast, and
		// the caller decides.
		DisableRetry: true,
		// No client-side caching: see "Client-side caching" in doc.go.
		DisableCache:      true,
		ForceSingleClient: single,
		DialCtxFn:         c.dial,
		ClusterOption:     rueidis.ClusterOption{ShardsRefreshInterval: o.TopologyRefreshInterval},
	}
	return co
}

// dial counts the writes and reads of every connection (Stats.Writes: the
// flushes of the auto-pipeline, each carrying all the commands queued
// then).
func (c *Coordinator) dial(ctx context.Context, addr string, d *net.Dialer, _ *tls.Config) (net.Conn, error) {
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, st: &c.st}, nil
}

type countingConn struct {
	net.Conn
	st *stats
}

func (cc *countingConn) Write(p []byte) (int, error) {
	cc.st.writes.Add(1)
	return cc.Conn.Write(p)
}

func (cc *countingConn) Read(p []byte) (int, error) {
	cc.st.reads.Add(1)
	return cc.Conn.Read(p)
}

// Cluster reports whether the coordinator runs on a Redis Cluster.
func (c *Coordinator) Cluster() bool { return c.cluster }

// Close stops the sweeper and the pub/sub connections and closes the
// client. Queued, undelivered pub/sub messages are dropped. Idempotent.
func (c *Coordinator) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.stopBG()
		close(c.done)
		c.joins.close()
		c.ps.stop()
		c.wg.Wait()
		c.client.Close()
	})
	return nil
}

// check is the start of every call: ErrClosed after Close, the context's
// error once it is done.
func (c *Coordinator) check(ctx context.Context, op string) error {
	if c.closed.Load() {
		return fmt.Errorf("coord/redis: %s: %w", op, coord.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("coord/redis: %s: %w", op, err)
	}
	return nil
}

// fail maps a rueidis error to the coord contract: the context's error when
// it ended, ErrClosed after Close, ErrUnavailable for everything else (the
// network, Redis down, an error reply).
func (c *Coordinator) fail(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	c.st.errors.Add(1)
	switch {
	case c.closed.Load():
		return fmt.Errorf("coord/redis: %s: %w", op, coord.ErrClosed)
	case ctx.Err() != nil:
		return fmt.Errorf("coord/redis: %s: %w", op, ctx.Err())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("coord/redis: %s: %w", op, err)
	}
	return fmt.Errorf("coord/redis: %s: %w: %w", op, coord.ErrUnavailable, err)
}

// run sends ops as one round trip (one Do, or one DoMulti: rueidis writes
// them together, and on a cluster sends each node's share in parallel) and
// returns their results in order. A script reply NOSCRIPT is retried once
// through EVAL.
func (c *Coordinator) run(ctx context.Context, ops ...rop) []rueidis.RedisResult {
	var res []rueidis.RedisResult
	if len(ops) == 1 {
		res = []rueidis.RedisResult{c.client.Do(ctx, ops[0].cmd)}
	} else {
		cmds := make([]rueidis.Completed, len(ops))
		for i := range ops {
			cmds[i] = ops[i].cmd
		}
		res = c.client.DoMulti(ctx, cmds...)
	}
	c.st.roundTrip(len(ops))
	for i := range res {
		if ops[i].s != nil && isNoScript(res[i].Error()) {
			c.reloadScripts()
			c.st.roundTrip(1)
			res[i] = ops[i].s.lua.Exec(ctx, c.client, ops[i].keys, ops[i].args)
		}
	}
	return res
}

// run1 is run for one op, without the slice.
func (c *Coordinator) run1(ctx context.Context, o rop) rueidis.RedisResult {
	r := c.client.Do(ctx, o.cmd)
	c.st.roundTrip(1)
	if o.s != nil && isNoScript(r.Error()) {
		c.reloadScripts()
		c.st.roundTrip(1)
		r = o.s.lua.Exec(ctx, c.client, o.keys, o.args)
	}
	return r
}

// firstErr returns the first error of results, a Redis nil not counting.
func firstErr(res []rueidis.RedisResult) error {
	for _, r := range res {
		if err := r.Error(); err != nil && !rueidis.IsRedisNil(err) {
			return err
		}
	}
	return nil
}

func nonNil(r rueidis.RedisResult) error {
	if err := r.Error(); err != nil && !rueidis.IsRedisNil(err) {
		return err
	}
	return nil
}

func invalid(op, what string) error {
	return fmt.Errorf("coord/redis: %s: %s: %w", op, what, coord.ErrInvalidArgument)
}

// Health reports whether Redis answers (one PING) and every pub/sub
// connection is established and resubscribed: what /health shows. It
// fails with an error wrapping coord.ErrUnavailable, naming what is down.
func (c *Coordinator) Health(ctx context.Context) error {
	const op = "Health"
	if err := c.check(ctx, op); err != nil {
		return err
	}
	if err := c.run1(ctx, cmdOp(c.client.B().Ping().Build())).Error(); err != nil {
		return c.fail(ctx, op, err)
	}
	if down := c.ps.down(); down != "" {
		return fmt.Errorf("coord/redis: %s: pub/sub connection to %s: %w", op, down, coord.ErrUnavailable)
	}
	return nil
}
