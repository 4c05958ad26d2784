package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/meshfast/meshfast/internal/testutil"
)

// fdChildEnv makes the test binary the server of TestDescriptorExhaustion:
// a child process under a low file limit, driven through stdin.
const fdChildEnv = "MESHFAST_ENGINE_FD_CHILD"

// fdChildLimit is the child's RLIMIT_NOFILE.
const fdChildLimit = 256

// childStats is what the child reports for "stats".
type childStats struct {
	Stats
	Stopped bool
}

// Connections alone cannot run the process out of descriptors: past the
// file limit's share they are closed as soon as they are accepted. When
// descriptors do run out (here the child opens files until it has none),
// accepting backs off instead of stopping the engine (third_party/gnet),
// logged once, and resumes when they come back: every open connection
// survives, queued connections are accepted, and a new client is served.
// Run for the acceptor and for SO_REUSEPORT's per-loop accept.
func TestDescriptorExhaustion(t *testing.T) {
	if mode := os.Getenv(fdChildEnv); mode != "" {
		fdChild(mode)
		return
	}
	t.Parallel()
	for _, mode := range []string{"acceptor", "reuseport"} {
		t.Run(mode, func(t *testing.T) { testDescriptorExhaustion(t, mode) })
	}
}

func testDescriptorExhaustion(t *testing.T, mode string) {
	ch := startFDChild(t, mode)
	limit := int(ch.stats(t).ConnectionLimit)
	if want := fdChildLimit - DefaultReservedFiles - loopFiles(2); limit != want {
		t.Fatalf("connection limit %d under a file limit of %d, want %d", limit, fdChildLimit, want)
	}

	// Half-open connections past the limit are refused at once.
	over := 10
	var conns []net.Conn
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	halfHead := []byte("GET /ws HTTP/1.1\r\nHost: x\r\n")
	dialHalf := func() net.Conn {
		nc, err := (&net.Dialer{KeepAlive: -1, Timeout: 5 * time.Second}).Dial("tcp", ch.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
		_, _ = nc.Write(halfHead) // a refused connection may already be reset
		return nc
	}
	for range limit + over {
		dialHalf()
	}
	var s childStats
	testutil.Eventually(t, 10*time.Second, func() error {
		s = ch.stats(t)
		if int(s.TCP)+int(s.RefusedFileLimit) != limit+over {
			return fmt.Errorf("%d open and %d refused of %d", s.TCP, s.RefusedFileLimit, limit+over)
		}
		return nil
	})
	if int(s.TCP) != limit || int(s.RefusedFileLimit) != over || s.AcceptErrors != 0 || s.Stopped {
		t.Fatalf("at the limit: %+v; want %d open, %d refused, no failed accept", s, limit, over)
	}
	refused := dialHalf()
	_ = refused.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := refused.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection past the limit: %v, want it closed at once", err)
	}

	// Out of descriptors: accepting backs off, the engine stays up.
	ch.send(t, "eat")
	filled := len(conns)
	queued := []net.Conn{dialHalf(), dialHalf(), dialHalf()}
	testutil.Eventually(t, 10*time.Second, func() error {
		if s = ch.stats(t); s.Stopped {
			t.Fatalf("the engine stopped when descriptors ran out: %+v\n%s", s, ch.log())
		}
		if s.AcceptBackoffs == 0 {
			return fmt.Errorf("no backoff yet: %+v", s)
		}
		return nil
	})

	// Descriptors come back: the queued connections are accepted and a new
	// client is served. The connections that filled the cap go first: were
	// the eaten descriptors freed while they were still open, the queued
	// connections would meet the cap and be refused. Each descriptor a close
	// frees may let a queued connection in, hence at most len(queued).
	for _, nc := range conns[:filled] {
		nc.Close()
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if s = ch.stats(t); s.TCP > int64(len(queued)) {
			return fmt.Errorf("%d connections open: the filling ones are not all closed", s.TCP)
		}
		return nil
	})
	ch.send(t, "free")
	testutil.Eventually(t, 10*time.Second, func() error {
		s = ch.stats(t)
		if s.Stopped {
			return fmt.Errorf("the engine stopped: %+v\n%s", s, ch.log())
		}
		if s.TCP != int64(len(queued)) {
			return fmt.Errorf("%d connections open, want the %d that were queued", s.TCP, len(queued))
		}
		return nil
	})
	nc, err := (&net.Dialer{KeepAlive: -1, Timeout: 5 * time.Second}).Dial("tcp", ch.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rc := &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
	rc.send([]byte(goodUpgrade))
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := rc.br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 101") {
		t.Fatalf("a new client after descriptors came back: %q %v\n%s", line, err, ch.log())
	}
	for line, err := rc.br.ReadString('\n'); line != "\r\n"; line, err = rc.br.ReadString('\n') {
		if err != nil {
			t.Fatal(err)
		}
	}
	rc.send(clientFrame(0x81, true, []byte("back")))
	if op, p, err := rc.readFrame(); err != nil || op != OpText || string(p) != "back" {
		t.Fatalf("echo after descriptors came back: %v %q %v", op, p, err)
	}

	s = ch.stats(t)
	if s.Stopped || s.AcceptBackoffs == 0 || s.AcceptErrors < s.AcceptBackoffs {
		t.Fatalf("after the episode: %+v", s)
	}
	if n := strings.Count(ch.log(), "not accepting for now"); n != int(s.AcceptBackoffs) {
		t.Fatalf("%d backoff episodes logged %d times, want once each:\n%s", s.AcceptBackoffs, n, ch.log())
	}
	nc.Close()
	if err := ch.stop(); err != nil {
		t.Fatalf("child: %v\n%s", err, ch.log())
	}
}

