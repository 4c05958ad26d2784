package server

import (
	"crypto/rsa"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The edge tier's settings: the server HTTP API (api.go), authentication
// with JWTs (jwt.go) and the proxies to a backend (proxy.go).

// Defaults of the edge settings' fields.
const (
	// DefaultAPIPrefix is the default of APIConfig.Prefix.
	DefaultAPIPrefix = "/api"
	// DefaultAPIMaxBodySize is the default of APIConfig.MaxBodySize.
	DefaultAPIMaxBodySize = 1 << 20
	// DefaultJWTQueryParam is the default of JWTConfig.QueryParam.
	DefaultJWTQueryParam = "token"
	// DefaultProxyTimeout is the default of ProxyConfig.Timeout.
	DefaultProxyTimeout = 5 * time.Second
	// DefaultProxyMaxConcurrency is the default of ProxyConfig.MaxConcurrency.
	DefaultProxyMaxConcurrency = 256
	// DefaultProxyMaxResponseSize is the most a backend's answer may weigh.
	DefaultProxyMaxResponseSize = 1 << 20
)

// APIConfig configures the server HTTP API, with which a backend publishes,
// sends and manages connections (api.go lists the endpoints).
type APIConfig struct {
	// Keys are the API keys a request must carry, one of them, as
	// "Authorization: Bearer KEY" or "X-API-Key: KEY". None turns the API
	// off: its paths answer 404.
	Keys []string
	// Addr, if set, serves the API on a listener of its own (an admin
	// address, "127.0.0.1:9090"), not on the clients' port. Empty serves
	// it on the clients' port under Prefix.
	Addr string
	// Prefix starts every endpoint's path. Zero means DefaultAPIPrefix.
	Prefix string
	// MaxBodySize bounds a request's body; past it the answer is 413. On
	// the clients' port the engine reads no body over its MaxMessageSize
	// either, so the lower of the two applies there. Zero means
	// DefaultAPIMaxBodySize.
	MaxBodySize int
}

// JWTConfig turns on authentication with a JSON Web Token at connect
// (jwt.go): set HMACSecret (HS256) or RSAPublicKeyFile (RS256), or both.
type JWTConfig struct {
	// HMACSecret verifies HS256 tokens.
	HMACSecret string
	// RSAPublicKeyFile names a PEM file holding the RSA public key that
	// verifies RS256 tokens; it is read when the configuration is loaded.
	RSAPublicKeyFile string
	// Audience and Issuer, if set, must be the token's aud (one of them)
	// and iss.
	Audience string
	Issuer   string
	// QueryParam is the query parameter a token may come in when it is not
	// in the Authorization header (browsers cannot set headers on a
	// WebSocket). Zero means DefaultJWTQueryParam.
	QueryParam string

	rsaKey *rsa.PublicKey // RSAPublicKeyFile's, read by loadRSAKey
}

// Enabled reports whether tokens are required at connect.
func (j JWTConfig) Enabled() bool { return j.HMACSecret != "" || j.RSAPublicKeyFile != "" }

// loadRSAKey reads RSAPublicKeyFile into the config.
func (j *JWTConfig) loadRSAKey() error {
	j.rsaKey = nil
	if j.RSAPublicKeyFile == "" {
		return nil
	}
	b, err := os.ReadFile(j.RSAPublicKeyFile)
	if err != nil {
		return err
	}
	k, err := jwt.ParseRSAPublicKeyFromPEM(b)
	if err != nil {
		return fmt.Errorf("%s: %w", j.RSAPublicKeyFile, err)
	}
	j.rsaKey = k
	return nil
}

// ProxyConfig forwards to a backend over HTTP what no Go code answers
// (proxy.go): commands no handler is registered for, and, when JWT is not
// used, the decision whether a connection may connect and who it is.
type ProxyConfig struct {
	// CommandURL receives an HTTP POST for each command no handler is
	// registered for; its answer is the command's reply. Empty: such
	// commands are answered ENOTFOUND, as in Mesh.
	CommandURL string
	// ConnectURL receives an HTTP POST for each new connection, after the
	// upgrade, and accepts it (with a user and metadata) or refuses it.
	// Empty: connections are not asked about. Not with JWT.
	ConnectURL string
	// Timeout bounds one call to the backend, the wait for a free slot
	// included. Zero means DefaultProxyTimeout.
	Timeout time.Duration
	// MaxConcurrency caps the calls this node makes to the backend at
	// once; more wait for a slot, within Timeout. Zero means
	// DefaultProxyMaxConcurrency.
	MaxConcurrency int
}

func (a APIConfig) validate() error {
	if a.Prefix != "" && (!strings.HasPrefix(a.Prefix, "/") || strings.HasSuffix(a.Prefix, "/") || strings.ContainsAny(a.Prefix, "?# ")) {
		return fmt.Errorf("%w: API prefix %q: a path starting with / and not ending with one", ErrInvalidConfig, a.Prefix)
	}
	if a.MaxBodySize < 0 {
		return fmt.Errorf("%w: API max body size is negative", ErrInvalidConfig)
	}
	if a.Addr != "" {
		if _, _, err := net.SplitHostPort(a.Addr); err != nil {
			return fmt.Errorf("%w: API address %q: %w", ErrInvalidConfig, a.Addr, err)
		}
	}
	for _, k := range a.Keys {
		if len(k) < minAPIKeyLen {
			return fmt.Errorf("%w: an API key of %d characters: at least %d", ErrInvalidConfig, len(k), minAPIKeyLen)
		}
	}
	return nil
}

// minAPIKeyLen refuses keys short enough to guess.
const minAPIKeyLen = 16

func (j JWTConfig) validate() error {
	if j.HMACSecret != "" && len(j.HMACSecret) < minHMACSecretLen {
		return fmt.Errorf("%w: JWT HMAC secret of %d bytes: at least %d (RFC 7518 3.2: as long as the hash)", ErrInvalidConfig, len(j.HMACSecret), minHMACSecretLen)
	}
	if j.RSAPublicKeyFile != "" {
		if err := j.loadRSAKey(); err != nil {
			return fmt.Errorf("%w: JWT RSA public key: %w", ErrInvalidConfig, err)
		}
	}
	return nil
}

// minHMACSecretLen is HS256's hash size.
const minHMACSecretLen = 32

func (p ProxyConfig) validate() error {
	for _, u := range []struct{ name, v string }{{"command", p.CommandURL}, {"connect", p.ConnectURL}} {
		if u.v == "" {
			continue
		}
		pu, err := url.Parse(u.v)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return fmt.Errorf("%w: proxy %s URL %q: an http:// or https:// URL", ErrInvalidConfig, u.name, u.v)
		}
	}
	if p.Timeout < 0 || p.MaxConcurrency < 0 {
		return fmt.Errorf("%w: proxy timeout or concurrency is negative", ErrInvalidConfig)
	}
	return nil
}

func (p ProxyConfig) withDefaults() ProxyConfig {
	if p.Timeout <= 0 {
		p.Timeout = DefaultProxyTimeout
	}
	if p.MaxConcurrency <= 0 {
		p.MaxConcurrency = DefaultProxyMaxConcurrency
	}
	return p
}

func (a APIConfig) withDefaults() APIConfig {
	if a.Prefix == "" {
		a.Prefix = DefaultAPIPrefix
	}
	if a.MaxBodySize <= 0 {
		a.MaxBodySize = DefaultAPIMaxBodySize
	}
	return a
}

func (j JWTConfig) withDefaults() JWTConfig {
	if j.QueryParam == "" {
		j.QueryParam = DefaultJWTQueryParam
	}
	return j
}
