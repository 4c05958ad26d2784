package redis

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"slices"
	"strconv"

	"github.com/meshfast/meshfast/coord"
)

// canonicalHash returns a hash that two JSON values share exactly when
// coord.JSONEqual says they are equal: objects by their set of keys (the
// last of duplicate keys wins), arrays in order, numbers as float64 (1, 1.0
// and 1e0 are one number, -0 is 0, out-of-range numbers are ±Inf), strings
// after unescaping. Empty input is null. It lets the record script decide
// "unchanged" in Redis, in the same round trip as the write (FuzzCanonical
// checks the equivalence).
func canonicalHash(v []byte) (string, error) {
	if len(v) == 0 {
		v = []byte("null")
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return "", fmt.Errorf("%w: %v", coord.ErrInvalidJSON, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", fmt.Errorf("%w: trailing data", coord.ErrInvalidJSON)
	}
	h := sha256.New()
	writeCanonical(h, x)
	return string(h.Sum(nil)[:16]), nil
}

// nullHash is the canonical hash of null, which a missing record counts as.
var nullHash, _ = canonicalHash([]byte("null"))

// writeCanonical writes an unambiguous encoding: a type byte, then lengths
// before variable parts, so that no two values share an encoding.
func writeCanonical(h hash.Hash, x any) {
	var buf [32]byte
	switch v := x.(type) {
	case nil:
		h.Write([]byte{'z'})
	case bool:
		if v {
			h.Write([]byte{'t'})
		} else {
			h.Write([]byte{'f'})
		}
	case json.Number:
		// ParseFloat yields ±Inf with ErrRange beyond float64, as
		// JavaScript's JSON.parse does.
		f, _ := strconv.ParseFloat(string(v), 64)
		if f == 0 {
			f = 0 // -0
		}
		b := append(buf[:0], 'n')
		b = strconv.AppendFloat(b, f, 'g', -1, 64)
		h.Write(append(b, ';'))
	case string:
		writeString(h, 's', v)
	case []any:
		b := append(buf[:0], 'a')
		h.Write(strconv.AppendInt(b, int64(len(v)), 10))
		for _, e := range v {
			writeCanonical(h, e)
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b := append(buf[:0], 'o')
		h.Write(strconv.AppendInt(b, int64(len(v)), 10))
		for _, k := range keys {
			writeString(h, 'k', k)
			writeCanonical(h, v[k])
		}
	}
}

func writeString(h hash.Hash, tag byte, s string) {
	var buf [24]byte
	b := append(buf[:0], tag)
	b = strconv.AppendInt(b, int64(len(s)), 10)
	h.Write(append(b, ':'))
	io.WriteString(h, s)
}
