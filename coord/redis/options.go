package redis

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults of Options, each named after its field.
const (
	// DefaultAddr is the Redis of Options.Addrs when none is given.
	DefaultAddr = "127.0.0.1:6379"
	// DefaultDialTimeout bounds a connection attempt.
	DefaultDialTimeout = 2 * time.Second
	// DefaultKeepAlive is the TCP keepalive of every connection; rueidis
	// also PINGs an idle connection at this period.
	DefaultKeepAlive = time.Second
	// DefaultWriteTimeout bounds how long a connection may wait for Redis
	// to take or answer a command before it is closed and its calls fail:
	// the worst case of a call on a silently dead Redis, when the caller's
	// context allows that long.
	DefaultWriteTimeout = 3 * time.Second
	// DefaultMaxFlushDelay lets the auto-pipeline collect the commands of
	// concurrent callers for up to this long before writing them in one
	// syscall (rueidis' MaxFlushDelay; a lone caller is never delayed).
	// See perf/ and bench_test.go for the measurement behind it.
	DefaultMaxFlushDelay = 100 * time.Microsecond
	// DefaultPipelineMultiplex gives 2^1 = 2 pipelined connections per Redis
	// node: concurrent callers share them, so each write carries many
	// commands.
	DefaultPipelineMultiplex = 1
	// DefaultPartitions is the number of key partitions on a cluster (see
	// layout in keys.go). A single Redis has one.
	DefaultPartitions = 16
	// DefaultSweepInterval is the shortest time between two presence sweeps
	// of this node.
	DefaultSweepInterval = 100 * time.Millisecond
	// DefaultIdleSweepInterval is the longest time between two presence
	// sweeps of this node, which is how late an expiry is noticed when the
	// node that armed it died.
	DefaultIdleSweepInterval = time.Second
	// DefaultSweepBatch is the most rooms one sweep script handles.
	DefaultSweepBatch = 256
	// DefaultPubSubQueue is the capacity of each pub/sub delivery queue.
	DefaultPubSubQueue = 4096
	// DefaultResubscribeBatch is the most channels of one (S)SUBSCRIBE sent
	// when a pub/sub connection is re-established (centrifuge's 512).
	DefaultResubscribeBatch = 512
	// DefaultReconnectDelay is the first wait before re-establishing a
	// broken pub/sub connection; it doubles up to DefaultMaxReconnectDelay.
	DefaultReconnectDelay    = 100 * time.Millisecond
	DefaultMaxReconnectDelay = 2 * time.Second
	// DefaultTopologyRefreshInterval is how often a cluster's slot map is
	// re-read to follow slot migrations and failovers (it is also re-read
	// on a MOVED reply or a server-side SUNSUBSCRIBE).
	DefaultTopologyRefreshInterval = 5 * time.Second
	// DefaultProbeInterval is how long a pub/sub connection may receive
	// nothing before it checks, with a probe it publishes to itself, that
	// it still receives (centrifuge's 30 s): a connection that silently
	// stopped receiving is replaced within two intervals.
	DefaultProbeInterval = 30 * time.Second
	// MinProbeInterval is the shortest ProbeInterval Validate accepts.
	MinProbeInterval = 100 * time.Millisecond
	// DefaultUnsubscribeDelay is how long the node stays subscribed in
	// Redis to a topic after its last handler left (centrifuge's 1 s), so
	// that a topic left and taken again costs no round trip.
	DefaultUnsubscribeDelay = time.Second
	// DefaultJoinBatches is how many JoinRoom batches may be in flight at
	// once: with one, every join that arrives during a round trip waits for
	// it; a second lets the next batch leave while the first is answered
	// (see join.go and BenchmarkJoinStorm).
	DefaultJoinBatches = 2
	// DefaultJoinBatch is the most joins one script of a batch carries; a
	// larger batch is split into several scripts of one round trip, so
	// that no script holds Redis for long.
	DefaultJoinBatch = 256
	// DefaultCASAttempts bounds the compare-and-set retries of
	// UpdateRoomMetadata and of SetRecord on a value meshfast did not write
	// (ErrConflict after that many lost races).
	DefaultCASAttempts = 1000
)

