package redis

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// DefaultPort is the port of an address given without one.
const DefaultPort = "6379"

// ParseURL reads the Redis a node coordinates through (meshfast -redis,
// MESHFAST_REDIS_URL, the configuration's redis.url) into Options with
// Addrs, Username, Password and DB set and every other field zero:
//
//	redis://127.0.0.1:6379               one Redis
//	redis://:secret@10.0.0.5/2           with a password, database 2
//	redis://user:secret@10.0.0.5:6379    with an ACL user
//	127.0.0.1:6379                       the scheme may be left out
//	redis://10.0.0.1:7000,redis://10.0.0.2:7000   several nodes of a cluster
//	10.0.0.1:7000,10.0.0.2:7000          the same
//
// A Redis Cluster is detected when the coordinator connects, from any of
// its nodes, so a cluster's URL is one or more of its nodes'. Every URL of
// a list must give the same user, password and database (or none after
// the first). TLS (rediss://) is not supported.
func ParseURL(s string) (Options, error) {
	var o Options
	set := false
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		addr, user, pass, db, hasAuth, err := parseOne(part)
		if err != nil {
			return Options{}, fmt.Errorf("coord/redis: Redis URL %q: %w", part, err)
		}
		if set && hasAuth && (user != o.Username || pass != o.Password || db != o.DB) {
			return Options{}, fmt.Errorf("coord/redis: Redis URL %q: user, password or database differs from the first URL's", part)
		}
		if !set {
			o.Username, o.Password, o.DB = user, pass, db
			set = true
		}
		o.Addrs = append(o.Addrs, addr)
	}
	if len(o.Addrs) == 0 {
		return Options{}, fmt.Errorf("coord/redis: empty Redis URL")
	}
	return o, nil
}

// parseOne reads one address or URL; hasAuth reports that it gave a user,
// password or database.
func parseOne(s string) (addr, user, pass string, db int, hasAuth bool, err error) {
	if !strings.Contains(s, "://") {
		s = "redis://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", "", "", 0, false, err
	}
	switch u.Scheme {
	case "redis":
	case "rediss":
		return "", "", "", 0, false, fmt.Errorf("TLS (rediss://) is not supported")
	default:
		return "", "", "", 0, false, fmt.Errorf("scheme %q: want redis://", u.Scheme)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", "", "", 0, false, fmt.Errorf("no query or fragment expected")
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return "", "", "", 0, false, fmt.Errorf("no host")
	}
	if port == "" {
		port = DefaultPort
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", "", 0, false, fmt.Errorf("port %q", port)
	}
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
		hasAuth = true
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		db, err = strconv.Atoi(p)
		if err != nil || db < 0 {
			return "", "", "", 0, false, fmt.Errorf("database %q: want a number", p)
		}
		hasAuth = true
	}
	return net.JoinHostPort(host, port), user, pass, db, hasAuth, nil
}
