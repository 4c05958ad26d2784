package perf

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram is a merged, single-owner latency histogram: what Tracker.Snapshot
// returns and what the load generator merges across worker processes. Values
// are nanoseconds.
//
// A Histogram is not safe for concurrent use; it has no lock because it is
// either a private snapshot or owned by one goroutine. Use a Tracker to record
// from many goroutines. Create one with NewHistogram, DecodeHistogram or
// Tracker.Snapshot; the zero value is only a target for UnmarshalJSON or
// UnmarshalText.
type Histogram struct {
	h       *hdr.Histogram
	sum     int64 // sum of recorded (clamped) ns; approximate after binary decode
	highest int64 // clamp ceiling, cached from h
}

// Summary is the usual latency digest of a Histogram. Durations are the upper
// edge of the histogram bucket holding the quantile, so they are exact to
// Options.SignificantDigits.
type Summary struct {
	Count int64         `json:"count"`
	Sum   time.Duration `json:"sum_ns"`
	Min   time.Duration `json:"min_ns"`
	Mean  time.Duration `json:"mean_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
}

// NewHistogram returns an empty Histogram with the geometry of opts
// (opts.Shards is ignored). Use it as the accumulator when merging encoded
// histograms from several processes.
func NewHistogram(opts Options) (*Histogram, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return newHistogram(opts.withDefaults()), nil
}

// newHistogram builds a Histogram from already-validated options.
func newHistogram(o Options) *Histogram {
	return wrap(hdr.New(int64(o.Lowest), int64(o.Highest), o.SignificantDigits), 0)
}

func wrap(h *hdr.Histogram, sum int64) *Histogram {
	return &Histogram{h: h, sum: sum, highest: h.HighestTrackableValue()}
}

// clampValue maps any ns value into the recordable range: negatives (clock
// steps) become 0 and values past highest become highest. hdrhistogram
// returns a freshly formatted error for out-of-range values, which would
// allocate on the record path and silently drop the count.
func clampValue(ns, highest int64) int64 {
	if ns < 0 {
		return 0
	}
	if ns > highest {
		return highest
	}
	return ns
}

// Record adds one observation of d.
func (h *Histogram) Record(d time.Duration) { h.RecordValue(int64(d)) }

// RecordValue adds one observation of ns nanoseconds, clamped into range.
func (h *Histogram) RecordValue(ns int64) {
	ns = clampValue(ns, h.highest)
	// Cannot fail: ns is in range and a count of 1 cannot overflow in
	// practice (2^63 observations).
	_ = h.h.RecordValue(ns)
	h.sum += ns
}

// Count is the number of recorded values.
func (h *Histogram) Count() int64 { return h.h.TotalCount() }

// Sum is the total of all recorded values. It is exact for histograms built
// by recording or JSON decoding, and Mean×Count for ones decoded from the
// binary HdrHistogram format, which does not carry a sum.
func (h *Histogram) Sum() time.Duration { return time.Duration(h.sum) }

// Quantile returns the value at quantile q in [0, 1] (0.99 is p99), or 0 for
// an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	return time.Duration(h.h.ValueAtQuantile(q * 100))
}

// Min returns the smallest recorded value (to histogram precision).
func (h *Histogram) Min() time.Duration {
	if h.h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.h.Min())
}

// Max returns the largest recorded value (to histogram precision).
func (h *Histogram) Max() time.Duration {
	if h.h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.h.Max())
}

// Mean returns the mean of the recorded values, from the exact sum.
func (h *Histogram) Mean() time.Duration {
	n := h.h.TotalCount()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum / n)
}

// Summary computes the standard digest in one call.
func (h *Histogram) Summary() Summary {
	return Summary{
		Count: h.Count(),
		Sum:   h.Sum(),
		Min:   h.Min(),
		Mean:  h.Mean(),
		P50:   h.Quantile(0.5),
		P90:   h.Quantile(0.9),
		P99:   h.Quantile(0.99),
		P999:  h.Quantile(0.999),
		Max:   h.Max(),
	}
}

// Merge adds every value of other into h and returns how many values fell
// outside h's range and were dropped (only possible when the geometries
// differ). other is not modified.
func (h *Histogram) Merge(other *Histogram) (dropped int64) {
	dropped = h.h.Merge(other.h)
	h.sum += other.sum
	return dropped
}

// Reset empties h, keeping its geometry and storage.
func (h *Histogram) Reset() {
	h.h.Reset()
	h.sum = 0
}

// Equal reports whether h and other have the same geometry and counts. Sum
// is not compared: a binary-decoded sum is approximate.
func (h *Histogram) Equal(other *Histogram) bool { return h.h.Equals(other.h) }

// HDR exposes the underlying hdrhistogram for reports this package does not
// cover (percentile distributions, log writers). Mutating it bypasses Sum.
func (h *Histogram) HDR() *hdr.Histogram { return h.h }

// Encode returns h in the HdrHistogram V2 compressed, base64 form, readable
// by HdrHistogram tools in every language. The form does not carry Sum.
func (h *Histogram) Encode() ([]byte, error) {
	b, err := h.h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		return nil, fmt.Errorf("perf: encode histogram: %w", err)
	}
	return b, nil
}

// DecodeHistogram parses the output of Encode (or of any HdrHistogram V2
// compressed encoder). Sum is approximated as Mean×Count. Errors wrap
// ErrCorruptHistogram.
func DecodeHistogram(b []byte) (*Histogram, error) {
	h, err := hdr.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptHistogram, err)
	}
	return wrap(h, int64(math.Round(h.Mean()*float64(h.TotalCount())))), nil
}

// MarshalText implements encoding.TextMarshaler with the Encode form.
func (h *Histogram) MarshalText() ([]byte, error) { return h.Encode() }

// UnmarshalText implements encoding.TextUnmarshaler with the Encode form.
func (h *Histogram) UnmarshalText(b []byte) error {
	d, err := DecodeHistogram(b)
	if err != nil {
		return err
	}
	*h = *d
	return nil
}

// histogramJSON is the wire shape of MarshalJSON: a readable summary for
// humans plus the lossless encoding for merging. Only Sum and HDR are read
// back; the rest is derived.
type histogramJSON struct {
	Summary
	HDR string `json:"hdr"`
}

// MarshalJSON writes the Summary fields plus "hdr", the Encode form, so a
// load-generator result file is both readable and mergeable.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	enc, err := h.Encode()
	if err != nil {
		return nil, err
	}
	return json.Marshal(histogramJSON{Summary: h.Summary(), HDR: string(enc)})
}

// UnmarshalJSON reads MarshalJSON output, or a bare JSON string holding the
// Encode form. An exact "sum_ns" is kept when present.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var v histogramJSON
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &v.HDR); err != nil {
			return fmt.Errorf("%w: %w", ErrCorruptHistogram, err)
		}
	} else if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("%w: %w", ErrCorruptHistogram, err)
	}
	d, err := DecodeHistogram([]byte(v.HDR))
	if err != nil {
		return err
	}
	if v.Sum != 0 {
		d.sum = int64(v.Sum)
	}
	*h = *d
	return nil
}
