package perf

import (
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"time"
)

// Defaults for Options. Each names the field it fills when that field is zero.
const (
	// DefaultLowest is the default of Options.Lowest: the resolution floor of
	// a latency histogram.
	DefaultLowest = time.Microsecond

	// DefaultHighest is the default of Options.Highest: the largest latency
	// tracked without clamping.
	DefaultHighest = 60 * time.Second

	// DefaultSignificantDigits is the default of Options.SignificantDigits:
	// 3 significant decimal digits (0.1% error). See Options.Lowest for the
	// absolute floor on resolution.
	DefaultSignificantDigits = 3

	// MaxShards caps Options.Shards. A default-geometry shard costs 144 KiB
	// (18,432 int64 buckets), so the cap is already 36 MiB per tracker.
	MaxShards = 256
)

// Options configures a Tracker or an empty Histogram. The zero value is valid
// and gives the documented defaults.
type Options struct {
	// Lowest is the resolution floor. Values are bucketed in units of Lowest
	// rounded down to a power of two (512ns for 1µs), so a value is exact to
	// within max(that unit, value×10^-SignificantDigits): ±512ns (5%) at
	// 10µs, 0.1% from ~0.5ms up with the defaults. Set 1ns for 0.1% across
	// the board at ~1.5x the memory. Values below Lowest are still counted.
	// Zero means DefaultLowest (1µs).
	Lowest time.Duration

	// Highest is the largest latency tracked exactly. Larger values (stalls,
	// clock jumps) are clamped to Highest instead of being dropped, so a
	// count is never lost. Zero means DefaultHighest (60s).
	Highest time.Duration

	// SignificantDigits is the decimal precision kept for every value, 1..5.
	// Memory grows ~10x per digit. Zero means DefaultSignificantDigits (3).
	SignificantDigits int

	// Shards is the number of independent histograms a Tracker records into,
	// rounded up to a power of two and capped at MaxShards. Give it at least
	// the number of event loops that call RecordOn so each loop owns a shard.
	// Ignored by NewHistogram. Zero means runtime.GOMAXPROCS(0) at
	// construction (at most MaxShards).
	Shards int
}

// withDefaults returns o with every zero field replaced by its default.
func (o Options) withDefaults() Options {
	if o.Lowest == 0 {
		o.Lowest = DefaultLowest
	}
	if o.Highest == 0 {
		o.Highest = DefaultHighest
	}
	if o.SignificantDigits == 0 {
		o.SignificantDigits = DefaultSignificantDigits
	}
	if o.Shards == 0 {
		o.Shards = min(runtime.GOMAXPROCS(0), MaxShards)
	}
	return o
}

// Validate reports whether o, after defaults are applied, describes a
// histogram geometry hdrhistogram can build. Errors wrap ErrInvalidOptions.
func (o Options) Validate() error {
	o = o.withDefaults()
	switch {
	case o.Lowest < 1:
		return fmt.Errorf("%w: Lowest %v must be positive", ErrInvalidOptions, o.Lowest)
	case o.Highest < 2*o.Lowest:
		return fmt.Errorf("%w: Highest %v must be at least twice Lowest %v", ErrInvalidOptions, o.Highest, o.Lowest)
	case o.SignificantDigits < 1 || o.SignificantDigits > 5:
		return fmt.Errorf("%w: SignificantDigits %d must be in 1..5", ErrInvalidOptions, o.SignificantDigits)
	case bits.Len64(uint64(o.Lowest))-1+bits.Len64(uint64(2*math.Pow10(o.SignificantDigits)-1))-1 > 61:
		// hdrhistogram's own limit: past it the bucket math overflows int64
		// and hdrhistogram.New panics.
		return fmt.Errorf("%w: Lowest %v too large for %d digits", ErrInvalidOptions, o.Lowest, o.SignificantDigits)
	case o.Shards < 0 || o.Shards > MaxShards:
		return fmt.Errorf("%w: Shards %d must be in 0..%d", ErrInvalidOptions, o.Shards, MaxShards)
	}
	return nil
}

// shardCount rounds n up to a power of two so a shard index is a mask, not a
// division, on the record path.
func shardCount(n int) int {
	s := 1
	for s < n {
		s <<= 1
	}
	return s
}