// fdClient drives the child server.
type fdClient struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	lines  chan string
	stderr *syncBuffer
	addr   string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func startFDChild(t *testing.T, mode string) *fdClient {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh to lower the file limit with")
	}
	cmd := exec.Command("sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$@"`, fdChildLimit),
		"sh", os.Args[0], "-test.run=^TestDescriptorExhaustion$", "-test.count=1")
	cmd.Env = append(os.Environ(), fdChildEnv+"="+mode)
	ch := &fdClient{cmd: cmd, lines: make(chan string, 16), stderr: &syncBuffer{}}
	cmd.Stderr = ch.stderr
	var err error
	if ch.in, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			ch.lines <- sc.Text()
		}
		close(ch.lines)
	}()
	t.Cleanup(func() {
		_ = ch.in.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	addr, ok := strings.CutPrefix(ch.next(t), "addr ")
	if !ok {
		t.Fatalf("child did not start:\n%s", ch.log())
	}
	ch.addr = addr
	return ch
}

func (ch *fdClient) log() string { return ch.stderr.String() }

func (ch *fdClient) next(t *testing.T) string {
	t.Helper()
	select {
	case line, ok := <-ch.lines:
		if !ok {
			t.Fatalf("child exited:\n%s", ch.log())
		}
		return line
	case <-time.After(10 * time.Second):
		t.Fatalf("child silent:\n%s", ch.log())
	}
	return ""
}

// send sends a command and waits for its "ok".
func (ch *fdClient) send(t *testing.T, cmd string) string {
	t.Helper()
	if _, err := fmt.Fprintln(ch.in, cmd); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, ch.log())
	}
	line := ch.next(t)
	reply, ok := strings.CutPrefix(line, "ok ")
	if !ok {
		t.Fatalf("%s: %q\n%s", cmd, line, ch.log())
	}
	return reply
}

func (ch *fdClient) stats(t *testing.T) childStats {
	t.Helper()
	var s childStats
	if err := json.Unmarshal([]byte(ch.send(t, "stats")), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// stop ends the child and returns its error: Shutdown's and Wait's results
// must be clean.
func (ch *fdClient) stop() error {
	_ = ch.in.Close()
	for line := range ch.lines {
		if rest, ok := strings.CutPrefix(line, "stopped "); ok && rest != "ok" {
			return errors.New(rest)
		}
	}
	return ch.cmd.Wait()
}

// fdChild is the child's side: a server on a free port with a low file
// limit, answering commands on stdin until it closes.
func fdChild(mode string) {
	o := Options{
		Addr:             "127.0.0.1:0",
		Loops:            2,
		ReusePort:        mode == "reuseport",
		HandshakeTimeout: time.Minute,
		Logger:           slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	e := New(o)
	e.Handle("/ws", Echo{})
	if err := e.Start(); err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(2)
	}
	fmt.Printf("addr %s\n", e.Addr())
	var eaten []int
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "eat":
			for {
				fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
				if err != nil {
					break
				}
				eaten = append(eaten, fd)
			}
			fmt.Printf("ok %d\n", len(eaten))
		case "free":
			for _, fd := range eaten {
				_ = unix.Close(fd)
			}
			eaten = nil
			fmt.Println("ok freed")
		case "stats":
			s := childStats{Stats: e.Stats()}
			select {
			case <-e.Done():
				s.Stopped = true
			default:
			}
			b, _ := json.Marshal(s)
			fmt.Printf("ok %s\n", b)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := e.Shutdown(ctx)
	cancel()
	if werr := e.Wait(); err == nil && !errors.Is(werr, ErrServerClosed) {
		err = fmt.Errorf("Wait after Shutdown: %v", werr)
	}
	if err != nil {
		fmt.Printf("stopped %v\n", err)
	} else {
		fmt.Println("stopped ok")
	}
}

// MaxConnections counts accepted TCP connections, not upgrades: half-open
// ones that never send a byte fill it, and the next is closed at once.
func TestMaxConnectionsCountsHalfOpen(t *testing.T) {
	t.Parallel()
	e := startEngine(t, Options{MaxConnections: 3, HandshakeTimeout: time.Minute}, Echo{})
	d := net.Dialer{KeepAlive: -1, Timeout: 5 * time.Second}
	for range 3 {
		nc, err := d.Dial("tcp", e.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := e.Stats().TCP; n != 3 {
			return fmt.Errorf("%d connections accepted", n)
		}
		return nil
	})
	nc, err := d.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("fourth connection: %v, want it closed at once", err)
	}
	if s := e.Stats(); s.RefusedMaxConnections != 1 || s.TCP != 3 {
		t.Fatalf("refused %d, open %d; want 1 refused, 3 open", s.RefusedMaxConnections, s.TCP)
	}
}
