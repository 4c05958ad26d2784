package server

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/meshfast/meshfast/client"
	"github.com/meshfast/meshfast/protocol"
)

const testSecret = "a-test-secret-of-at-least-32-bytes!!"

// hsToken signs claims with HS256 and testSecret, with an exp an hour
// ahead unless claims has one.
func hsToken(t *testing.T, claims map[string]any) string {
	t.Helper()
	return signToken(t, jwt.SigningMethodHS256, []byte(testSecret), claims)
}

func signToken(t *testing.T, m jwt.SigningMethod, key any, claims map[string]any) string {
	t.Helper()
	c := jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// handshake dials the node's WebSocket path with the query and header and
// returns the HTTP status and headers of a refusal (0 when it upgraded).
func handshake(t *testing.T, n *Node, query string, h http.Header) (int, http.Header, string) {
	t.Helper()
	c := client.New("ws://"+n.Addr().String()+"/"+query, client.Options{NoReconnect: true, Header: h,
		Dialer: (&net.Dialer{KeepAlive: -1}).DialContext})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.Connect(ctx)
	if err == nil {
		_ = c.Close()
		return 0, nil, ""
	}
	// The client does not keep the refusal's response: ask again over HTTP.
	req, _ := http.NewRequest("GET", "http://"+n.Addr().String()+"/"+query, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, herr := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if herr != nil {
		t.Fatalf("connect failed (%v) but the handshake over HTTP too: %v", err, herr)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestJWT checks authentication at connect with HS256 and RS256 tokens:
// accepted in the query string or the Authorization header, with the
// claims as the user, the metadata and the permissions; refused with 401
// and a WWW-Authenticate header saying why before the upgrade.
func TestJWT(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	pemFile := filepath.Join(t.TempDir(), "pub.pem")
	if err := os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{JWT: JWTConfig{HMACSecret: testSecret, RSAPublicKeyFile: pemFile, Audience: "chat", Issuer: "backend"}}
	cfg.Expose.Channels = []ChannelExposure{{Exposure: Exposure{Pattern: mustRE("^chat:")}}}
	cfg.Expose.WritableRecords = []Exposure{{Pattern: mustRE("^topic:")}}
	cfg.Expose.Records = []Exposure{{Pattern: mustRE("^profile:")}}
	cfg.Expose.Presence = []PresenceExposure{{Exposure: Exposure{Pattern: mustRE("^chat:")}, TTL: time.Minute}}
	n := startNode(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	good := map[string]any{"sub": "alice", "aud": "chat", "iss": "backend"}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}

	t.Run("refused", func(t *testing.T) {
		otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
		for _, tc := range []struct {
			name  string
			query string
			h     http.Header
			why   string
		}{
			{"missing", "", nil, "a token is required"},
			{"garbage", "?token=abc", nil, "invalid token"},
			{"bad signature", "?token=" + signToken(t, jwt.SigningMethodHS256, []byte("another-secret-of-at-least-32-bytes"), good), nil, "token signature invalid"},
			{"other RSA key", "?token=" + signToken(t, jwt.SigningMethodRS256, otherKey, good), nil, "token signature invalid"},
			{"expired", "?token=" + hsToken(t, with(map[string]any{"exp": time.Now().Add(-time.Minute).Unix()})), nil, "token expired"},
			{"no exp", "?token=" + hsToken(t, with(map[string]any{"exp": nil})), nil, "token has no expiry"},
			{"not yet", "?token=" + hsToken(t, with(map[string]any{"nbf": time.Now().Add(time.Hour).Unix()})), nil, "token not valid yet"},
			{"audience", "?token=" + hsToken(t, with(map[string]any{"aud": "other"})), nil, "token not for this audience"},
			{"issuer", "?token=" + hsToken(t, with(map[string]any{"iss": "evil"})), nil, "token from another issuer"},
			{"alg none", "?token=" + signToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good), nil, "token signature invalid"},
			{"HS384", "?token=" + signToken(t, jwt.SigningMethodHS384, []byte(testSecret), good), nil, "token signature invalid"},
			{"not bearer", "", http.Header{"Authorization": {"Basic abc"}}, "not a Bearer token"},
			{"bad allow", "?token=" + hsToken(t, with(map[string]any{"allow": map[string]any{"channels": []string{"("}}})), nil, "allow.channels"},
			{"sub not a string", "?token=" + hsToken(t, with(map[string]any{"sub": 5})), nil, "sub is not a string"},
		} {
			st, h, body := handshake(t, n, tc.query, tc.h)
			if st != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), `Bearer realm="meshfast"`) || !strings.Contains(body, tc.why) {
				t.Errorf("%s: %d %q %q, want 401 %q", tc.name, st, h.Get("WWW-Authenticate"), body, tc.why)
			}
		}
		// Each case tried twice: by the client, then over HTTP for the answer.
		if m := get(t, n, "/metrics"); !strings.Contains(m, "mesh_connections_refused_total 28") {
			t.Errorf("refusals not counted:\n%s", grepLines(m, "refused"))
		}
	})

	t.Run("accepted with claims", func(t *testing.T) {
		tok := hsToken(t, with(map[string]any{"meta": map[string]any{"name": "Alice"},
			"allow": map[string]any{"channels": []string{"^chat:public$"}, "rooms": []string{"^chat:"}, "write_records": []string{"^topic:a$"}, "records": []string{}}}))
		for _, c := range []*client.Client{
			connectTo(t, n, "?token="+tok, nil),
			connectTo(t, n, "", http.Header{"Authorization": {"Bearer " + tok}}),
		} {
			m, err := c.Command(ctx, "mesh/get-my-connection-metadata", map[string]any{})
			if err != nil || string(m) != `{"metadata":{"name":"Alice"}}` {
				t.Fatalf("metadata from the meta claim: %s %v", m, err)
			}
			if r, err := c.SubscribeChannel(ctx, "chat:public", func(string) {}); err != nil || !r.Success {
				t.Fatalf("an allowed channel: %+v %v", r, err)
			}
			if r, err := c.SubscribeChannel(ctx, "chat:secret", func(string) {}); err != nil || r.Success {
				t.Fatalf("a channel the token does not allow: %+v %v", r, err)
			}
			if r, err := c.JoinRoom(ctx, "chat:a"); err != nil || !r.Success {
				t.Fatalf("an allowed room: %+v %v", r, err)
			}
			var ce *protocol.CodeError
			if _, err := c.JoinRoom(ctx, "staff"); !errors.As(err, &ce) || ce.Code != protocol.CodeForbidden {
				t.Fatalf("a room the token does not allow: %v", err)
			}
			if ok, err := c.PublishRecordUpdate(ctx, "topic:a", "hi"); !ok || err != nil {
				t.Fatalf("an allowed record write: %v %v", ok, err)
			}
			if ok, err := c.PublishRecordUpdate(ctx, "topic:b", "hi"); ok || err == nil {
				t.Fatalf("a record write the token does not allow: %v %v", ok, err)
			}
			if r, err := c.SubscribeRecord(ctx, "profile:1", client.RecordFull, func(client.RecordUpdate) {}); err != nil || r.Success {
				t.Fatalf("an empty records list allows none: %+v %v", r, err)
			}
			if r, err := c.SubscribePresence(ctx, "chat:a", func(client.PresenceUpdate) {}); err != nil || !r.Success {
				t.Fatalf("presence, which the token does not restrict: %+v %v", r, err)
			}
		}
		// No allow claim: the exposures alone decide.
		c := connectTo(t, n, "?token="+hsToken(t, good), nil)
		if r, err := c.SubscribeChannel(ctx, "chat:secret", func(string) {}); err != nil || !r.Success {
			t.Fatalf("no allow claim: %+v %v", r, err)
		}
		if r, err := c.JoinRoom(ctx, "staff"); err != nil || !r.Success {
			t.Fatalf("no allow claim, any room: %+v %v", r, err)
		}
	})

	t.Run("RS256 and the user id", func(t *testing.T) {
		c := connectTo(t, n, "?token="+signToken(t, jwt.SigningMethodRS256, rsaKey, map[string]any{"sub": "carol", "aud": "chat", "iss": "backend"}), nil)
		got := pushes(c, "dm")
		testEventually(t, func() error { return n.Mesh.SendToUser(ctx, "carol", "dm", "hello") }, got, `"hello"`)
	})
}

// testEventually calls send until ch gets want: the user's subscription
// is taken just after the connection registers.
func testEventually(t *testing.T, send func() error, ch chan string, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := send(); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-ch:
			if got != want {
				t.Fatalf("got %s, want %s", got, want)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("no %s", want)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func mustRE(s string) *regexp.Regexp { return regexp.MustCompile(s) }
