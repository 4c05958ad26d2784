package zps

import (
	"fmt"
	"time"
)

// isoLayout is JavaScript's Date.prototype.toISOString: UTC, milliseconds.
const isoLayout = "2006-01-02T15:04:05.000Z"

// AppendTime appends t as JavaScript's toISOString writes it
// ("2025-01-02T03:04:05.678Z"), truncated to the millisecond, without
// quotes. A zero time is written as the zero time (year 1).
func AppendTime(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, isoLayout)
}

// ParseTime reads an RFC 3339 time, toISOString's included, truncated to
// the millisecond.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: time %q: %w", ErrInvalidEvent, s, err)
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		// An offset can carry a valid local time out of the years that
		// toISOString's four digits (and RFC 3339) can write back.
		return time.Time{}, fmt.Errorf("%w: time %q: year %d in UTC", ErrInvalidEvent, s, y)
	}
	return Millis(t), nil
}

// Millis truncates t to the millisecond, in UTC: the precision of an
// envelope's times on the wire and in every store, so that a time read
// back compares == to the one written.
func Millis(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMilli(t.UnixMilli()).UTC()
}
