package server

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const edgeFile = `
max_connections_per_ip: 20
max_rooms_per_connection: 50
max_subscriptions_per_connection: 100
command_rate: 12.5
command_burst: 40
auth_timeout: 3s
private: true
allowed_origins: ["https://app.example.com", "https://*.example.com"]
expose:
  rooms:
    - pattern: '^chat:'
    - name: lobby
api:
  keys:
    - 0123456789abcdef-one
    - 0123456789abcdef-two
  addr: 127.0.0.1:9090
  prefix: /admin
  max_body_size: 256KiB
jwt:
  hmac_secret: "a-test-secret-of-at-least-32-bytes!!"
  audience: chat
  issuer: backend
  query_param: jwt
proxy:
  command_url: http://127.0.0.1:3000/mesh/command
  timeout: 2s
  max_concurrency: 64
`

// TestLoadEdgeKeys reads every key of the edge tier from a file.
func TestLoadEdgeKeys(t *testing.T) {
	l := NewLoader()
	if err := l.LoadFile("edge.yaml", []byte(edgeFile)); err != nil {
		t.Fatal(err)
	}
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	c := l.Settings.Node
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"max_connections_per_ip", c.Engine.MaxConnectionsPerIP, 20},
		{"max_rooms_per_connection", c.Mesh.MaxRoomsPerConnection, 50},
		{"max_subscriptions_per_connection", c.Mesh.MaxSubscriptionsPerConnection, 100},
		{"command_rate", c.Mesh.CommandRate, 12.5},
		{"command_burst", c.Mesh.CommandBurst, 40},
		{"auth_timeout", c.Mesh.AuthTimeout, 3 * time.Second},
		{"private", c.Mesh.Private, true},
		{"allowed_origins", c.Mesh.AllowedOrigins, []string{"https://app.example.com", "https://*.example.com"}},
		{"expose.rooms", len(c.Expose.Rooms), 2},
		{"expose.rooms[1]", c.Expose.Rooms[1].Name, "lobby"},
		{"api.keys", c.API.Keys, []string{"0123456789abcdef-one", "0123456789abcdef-two"}},
		{"api.addr", c.API.Addr, "127.0.0.1:9090"},
		{"api.prefix", c.API.Prefix, "/admin"},
		{"api.max_body_size", c.API.MaxBodySize, 256 << 10},
		{"jwt.hmac_secret", c.JWT.HMACSecret, "a-test-secret-of-at-least-32-bytes!!"},
		{"jwt.audience", c.JWT.Audience, "chat"},
		{"jwt.issuer", c.JWT.Issuer, "backend"},
		{"jwt.query_param", c.JWT.QueryParam, "jwt"},
		{"proxy.command_url", c.Proxy.CommandURL, "http://127.0.0.1:3000/mesh/command"},
		{"proxy.timeout", c.Proxy.Timeout, 2 * time.Second},
		{"proxy.max_concurrency", c.Proxy.MaxConcurrency, 64},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

