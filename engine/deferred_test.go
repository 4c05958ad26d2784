package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/meshfast/meshfast/internal/testutil"
)

// A deferred answer is given from another goroutine after the handler
// returned; the loop goes on serving meanwhile, and HEAD gets no body.
func TestDeferredResponse(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	e := New(Options{Addr: "127.0.0.1:0", Loops: 1, HandshakeTimeout: time.Minute})
	e.HandleHTTPMethods("/slow", func(w *Response, r *Request) {
		body := append([]byte(nil), r.Body...) // the request ends with the handler
		d := w.Defer()
		w.Status = 500 // ignored: the answer is Respond's
		go func() {
			<-release
			d.Respond(Response{Status: 201, ContentType: "application/json", Headers: []string{"X-Test: 1"}, Body: body})
			d.Respond(Response{Status: 500}) // only the first counts
		}()
	}, "POST", "GET")
	e.HandleHTTP("/fast", func(w *Response, _ *Request) { w.Body = []byte("fast") })
	if err := startOrHang(t, e); err != nil {
		t.Fatal(err)
	}
	type answer struct{ head, body string }
	got := make(chan answer, 2)
	go func() {
		h, b := rawHTTP(t, e, "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n{\"a\"")
		got <- answer{h, b}
	}()
	go func() {
		h, b := rawHTTP(t, e, "HEAD /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		got <- answer{h, b}
	}()
	// The one loop is free while both wait.
	testutil.Eventually(t, 5*time.Second, func() error {
		if e.Stats().TCP < 2 {
			return errors.New("requests not in yet")
		}
		return nil
	})
	if h, b := rawHTTP(t, e, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n"); status(h) != 200 || b != "fast" {
		t.Fatalf("a request beside deferred ones: %q %q", h, b)
	}
	close(release)
	for range 2 {
		a := <-got
		if status(a.head) != 201 || !strings.Contains(a.head, "X-Test: 1\r\n") || !strings.Contains(a.head, "Content-Type: application/json\r\n") {
			t.Fatalf("deferred head %q", a.head)
		}
		switch {
		case strings.Contains(a.head, "Content-Length: 4\r\n") && a.body == `{"a"`: // POST
		case strings.Contains(a.head, "Content-Length: 0\r\n") && a.body == "": // HEAD, no body read
		default:
			t.Fatalf("deferred answer %q %q", a.head, a.body)
		}
	}
}

// A deferred answer that never comes closes the connection after the
// handshake timeout; one given after the client left is dropped.
func TestDeferredTimeout(t *testing.T) {
	t.Parallel()
	ds := make(chan *Deferred, 1)
	e := New(Options{Addr: "127.0.0.1:0", Loops: 1, HandshakeTimeout: 300 * time.Millisecond,
		TickInterval: 10 * time.Millisecond, SweepPeriod: 50 * time.Millisecond})
	e.HandleHTTP("/never", func(w *Response, _ *Request) { ds <- w.Defer() })
	if err := startOrHang(t, e); err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := io.WriteString(nc, "GET /never HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(nc)
	if err != nil || len(b) != 0 {
		t.Fatalf("read %q, %v: want the connection closed without an answer", b, err)
	}
	if n := e.ClosedBy(ReasonHandshakeTimeout); n != 1 {
		t.Fatalf("closed by handshake timeout: %d", n)
	}
	(<-ds).Respond(Response{Body: []byte("late")}) // nothing to answer: no panic, no write
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := e.Stats().TCP; n != 0 {
			return fmt.Errorf("%d connections", n)
		}
		return nil
	})
}

// MaxConnectionsPerIP refuses the connection past the limit at accept,
// counts it, logs it once, and frees the address's share as connections
// close.
func TestMaxConnectionsPerIP(t *testing.T) {
	t.Parallel()
	var mu syncBuffer
	e := startEngine(t, Options{MaxConnectionsPerIP: 2, HandshakeTimeout: time.Minute,
		Logger: slog.New(slog.NewTextHandler(&mu, &slog.HandlerOptions{Level: slog.LevelDebug}))}, Echo{})
	d := net.Dialer{KeepAlive: -1, Timeout: 5 * time.Second}
	var open []net.Conn
	for range 2 {
		nc, err := d.Dial("tcp", e.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, nc)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := e.Stats().TCP; n != 2 {
			return fmt.Errorf("%d connections accepted", n)
		}
		return nil
	})
	for i := range 3 {
		nc, err := d.Dial("tcp", e.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := nc.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("connection %d past the limit: %v, want it closed at once", 3+i, err)
		}
		nc.Close()
	}
	if s := e.Stats(); s.RefusedPerIP != 3 || s.TCP != 2 || s.RefusedMaxConnections != 0 {
		t.Fatalf("refused per IP %d, open %d; want 3 and 2", s.RefusedPerIP, s.TCP)
	}
	if n := strings.Count(mu.String(), "too many from its address"); n != 1 {
		t.Fatalf("%d refusal lines, want 1 (rate-limited):\n%s", n, mu.String())
	}
	open[0].Close()
	testutil.Eventually(t, 5*time.Second, func() error {
		nc, err := d.Dial("tcp", e.Addr().String())
		if err != nil {
			return err
		}
		defer nc.Close()
		h := "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"
		if _, err := io.WriteString(nc, h); err != nil {
			return err
		}
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(nc)
		if !bytes.HasPrefix(b, []byte("HTTP/1.1 404")) {
			return fmt.Errorf("after one closed: %q", b)
		}
		return nil
	})
	open[1].Close()
}
