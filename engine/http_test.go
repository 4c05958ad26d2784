package engine

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawHTTP sends req as is and returns the answer's head (status line and
// headers, CRLF-joined) and body as received, read until the server closes.
func rawHTTP(t *testing.T, e *Engine, req string) (head, body string) {
	t.Helper()
	nc, err := net.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	raw, err := io.ReadAll(nc)
	if err != nil {
		t.Fatalf("%q: %v (read %q)", req, err, raw)
	}
	h, b, ok := strings.Cut(string(raw), "\r\n\r\n")
	if !ok {
		t.Fatalf("%q: answer %q has no head", req, raw)
	}
	return h + "\r\n", b
}

func status(head string) int {
	var code int
	fmt.Sscanf(head, "HTTP/1.1 %d", &code)
	return code
}

func startHTTPEngine(t *testing.T) *Engine {
	e := New(Options{Addr: "127.0.0.1:0", Loops: 1, HandshakeTimeout: time.Minute, MaxMessageSize: 1024})
	e.Handle("/ws", Echo{})
	e.HandleHTTP("/health", e.HealthHandler(nil))
	e.HandleHTTPMethods("/echo", func(w *Response, r *Request) {
		w.Body = append([]byte(string(r.Method)+" "), r.Body...)
	}, "POST", "PUT")
	if err := startOrHang(t, e); err != nil {
		t.Fatal(err)
	}
	return e
}

