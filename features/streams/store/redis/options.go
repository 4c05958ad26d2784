package redis

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Defaults of Options, each named after its field.
const (
	// DefaultAddr is the Redis of Options.Addrs when neither Addrs nor
	// Client is given.
	DefaultAddr = "127.0.0.1:6379"
	// DefaultPrefix starts every key (see the package documentation).
	DefaultPrefix = "zps:"
	// DefaultDialTimeout bounds a connection attempt.
	DefaultDialTimeout = 2 * time.Second
	// DefaultWriteTimeout bounds how long a connection may wait for Redis
	// to take or answer a command before it is closed and its calls fail.
	DefaultWriteTimeout = 3 * time.Second
	// DefaultAppendPrune is how many expired events an append removes from
	// its room's oldest end at most.
	DefaultAppendPrune = 16
	// DefaultPruneBatch is the most events one step of Prune removes.
	DefaultPruneBatch = 1000
)

// Options configures a Redis store. The zero value connects to DefaultAddr.
type Options struct {
	// Addrs are the address of a single Redis or some nodes of a Redis
	// Cluster (detected). Empty means DefaultAddr. coord/redis.ParseURL
	// reads a redis:// URL into the same fields.
	Addrs    []string
	Username string
	Password string
	DB       int

	// Client, if set, is used instead of connecting (Addrs and the
	// connection options must then be zero); Close leaves it open.
	Client rueidis.Client

	// Prefix starts every key; it may not hold '{' or '}'. Empty means
	// DefaultPrefix.
	Prefix string

	DialTimeout  time.Duration
	WriteTimeout time.Duration

	// AppendPrune: see DefaultAppendPrune. Negative turns it off.
	AppendPrune int
	// PruneBatch: see DefaultPruneBatch.
	PruneBatch int
}

// ErrClientConflict: Options.Client with connection options.
var ErrClientConflict = errors.New("streams/store/redis: Client given with Addrs or credentials")

// Validate reports conflicting options.
func (o Options) Validate() error {
	if o.Client != nil && (len(o.Addrs) > 0 || o.Username != "" || o.Password != "" || o.DB != 0) {
		return ErrClientConflict
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		return fmt.Errorf("streams/store/redis: prefix %q holds a brace, which would change the hash tag", o.Prefix)
	}
	if o.DB < 0 || o.PruneBatch < 0 || o.DialTimeout < 0 || o.WriteTimeout < 0 {
		return errors.New("streams/store/redis: negative DB, PruneBatch or timeout")
	}
	return nil
}

func (o Options) withDefaults() Options {
	if len(o.Addrs) == 0 && o.Client == nil {
		o.Addrs = []string{DefaultAddr}
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.AppendPrune == 0 {
		o.AppendPrune = DefaultAppendPrune
	} else if o.AppendPrune < 0 {
		o.AppendPrune = 0
	}
	if o.PruneBatch == 0 {
		o.PruneBatch = DefaultPruneBatch
	}
	return o
}
