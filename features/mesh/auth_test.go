package mesh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/coord/memory"
	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/internal/testutil"
)

// tokenAuth is an Authenticator as an application would write one: the
// token comes in the query string or as a bearer header; "alice" and
// "bob" are users, "boom" panics, anything else is refused with 401 and a
// challenge. It puts what it saw of the request into the metadata, so the
// tests can check that it saw it.
func tokenAuth(r *engine.Request) (Identity, error) {
	tok := r.QueryValue("token")
	if tok == "" {
		tok = strings.TrimPrefix(string(r.Header("Authorization")), "Bearer ")
	}
	switch tok {
	case "alice", "bob":
	case "boom":
		panic("authenticator bug")
	case "":
		return Identity{}, Refuse(401, "token required", `WWW-Authenticate: Bearer realm="mesh"`)
	default:
		return Identity{}, errors.New("unknown token " + tok)
	}
	return Identity{
		User:   tok,
		Claims: map[string]string{"role": "member"},
		Metadata: map[string]any{
			"user":   tok,
			"path":   string(r.Path),
			"origin": string(r.Header("Origin")),
			"cookie": r.Cookie("session"),
			"local":  strings.HasPrefix(remote(r), "127.0.0.1:"),
		},
	}, nil
}

// whoami answers with what a command handler sees of its connection.
func whoami(c *Context) (any, error) {
	meta, err := c.Server.ConnectionMetadata(c, c.Conn.ID())
	if err != nil {
		return nil, err
	}
	return map[string]any{"user": c.Conn.User(), "claims": c.Conn.Claims(), "meta": meta}, nil
}

func TestAuthenticateRefuses(t *testing.T) {
	t.Parallel()
	var logs logLines
	s := startServer(t, Options{Authenticate: tokenAuth, Logger: logs.logger()})
	// no token: the application's 401 with its challenge
	_, resp, err := dialWireWith(t, s, "/", nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("no token: %v %v", resp, err)
	}
	if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="mesh"` {
		t.Fatalf("WWW-Authenticate %q", got)
	}
	if body, _ := io.ReadAll(resp.Body); !strings.Contains(string(body), "token required") {
		t.Fatalf("body %q", body)
	}
	// a plain error: 401 Unauthorized, and its text only in the log
	_, resp, err = dialWireWith(t, s, "/?token=mallory", nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("bad token: %v %v", resp, err)
	}
	if body, _ := io.ReadAll(resp.Body); strings.Contains(string(body), "mallory") {
		t.Fatalf("the error's text reached the client: %q", body)
	}
	logs.expect(t, "status=401 err=unknown token mallory")
}

// A panicking Authenticate answers 500 and the loops go on serving: every
// loop gets a panic, and then upgrades.
func TestAuthenticatePanics(t *testing.T) {
	t.Parallel()
	var logs logLines
	s := startServer(t, Options{Authenticate: tokenAuth, Logger: logs.logger()})
	for i := 0; i < 2*fastEngine.Loops; i++ {
		_, resp, err := dialWireWith(t, s, "/?token=boom", nil)
		if err == nil || resp == nil || resp.StatusCode != 500 {
			t.Fatalf("panicking Authenticate: %v %v", resp, err)
		}
	}
	logs.expect(t, "Authenticate panicked; answered 500 remote=")
	logs.expect(t, "panic=authenticator bug")
	for i := 0; i < 2*fastEngine.Loops; i++ {
		w, _, err := dialWireWith(t, s, "/?token=alice", nil)
		if err != nil {
			t.Fatalf("after the panics: %v", err)
		}
		w.welcome(s)
	}
}

// An accepted connection has its user and claims on mesh.Connection and
// its metadata in the coordinator before its first command, whether the
// connection is registered on the loop or by a worker.
func TestAuthenticateAccepts(t *testing.T) {
	t.Parallel()
	for _, slow := range []bool{false, true} {
		t.Run(fmt.Sprint("slow registration ", slow), func(t *testing.T) {
			o := Options{Authenticate: tokenAuth}
			var co *slowRegistry
			if slow {
				co = &slowRegistry{Coordinator: memory.New(memory.Options{}), gate: make(chan struct{})}
				t.Cleanup(func() { _ = co.Close() }) // after the server's cleanup
				o.Coordinator = co
			}
			s := startServer(t, o)
			s.Expose("whoami", whoami)
			h := http.Header{"Origin": {"https://app.example.com"}, "Cookie": {"a=1; session=s3cr3t"}}
			w, _, err := dialWireWith(t, s, "/?token=alice", h)
			if err != nil {
				t.Fatal(err)
			}
			meta := `{"cookie":"s3cr3t","local":true,"origin":"https://app.example.com","path":"/","user":"alice"}`
			// sent at once, before registration is done on a slow coordinator
			w.send(`{"id":1,"command":"mesh/get-my-connection-metadata","payload":{}}`)
			w.send(`{"id":2,"command":"whoami"}`)
			if slow {
				// Nothing until it is registered: the commands wait for
				// the metadata, and the id is told once it can be routed.
				w.silent(30 * time.Millisecond)
				close(co.gate)
			}
			first := w.next()
			if !strings.HasPrefix(first, `{"command":"mesh/assign-id","payload":"conn-`) {
				t.Fatalf("first frame %s", first)
			}
			_ = json.Unmarshal([]byte(first), &struct{ Payload *string }{&w.id})
			if got, want := w.next(), `{"id":1,"command":"mesh/get-my-connection-metadata","payload":{"metadata":`+meta+`}}`; got != want {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
			if got, want := w.next(), `{"id":2,"command":"whoami","payload":{"claims":{"role":"member"},"meta":`+meta+`,"user":"alice"}}`; got != want {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
			if c := s.Connection(w.id); c == nil || c.User() != "alice" {
				t.Fatalf("Connection(%s) = %v", w.id, c)
			}
		})
	}
}