// TestEdgeKeyErrors checks that a bad value of an edge key, or a
// combination Validate refuses, stops the load naming the file, the line
// and the key.
func TestEdgeKeyErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(notPEM, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, want string }{
		{"command_rate: fast\n", `c.yaml:1: command_rate: "fast": not a number`},
		{"command_rate: -1\n", `c.yaml:1: command_rate: "-1": negative`},
		{"max_connections_per_ip: -2\n", `c.yaml:1: max_connections_per_ip: "-2": negative`},
		{"auth_timeout: 0s\n", `c.yaml:1: auth_timeout: "0s": must be more than 0`},
		{"private: maybe\n", `c.yaml:1: private: "maybe": not a boolean`},
		{"allowed_origins: https://a.com\n", `c.yaml:1: allowed_origins: not a list`},
		{"allowed_origins: [\"\"]\n", `c.yaml:1: allowed_origins[0]: "": empty`},
		{"allowed_origins: [\"https://a.com/path\"]\n", `c.yaml:1: allowed_origins: server: invalid configuration: mesh: invalid options: AllowedOrigins`},
		{"api:\n  keys: [short]\n", `c.yaml:2: api.keys: server: invalid configuration: an API key of 5 characters: at least 16`},
		{"api:\n  keys: {a: b}\n", `c.yaml:2: api.keys: not a list`},
		{"api:\n  prefix: api/\n", `c.yaml:2: api.prefix: server: invalid configuration: API prefix "api/"`},
		{"api:\n  addr: nowhere\n", `c.yaml:2: api.addr: server: invalid configuration: API address "nowhere"`},
		{"api:\n  max_body_size: lots\n", `c.yaml:2: api.max_body_size: "lots": not a size`},
		{"api:\n  kyes: []\n", `c.yaml:2: unknown key "api.kyes" (did you mean "api.keys"?)`},
		{"jwt:\n  hmac_secret: short\n", `c.yaml:2: jwt.hmac_secret: server: invalid configuration: JWT HMAC secret of 5 bytes: at least 32`},
		{"jwt:\n  rsa_public_key_file: " + filepath.Join(dir, "none.pem") + "\n", `jwt.rsa_public_key_file: server: invalid configuration: JWT RSA public key: open`},
		{"jwt:\n  rsa_public_key_file: " + notPEM + "\n", `jwt.rsa_public_key_file: server: invalid configuration: JWT RSA public key: ` + notPEM},
		{"jwt:\n  query_param: \"\"\n", `c.yaml:2: jwt.query_param: "": empty`},
		{"proxy:\n  command_url: ftp://x\n", `c.yaml:2: proxy.command_url: server: invalid configuration: proxy command URL "ftp://x"`},
		{"proxy:\n  timeout: 0s\n", `c.yaml:2: proxy.timeout: "0s": must be more than 0`},
		{"proxy:\n  max_concurrency: 0\n", `c.yaml:2: proxy.max_concurrency: "0": must be 1 or more`},
		{"expose:\n  rooms:\n    - name: a\n      ttl: 1s\n", `c.yaml:4: expose.rooms[0]: unknown key "ttl"`},
		// Only the combination is wrong: no single key is blamed.
		{"jwt:\n  hmac_secret: a-test-secret-of-at-least-32-bytes!!\nproxy:\n  connect_url: http://127.0.0.1:1/c\n", `JWT and a connect proxy both authenticate connections: choose one`},
	} {
		l := NewLoader()
		err := l.LoadFile("c.yaml", []byte(tc.file))
		if err == nil {
			err = l.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v\nwant %s", tc.file, err, tc.want)
		}
	}
}

// TestEdgePrecedence checks flag > env > file for edge keys, lists from
// the environment, and that -print-config's settings hide the secrets.
func TestEdgePrecedence(t *testing.T) {
	l := NewLoader()
	if err := l.LoadFile("p.yaml", []byte("command_rate: 1\napi:\n  keys: [file-key-0123456789]\n  addr: 127.0.0.1:1\njwt:\n  hmac_secret: file-secret-of-at-least-32-bytes!!!!\n")); err != nil {
		t.Fatal(err)
	}
	if err := l.LoadEnv(env("MESHFAST_COMMAND_RATE", "2", "MESHFAST_API_KEYS", "[env-key-0123456789a, env-key-0123456789b]",
		"MESHFAST_API_ADDR", "127.0.0.1:2")); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	l.Flags(fs)
	if err := l.ParseFlags(fs, []string{"-command-rate", "3", "-api-addr", "127.0.0.1:3"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	c := l.Settings.Node
	if c.Mesh.CommandRate != 3 || c.API.Addr != "127.0.0.1:3" || !reflect.DeepEqual(c.API.Keys, []string{"env-key-0123456789a", "env-key-0123456789b"}) ||
		c.JWT.HMACSecret != "file-secret-of-at-least-32-bytes!!!!" {
		t.Fatalf("flag 3, flag addr, env keys, file secret: %v %q %v %q", c.Mesh.CommandRate, c.API.Addr, c.API.Keys, c.JWT.HMACSecret)
	}
	b, err := l.Settings.Redacted().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"env-key", "file-secret"} {
		if strings.Contains(string(b), secret) {
			t.Fatalf("-print-config shows a secret:\n%s", b)
		}
	}
	if !strings.Contains(string(b), "hmac_secret: <redacted>") || strings.Count(string(b), "- <redacted>") != 2 {
		t.Fatalf("secrets not shown as redacted:\n%s", b)
	}
	if l.Settings.Node.API.Keys[0] != "env-key-0123456789a" {
		t.Fatal("Redacted changed the settings it was called on")
	}
	for _, k := range Keys() {
		if k.Secret != (k.Path == "api.keys" || k.Path == "jwt.hmac_secret") {
			t.Errorf("%s: secret %v", k.Path, k.Secret)
		}
	}
}
