package engine

import (
	"bytes"
	"fmt"
	"strings"
)

// Origins is an allow-list of the Origin header browsers send with a
// handshake (RFC 6454): a page of another site can open a WebSocket or an
// EventSource to any server, with the user's cookies, and only the server
// can refuse it. Handlers check it in CheckHandshake; a request without
// Origin is not from a browser page and is theirs to judge. Parse it once
// (ParseOrigins); Allows runs on the loop for every handshake and does not
// allocate.
type Origins []originRule

// originRule is one entry: an exact origin (suffix empty) or "scheme://*."
// followed by suffix, which matches any subdomain of it.
type originRule struct {
	exact  []byte // lower case
	scheme []byte // "https://" of a pattern, lower case
	suffix []byte // ".example.com" of a pattern, lower case, port included
}

// ParseOrigins parses an allow-list, each entry an origin as browsers send
// it (scheme://host[:port], "null" by name) or "scheme://*." and a domain
// for any subdomain of it; nil for an empty list, which allows every
// origin. An entry no browser would send is an error, not a silent miss.
func ParseOrigins(list []string) (Origins, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := make(Origins, 0, len(list))
	for _, s := range list {
		r, err := parseOrigin(s)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// parseOrigin checks one entry: what a browser sends as Origin, lower case
// scheme://host[:port] with no path, or a "*." pattern in place of the
// host's first labels. A mistake here would refuse every browser, or let
// through what was meant to be kept out, without a word, so it is refused.
func parseOrigin(s string) (originRule, error) {
	if s == "null" {
		// What sandboxed frames and file: pages send. Every such page shares
		// it, so allowing it allows them all; it must be asked for by name.
		return originRule{exact: []byte(s)}, nil
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || scheme == "" || rest == "" {
		return originRule{}, fmt.Errorf("%q is not an origin (scheme://host[:port])", s)
	}
	for i := 0; i < len(scheme); i++ {
		if c := scheme[i]; !(isLetter(c) || (i > 0 && (isDigit(c) || c == '+' || c == '-' || c == '.'))) {
			return originRule{}, fmt.Errorf("%q: bad scheme %q", s, scheme)
		}
	}
	if strings.ContainsAny(rest, "/?#@ ") {
		return originRule{}, fmt.Errorf("%q: an origin has no path, query, user or trailing slash (browsers send %q)",
			s, scheme+"://"+strings.TrimRight(strings.SplitN(rest, "/", 2)[0], "/"))
	}
	host := rest
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.Contains(rest[i:], "]") {
		host = rest[:i]
		port := rest[i+1:]
		if port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return originRule{}, fmt.Errorf("%q: bad port %q", s, port)
		}
	}
	lower := strings.ToLower(s)
	if !strings.Contains(host, "*") {
		if host == "" {
			return originRule{}, fmt.Errorf("%q: no host", s)
		}
		return originRule{exact: []byte(lower)}, nil
	}
	if !strings.HasPrefix(host, "*.") || strings.Count(host, "*") != 1 || len(host) < 3 {
		return originRule{}, fmt.Errorf("%q: a pattern is \"*.\" then a domain, e.g. %q", s, scheme+"://*.example.com")
	}
	i := strings.IndexByte(lower, '*')
	return originRule{scheme: []byte(lower[:i]), suffix: []byte(lower[i+1:])}, nil
}

// Allows reports whether origin (as sent) matches an entry, ignoring case.
// A nil list allows every origin.
func (o Origins) Allows(origin []byte) bool {
	if o == nil {
		return true
	}
	for i := range o {
		r := &o[i]
		if r.exact != nil {
			if bytes.EqualFold(origin, r.exact) {
				return true
			}
			continue
		}
		// "https://" + one or more host labels + ".example.com[:port]"
		n := len(origin) - len(r.suffix)
		if n <= len(r.scheme) || !bytes.EqualFold(origin[:len(r.scheme)], r.scheme) || !bytes.EqualFold(origin[n:], r.suffix) {
			continue
		}
		if hostChars(origin[len(r.scheme):n]) {
			return true
		}
	}
	return false
}

// hostChars reports whether b could be the leading labels of a host name:
// letters, digits, '-' and '.', so that a '*' never stands for a port, a
// user or another scheme's separator.
func hostChars(b []byte) bool {
	for _, c := range b {
		if !isLetter(c) && !isDigit(c) && c != '-' && c != '.' {
			return false
		}
	}
	return len(b) > 0 && b[0] != '.'
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