// Options configures a Redis coordinator. The zero value connects to a
// Redis on DefaultAddr.
type Options struct {
	// Addrs are Redis addresses ("host:port"): the one address of a single
	// Redis, or one or more nodes of a Redis Cluster (detected). Empty
	// means DefaultAddr.
	Addrs []string
	// Username, Password and DB (single Redis only) authenticate and
	// select the database.
	Username string
	Password string
	DB       int

	DialTimeout       time.Duration
	KeepAlive         time.Duration
	WriteTimeout      time.Duration
	MaxFlushDelay     time.Duration
	PipelineMultiplex int

	// Partitions is the number of key partitions on a cluster (1..1024).
	Partitions int

	SweepInterval     time.Duration
	IdleSweepInterval time.Duration
	SweepBatch        int

	// PubSubWorkers is the number of goroutines that run pub/sub handlers;
	// a topic always goes to the same one, which keeps its order. Zero
	// means GOMAXPROCS.
	PubSubWorkers int
	// PubSubQueue is the capacity of each worker's queue. A message that
	// finds it full is dropped and counted (Stats.PubSubDropped): the
	// connection's reader must never block (rueidis issue 596).
	PubSubQueue      int
	ResubscribeBatch int
	// ProbeInterval: see DefaultProbeInterval. Negative turns probes off.
	ProbeInterval time.Duration
	// UnsubscribeDelay: see DefaultUnsubscribeDelay. Negative drops a
	// topic's Redis subscription with its last handler.
	UnsubscribeDelay        time.Duration
	ReconnectDelay          time.Duration
	MaxReconnectDelay       time.Duration
	TopologyRefreshInterval time.Duration
	CASAttempts             int

	// JoinBatches is the number of JoinRoom batches in flight at once, and
	// JoinBatch the most joins per script (see DefaultJoinBatches).
	JoinBatches int
	JoinBatch   int

	// Logger reports background failures (a pub/sub connection lost, a
	// sweep that failed) at warn, and recoveries at info. Nil means none.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if len(o.Addrs) == 0 {
		o.Addrs = []string{DefaultAddr}
	}
	def(&o.DialTimeout, DefaultDialTimeout)
	def(&o.KeepAlive, DefaultKeepAlive)
	def(&o.WriteTimeout, DefaultWriteTimeout)
	if o.MaxFlushDelay == 0 {
		o.MaxFlushDelay = DefaultMaxFlushDelay
	} else if o.MaxFlushDelay < 0 {
		o.MaxFlushDelay = 0 // explicitly off
	}
	if o.PipelineMultiplex == 0 {
		o.PipelineMultiplex = DefaultPipelineMultiplex
	} else if o.PipelineMultiplex < 0 {
		o.PipelineMultiplex = -1 // one connection (rueidis reads 0 as its default)
	}
	defInt(&o.Partitions, DefaultPartitions)
	def(&o.SweepInterval, DefaultSweepInterval)
	def(&o.IdleSweepInterval, DefaultIdleSweepInterval)
	defInt(&o.SweepBatch, DefaultSweepBatch)
	defInt(&o.PubSubQueue, DefaultPubSubQueue)
	defInt(&o.ResubscribeBatch, DefaultResubscribeBatch)
	if o.ProbeInterval == 0 {
		o.ProbeInterval = DefaultProbeInterval
	}
	if o.UnsubscribeDelay == 0 {
		o.UnsubscribeDelay = DefaultUnsubscribeDelay
	}
	def(&o.ReconnectDelay, DefaultReconnectDelay)
	def(&o.MaxReconnectDelay, DefaultMaxReconnectDelay)
	def(&o.TopologyRefreshInterval, DefaultTopologyRefreshInterval)
	defInt(&o.CASAttempts, DefaultCASAttempts)
	defInt(&o.JoinBatches, DefaultJoinBatches)
	defInt(&o.JoinBatch, DefaultJoinBatch)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate reports options that cannot work together. Zero values are
// fine: they mean the defaults.
func (o Options) Validate() error {
	for _, a := range o.Addrs {
		if a == "" {
			return errors.New("coord/redis: empty Redis address")
		}
	}
	if o.Partitions > 1024 {
		return fmt.Errorf("coord/redis: Partitions %d > 1024", o.Partitions)
	}
	if o.DB < 0 {
		return fmt.Errorf("coord/redis: DB %d < 0", o.DB)
	}
	if o.SweepInterval > 0 && o.IdleSweepInterval > 0 && o.SweepInterval > o.IdleSweepInterval {
		return fmt.Errorf("coord/redis: SweepInterval %v > IdleSweepInterval %v", o.SweepInterval, o.IdleSweepInterval)
	}
	if o.ProbeInterval > 0 && o.ProbeInterval < MinProbeInterval {
		return fmt.Errorf("coord/redis: ProbeInterval %v < %v", o.ProbeInterval, MinProbeInterval)
	}
	if o.ReconnectDelay > 0 && o.MaxReconnectDelay > 0 && o.ReconnectDelay > o.MaxReconnectDelay {
		return fmt.Errorf("coord/redis: ReconnectDelay %v > MaxReconnectDelay %v", o.ReconnectDelay, o.MaxReconnectDelay)
	}
	return nil
}