// slowRegistry is the memory coordinator with registrations held until
// gate closes: what a remote coordinator's round trip looks like to the
// connection being registered. It is not a coord.LocalRegistry, so the
// server registers on a worker.
type slowRegistry struct {
	coord.Coordinator
	gate chan struct{}
}

func (r *slowRegistry) RegisterConnection(ctx context.Context, connID, nodeID string) error {
	select {
	case <-r.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return r.Coordinator.RegisterConnection(ctx, connID, nodeID)
}

// Identity.Verify: the upgrade is accepted, commands wait for Verify, and
// then run with its identity, or the connection is closed with its code
// and they never run.
func TestAuthenticateVerify(t *testing.T) {
	t.Parallel()
	var logs logLines
	verdicts := map[string]chan error{}
	var mu sync.Mutex
	verdict := func(tok string) chan error {
		mu.Lock()
		defer mu.Unlock()
		if verdicts[tok] == nil {
			verdicts[tok] = make(chan error, 1)
		}
		return verdicts[tok]
	}
	s := startServer(t, Options{AuthTimeout: 200 * time.Millisecond, Logger: logs.logger(),
		Authenticate: func(r *engine.Request) (Identity, error) {
			tok := r.QueryValue("session") // copied: r is gone when Verify runs
			return Identity{Verify: func(ctx context.Context) (Identity, error) {
				select {
				case err := <-verdict(tok):
					if err != nil {
						return Identity{}, err
					}
				case <-ctx.Done():
					return Identity{}, ctx.Err()
				}
				if tok == "panic" {
					panic("verify bug")
				}
				return Identity{User: "u-" + tok, Metadata: json.RawMessage(`{"via":"backend"}`)}, nil
			}}, nil
		}})
	var ran atomic.Int32
	s.Expose("whoami", func(c *Context) (any, error) { ran.Add(1); return whoami(c) })
	s.ExposeConcurrent("whoami-now", func(c *Context) (any, error) { ran.Add(1); return whoami(c) })

	// accepted: the commands sent while Verify runs wait, then see its identity
	w, _, err := dialWireWith(t, s, "/?session=good", nil)
	if err != nil {
		t.Fatal(err)
	}
	w.send(`{"id":1,"command":"whoami-now"}`)
	w.send(`{"id":2,"command":"whoami"}`)
	w.silent(30 * time.Millisecond) // not even the id: it is sent once verified
	if ran.Load() != 0 {
		t.Fatal("a command ran before Verify answered")
	}
	verdict("good") <- nil
	w.welcome(s)
	want := `{"claims":null,"meta":{"via":"backend"},"user":"u-good"}`
	for i, cmd := range []string{"whoami-now", "whoami"} {
		if got := w.next(); got != fmt.Sprintf(`{"id":%d,"command":"%s","payload":%s}`, i+1, cmd, want) {
			t.Fatalf("reply %d: %s", i+1, got)
		}
	}

	// refused: closed with the chosen code, waiting commands dropped unrun
	ran.Store(0)
	for _, tc := range []struct {
		tok    string
		err    error
		code   websocket.StatusCode
		reason string
		log    string
	}{
		{"bad", errors.New("backend says no"), 1008, "authentication failed", "close=1008 err=backend says no"},
		{"banned", &CloseError{Code: 4003, Reason: "banned"}, 4003, "banned", "close=4003"},
		{"bad-code", &CloseError{Code: 1005, Reason: "x"}, 1008, "authentication failed", "close=1008"},
		{"panic", nil, 1011, "internal error", "Verify panicked: verify bug"},
		{"slow", nil, 1008, "authentication failed", "context deadline exceeded"}, // AuthTimeout
	} {
		w, _, err := dialWireWith(t, s, "/?session="+tc.tok, nil)
		if err != nil {
			t.Fatal(err)
		}
		w.send(`{"id":1,"command":"whoami"}`)
		w.send(`{"id":2,"command":"whoami-now"}`)
		if tc.tok != "slow" {
			verdict(tc.tok) <- tc.err
		}
		_, err = w.read(5 * time.Second)
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != tc.code || ce.Reason != tc.reason {
			t.Fatalf("%s: %v, want close %d %q", tc.tok, err, tc.code, tc.reason)
		}
		logs.expect(t, tc.log)
	}
	if ran.Load() != 0 {
		t.Fatalf("%d commands of refused connections ran", ran.Load())
	}
	// a client that goes away while Verify waits: Verify's context ends
	// with the connection, not at AuthTimeout
	hungUp := make(chan error, 1)
	s2 := startServer(t, Options{AuthTimeout: time.Hour, Authenticate: func(r *engine.Request) (Identity, error) {
		return Identity{Verify: func(ctx context.Context) (Identity, error) {
			<-ctx.Done()
			hungUp <- ctx.Err()
			return Identity{}, ctx.Err()
		}}, nil
	}})
	s2.Expose("whoami", func(c *Context) (any, error) { ran.Add(1); return whoami(c) })
	w, _, err = dialWireWith(t, s2, "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	w.send(`{"id":1,"command":"whoami"}`)
	w.c.CloseNow()
	if err := recv(t, hungUp, "Verify's end"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify's context ended with %v", err)
	}
	if ran.Load() != 0 {
		t.Fatal("the command of a connection gone before Verify answered ran")
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := s.inflight.Load(); n != 0 {
			return fmt.Errorf("%d commands still counted in flight", n)
		}
		return nil
	})
}

// The Origin allow-list: listed origins (exact or by pattern) upgrade,
// others get 403, and a request without Origin (not a browser) upgrades.
func TestAllowedOrigins(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{AllowedOrigins: []string{"https://app.example.com", "http://localhost:3000", "https://*.example.org"}})
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"https://app.example.com", true},
		{"HTTPS://App.Example.com", true},
		{"http://localhost:3000", true},
		{"https://a.example.org", true},
		{"https://a.b.example.org", true},
		{"", true},
		{"https://evil.example.com", false},
		{"http://app.example.com", false},
		{"https://app.example.com:8443", false},
		{"http://localhost:3001", false},
		{"https://example.org", false},
		{"https://evil.com/.example.org", false},
		{"https://a.example.org.evil.com", false},
		{"https://a.example.org:443", false},
		{"null", false},
	} {
		var h http.Header
		if tc.origin != "" {
			h = http.Header{"Origin": {tc.origin}}
		}
		w, resp, err := dialWireWith(t, s, "/", h)
		if tc.ok {
			if err != nil {
				t.Fatalf("origin %q refused: %v", tc.origin, err)
			}
			w.welcome(s)
			continue
		}
		if err == nil || resp == nil || resp.StatusCode != 403 {
			t.Fatalf("origin %q: %v %v, want 403", tc.origin, resp, err)
		}
	}
}

// logLines collects log lines, "msg key=value ...", for tests that check
// what was logged. It is the slog.Handler of logger().
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logger() *slog.Logger { return slog.New(l) }

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logLines) WithGroup(string) slog.Handler            { return l }

func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += fmt.Sprintf(" %s=%v", a.Key, a.Value.Any())
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	return nil
}

// expect waits until a line containing want was logged.
func (l *logLines) expect(t testing.TB, want string) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, line := range l.lines {
			if strings.Contains(line, want) {
				return nil
			}
		}
		return fmt.Errorf("no log line contains %q in %q", want, l.lines)
	})
}

// count is the number of lines containing s.
func (l *logLines) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}
