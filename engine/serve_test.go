package engine

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// startOrHang runs Start and fails the test if it does not return: a Start
// that waits forever is the bug these tests look for.
func startOrHang(t *testing.T, e *Engine) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- e.Start() }()
	select {
	case err := <-errc:
		if err == nil {
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = e.Shutdown(ctx)
			})
		}
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not return")
		return nil
	}
}

// Options Serve cannot run with are Start's error, not a hang, and are
// judged as given: a negative size is refused, not replaced by its default.
func TestStartReturnsInvalidOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"Loops", Options{Loops: 100}},
		{"Loops", Options{Loops: -1}},
		{"MaxMessageSize", Options{MaxMessageSize: -5}},
		{"MaxHeaderBytes", Options{MaxHeaderBytes: -1}},
		{"MaxPendingBytes", Options{MaxPendingBytes: -1}},
		{"MaxConnections", Options{MaxConnections: -1}},
		{"ReservedFiles", Options{ReservedFiles: -1}},
		{"ReadBufferCap", Options{ReadBufferCap: -1}},
		{"HandshakeTimeout", Options{HandshakeTimeout: -time.Second}},
		{"CloseTimeout", Options{CloseTimeout: -time.Second}},
		{"MaxPausedBytes", Options{MaxPausedBytes: 1024}},
		{"SlowConsumerCode", Options{SlowConsumerCode: 1005}},
		{"ReusePort", Options{Addr: "9451", ReusePort: true}},
	} {
		if tc.o.Addr == "" {
			tc.o.Addr = "127.0.0.1:0"
		}
		e := New(tc.o)
		err := startOrHang(t, e)
		if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%+v: Start returned %v, want ErrInvalidOptions naming %s", tc.o, err, tc.name)
			continue
		}
		if werr := e.Wait(); werr != err {
			t.Errorf("%s: Wait returned %v, want Start's error", tc.name, werr)
		}
		if serr := e.Shutdown(context.Background()); serr != err {
			t.Errorf("%s: Shutdown returned %v, want Start's error", tc.name, serr)
		}
	}
}

// The zero Options validate whatever the machine: Loops defaults to one
// per CPU, at most what Validate accepts.
func TestDefaultOptionsValidate(t *testing.T) {
	if err := New(Options{}).Options().Validate(); err != nil {
		t.Fatalf("the zero Options: %v", err)
	}
	for _, cpus := range []int{1, 2, 64, 65, 256} {
		o := Options{Loops: defaultLoops(cpus)}
		if err := o.withDefaults().Validate(); err != nil || o.Loops < 1 {
			t.Errorf("%d CPUs: Loops %d: %v", cpus, o.Loops, err)
		}
	}
}

// A route no request can reach is Serve's error, not a silent 404.
func TestStartRefusesRouteWithoutSlash(t *testing.T) {
	t.Parallel()
	for name, register := range map[string]func(e *Engine){
		"Handle":     func(e *Engine) { e.Handle("chat", Echo{}) },
		"HandleHTTP": func(e *Engine) { e.HandleHTTP("health", e.HealthHandler(nil)) },
		"empty":      func(e *Engine) { e.Handle("", Echo{}) },
		"no methods": func(e *Engine) { e.HandleHTTPMethods("/x", e.HealthHandler(nil)) },
	} {
		e := New(Options{Addr: "127.0.0.1:0", Loops: 1})
		e.Handle("/ok", Echo{})
		register(e)
		if err := startOrHang(t, e); !errors.Is(err, ErrInvalidRoute) {
			t.Errorf("%s: Start returned %v, want ErrInvalidRoute", name, err)
		}
	}
}

// A port in use is reported with its address, whether or not each loop
// binds its own socket.
func TestListenErrorNamesAddress(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	for _, reuse := range []bool{false, true} {
		e := New(Options{Addr: addr, Loops: 1, ReusePort: reuse})
		err := startOrHang(t, e)
		if !errors.Is(err, unix.EADDRINUSE) || !strings.Contains(err.Error(), addr) {
			t.Errorf("ReusePort %v on a port in use: %v, want EADDRINUSE naming %s", reuse, err, addr)
		}
	}
}

// Start a second time is an error, not a second engine's nil.
func TestStartTwice(t *testing.T) {
	t.Parallel()
	e := New(Options{Addr: "127.0.0.1:0", Loops: 1})
	if err := startOrHang(t, e); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err == nil {
		t.Fatal("second Start returned nil")
	}
}

// Wait reports how the engine stopped: ErrServerClosed after Shutdown,
// ErrStopped when gnet stopped without being asked.
func TestWaitReportsStop(t *testing.T) {
	t.Parallel()
	e := New(Options{Addr: "127.0.0.1:0", Loops: 1})
	if err := startOrHang(t, e); err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.Wait(); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Wait after Shutdown: %v", err)
	}

	e = New(Options{Addr: "127.0.0.1:0", Loops: 1})
	if err := startOrHang(t, e); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = e.gnet.Stop(ctx); close(stopped) }() // as a failing loop would
	select {
	case <-e.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the engine did not stop")
	}
	cancel()
	<-stopped
	if err := e.Wait(); !errors.Is(err, ErrStopped) {
		t.Fatalf("Wait after gnet stopped on its own: %v, want ErrStopped", err)
	}
	if err := e.Shutdown(context.Background()); !errors.Is(err, ErrStopped) {
		t.Fatalf("Shutdown after gnet stopped on its own: %v, want ErrStopped", err)
	}
}

// Shutdown returns as soon as the loops have stopped: gnet's own Stop
// polls for that every 500 ms. Both with no client and with one that
// answers the close at once.
func TestShutdownIsPrompt(t *testing.T) {
	t.Parallel()
	for _, clients := range []int{0, 1} {
		e := New(Options{Addr: "127.0.0.1:0", Loops: 2})
		e.Handle("/ws", Echo{})
		if err := startOrHang(t, e); err != nil {
			t.Fatal(err)
		}
		for range clients {
			dial(t, e).CloseRead(context.Background()) // answers the close frame
		}
		start := time.Now()
		if err := e.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		d := time.Since(start)
		if d > 400*time.Millisecond {
			t.Errorf("Shutdown with %d clients took %v", clients, d)
		}
		t.Logf("Shutdown with %d clients: %v", clients, d)
	}
}