// HEAD gets GET's head, Content-Length included, and no body.
func TestHTTPHead(t *testing.T) {
	t.Parallel()
	e := startHTTPEngine(t)
	getHead, getBody := rawHTTP(t, e, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
	head, body := rawHTTP(t, e, "HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
	if status(head) != 200 || body != "" {
		t.Fatalf("HEAD: %q %q, want 200 and no body", head, body)
	}
	if want := fmt.Sprintf("Content-Length: %d\r\n", len(getBody)); !strings.Contains(getHead, want) || !strings.Contains(head, want) {
		t.Fatalf("GET head %q, HEAD head %q: both should carry %q", getHead, head, want)
	}
}

// Methods a route does not serve get 405 with what it does.
func TestHTTPMethodNotAllowed(t *testing.T) {
	t.Parallel()
	e := startHTTPEngine(t)
	for _, tc := range []struct{ req, allow string }{
		{"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "Allow: GET, HEAD\r\n"},
		{"DELETE /health HTTP/1.1\r\nHost: x\r\n\r\n", "Allow: GET, HEAD\r\n"},
		{"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", "Allow: POST, PUT\r\n"},
	} {
		head, _ := rawHTTP(t, e, tc.req)
		if status(head) != 405 || !strings.Contains(head, tc.allow) || !strings.Contains(head, "Connection: close\r\n") {
			t.Errorf("%q: %q, want 405 with %q", tc.req, head, tc.allow)
		}
	}
}

// A route declared for POST gets the body (Content-Length, bounded);
// bodies the engine cannot bound before they arrive are refused. A body
// split across reads: TestHandshakeEverySplit.
func TestHTTPBody(t *testing.T) {
	t.Parallel()
	e := startHTTPEngine(t)
	nc, err := net.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprint(nc, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world")
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "POST hello world" {
		t.Fatalf("POST: %d %q", resp.StatusCode, b)
	}
	for _, tc := range []struct {
		req    string
		status int
	}{
		{"PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 200},
		{"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 411},
		{"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello", 400},
		{"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400},
		{"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
		{"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n", 413},
	} {
		if head, _ := rawHTTP(t, e, tc.req); status(head) != tc.status {
			t.Errorf("%q: %q, want %d", tc.req, head, tc.status)
		}
	}
}

// Every refusal says the connection closes, gobwas's upgrader's included.
func TestHTTPRefusalsSayConnectionClose(t *testing.T) {
	t.Parallel()
	e := startHTTPEngine(t)
	upgrade := "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	for _, tc := range []struct {
		req    string
		status int
	}{
		{"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", 426},                                                                                           // plain GET of a WebSocket path
		{"GET /ws HTTP/1.1\r\nHost: x\r\n" + upgrade + "Sec-WebSocket-Version: 13\r\n\r\n", 400},                                               // gobwas: no key
		{"GET /ws HTTP/1.1\r\nHost: x\r\n" + upgrade + "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 426}, // gobwas: version
		{"GET /ws HTTP/1.1\r\n" + upgrade + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 400},           // gobwas: no Host
		{"BLAH\r\n\r\n", 400},
		{"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404},
		{"GET /health/ HTTP/1.1\r\nHost: x\r\n\r\n", 404}, // routing is by exact path
	} {
		head, _ := rawHTTP(t, e, tc.req)
		if status(head) != tc.status || strings.Count(head, "Connection: close\r\n") != 1 {
			t.Errorf("%q:\n%s\nwant %d with one Connection: close", tc.req, head, tc.status)
		}
	}
	if head, _ := rawHTTP(t, e, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.Contains(head, "Upgrade: websocket\r\n") {
		t.Errorf("426 without the Upgrade header: %q", head)
	}
}

// A head with bare LF line ends is refused at once, not left to the
// handshake timeout (a minute here); control bytes in a header are refused.
func TestHTTPMalformedHeads(t *testing.T) {
	t.Parallel()
	e := startHTTPEngine(t)
	for _, req := range []string{
		"GET /health HTTP/1.1\nHost: x\n\n",
		"GET /health HTTP/1.1\r\nHost: x\n\n",
		"GET /health HTTP/1.1\r\nHost: x\nX: y\r\n", // incomplete: refused before the end
		"\n",
		"GET /health HTTP/1.1\r\nHost: x\x00y\r\n\r\n",
		"GET /health HTTP/1.1\r\nHo\x00st: x\r\n\r\n",
		"GET /health HTTP/1.1\r\nHost: x\ry\r\n\r\n",
		"GET /health HTTP/1.1\r\nX: \x7f\r\n\r\n",
		"GET /heal\x01th HTTP/1.1\r\nHost: x\r\n\r\n",
		"GE(T /health HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /health HTTP/1.1\r\nHost : x\r\n\r\n",
		"GET /health HTTP/1.1\r\n folded: x\r\n\r\n",
		"GET /health HTTP/1.x\r\nHost: x\r\n\r\n",
	} {
		if head, _ := rawHTTP(t, e, req); status(head) != 400 {
			t.Errorf("%q: %q, want 400", req, head)
		}
	}
	// Tabs, obs-text and empty values are fine.
	if head, _ := rawHTTP(t, e, "GET /health HTTP/1.1\r\nHost: x\r\nX: a\tb \xe9\r\nY:\r\n\r\n"); status(head) != 200 {
		t.Errorf("legal values refused: %q", head)
	}
}

func TestParseRequestHeadTable(t *testing.T) {
	var r Request
	head := "GET /p?a=1&b=x%20y&c&d= HTTP/1.1\r\nHost: h\r\nX-Tab:\tv\t\r\n\r\n"
	if err := parseRequestHead([]byte(head), &r); err != nil {
		t.Fatal(err)
	}
	if string(r.Method) != "GET" || string(r.Path) != "/p" || string(r.Header("x-tab")) != "v" {
		t.Fatalf("%q %q %q", r.Method, r.Path, r.Header("x-tab"))
	}
	for key, want := range map[string]string{"a": "1", "b": "x%20y", "c": "", "d": ""} {
		if got := r.QueryBytes(key); got == nil || string(got) != want {
			t.Errorf("QueryBytes(%q) = %q, want %q", key, got, want)
		}
	}
	if r.QueryBytes("e") != nil || r.QueryValue("b") != "x y" {
		t.Errorf("QueryBytes(e) = %q, QueryValue(b) = %q", r.QueryBytes("e"), r.QueryValue("b"))
	}
}

// FuzzParseRequestHead checks the request-head parser's promises on any
// input: no panic, and what it accepts is what the engine relies on.
func FuzzParseRequestHead(f *testing.F) {
	f.Add([]byte(goodUpgrade))
	f.Add([]byte("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("POST /echo?x=1 HTTP/1.0\r\nContent-Length: 5\r\nX: a\tb\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\nHost: x\n\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\x00\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\n folded\r\n\r\n"))
	f.Fuzz(func(t *testing.T, head []byte) {
		var r Request
		if parseRequestHead(head, &r) != nil {
			return
		}
		if !isToken(r.Method) || len(r.Path) == 0 || r.Path[0] != '/' || !isVisible(r.URI) ||
			!bytes.HasPrefix(r.URI, r.Path) || len(r.Proto) != 8 {
			t.Fatalf("accepted a bad request line: %q %q %q", r.Method, r.URI, r.Proto)
		}
		pos := 0
		r.VisitHeaders(func(name, value []byte) {
			if !isToken(name) || !isFieldValue(value) {
				t.Fatalf("accepted header %q: %q", name, value)
			}
			i := bytes.Index(head[pos:], name)
			if i < 0 {
				t.Fatalf("header %q not in the head, in order", name)
			}
			pos += i + len(name)
		})
		_, _ = r.bodyLength(1 << 20)
		_ = r.QueryValue("a")
		_ = r.Cookie("a")
	})
}

// authHandler keeps what CheckHandshake found on the connection.
type authHandler struct {
	nopHandler
	users chan any
}

func (h authHandler) CheckHandshake(r *Request) error {
	if string(r.QueryBytes("token")) != "a%20b" {
		return &HTTPError{Status: 401, Message: "no", Headers: []string{"WWW-Authenticate: Bearer"}}
	}
	r.Conn().SetValue("alice")
	return nil
}

func (h authHandler) OnOpen(c *Conn, _ *Request) { h.users <- c.Value() }

// What CheckHandshake stores with SetValue is the connection's in OnOpen.
func TestHandshakeCheckerValueReachesOnOpen(t *testing.T) {
	s := NewSimulator(Options{})
	h := authHandler{users: make(chan any, 1)}
	s.Handle("/ws", h)
	sc := s.OpenRaw()
	s.Feed(sc, []byte(goodUpgrade)) // ?token=a%20b
	select {
	case u := <-h.users:
		if u != "alice" {
			t.Fatalf("OnOpen saw %v", u)
		}
	default:
		t.Fatal("not opened")
	}
	if sc.Conn().Value() != "alice" {
		t.Fatalf("Value() = %v", sc.Conn().Value())
	}
}
