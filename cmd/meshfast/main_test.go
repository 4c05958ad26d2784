package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/meshfast/meshfast/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.VerifyNoLeaks(m)
}

// TestBinary builds cmd/meshfast and runs it as a user would: bad options
// end it with status 1 and a message naming the problem (never a hang), -h
// reads well, a good start serves /health and the first-contact echo, and
// SIGTERM sends 1001 and exits 0.
func TestBinary(t *testing.T) {
	bin := buildMeshfast(t)

	t.Run("bad options", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			env  string
			want string
		}{
			{args: []string{"-loops", "100"}, want: "Loops 100: 1 to 64"},
			{args: []string{"-addr", "9451"}, want: `"9451"`},
			{args: []string{"-addr", "9451", "-reuseport=false"}, want: "9451"},
			{args: []string{"-path", "chat"}, want: `Path "chat" does not start with "/"`},
			{args: []string{"-max-message-size", "-5"}, want: `invalid value "-5" for flag -max-message-size: negative`},
			{args: []string{"-max-pending-bytes", "-1"}, want: "-max-pending-bytes"},
			{args: []string{"-loops", "-2"}, want: "-loops"},
			{args: []string{"-idle-timeout", "soon"}, want: "-idle-timeout"},
			{args: []string{"-shutdown-timeout", "0s"}, want: "-shutdown-timeout: must be more than 0"},
			{args: []string{"-nope"}, want: "-nope"},
			{args: []string{"serve"}, want: `unexpected argument "serve"`},
			{env: "MESHFAST_MAX_MESSAGE_SIZE=-5", want: `MESHFAST_MAX_MESSAGE_SIZE="-5": negative`},
			{env: "MESHFAST_LOOPS=many", want: "MESHFAST_LOOPS"},
			{env: "MESHFAST_PATH=chat", want: `"chat"`},
			{args: []string{"-redis", "rediss://127.0.0.1:6379"}, want: "TLS (rediss://) is not supported"},
			{env: "MESHFAST_REDIS_URL=redis://127.0.0.1:6379/x", want: `MESHFAST_REDIS_URL="redis://127.0.0.1:6379/x"`},
			// No Redis there: refused at once, named, exit 1.
			{args: []string{"-redis", "redis://127.0.0.1:1"}, want: "redis redis://127.0.0.1:1"},
		} {
			name := strings.Join(tc.args, " ") + tc.env
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, bin, tc.args...)
				cmd.Env = append(os.Environ(), "MESHFAST_ADDR=127.0.0.1:0")
				if tc.env != "" {
					cmd.Env = append(cmd.Env, tc.env)
				}
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				err := cmd.Run()
				if ctx.Err() != nil {
					t.Fatalf("still running after 20 s (a hang): %s", out.String())
				}
				var exit *exec.ExitError
				if !errors.As(err, &exit) || exit.ExitCode() != 1 {
					t.Fatalf("exit %v, want status 1; output:\n%s", err, out.String())
				}
				if !strings.Contains(out.String(), tc.want) {
					t.Fatalf("output does not name the problem (%s):\n%s", tc.want, out.String())
				}
			})
		}
	})

	t.Run("port in use", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		for _, reuse := range []string{"-reuseport=true", "-reuseport=false"} {
			out, err := exec.Command(bin, "-addr", ln.Addr().String(), reuse).CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), ln.Addr().String()) {
				t.Errorf("%s on a port in use: %v, want status 1 naming %s:\n%s", reuse, err, ln.Addr(), out)
			}
		}
	})

	t.Run("help", func(t *testing.T) {
		out, err := exec.Command(bin, "-h").CombinedOutput()
		if err != nil {
			t.Fatalf("-h: %v\n%s", err, out)
		}
		for _, want := range []string{`{"id":1,"command":"echo","payload":"hello"}`, "-idle-timeout duration", "(default off)", "$MESHFAST_MAX_MESSAGE_SIZE"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("-h lacks %s:\n%s", want, out)
			}
		}
		if strings.Contains(string(out), "-1ns") {
			t.Errorf("-h shows a default as -1ns:\n%s", out)
		}
	})

	t.Run("config", func(t *testing.T) { testConfig(t, bin) })

	t.Run("serve and SIGTERM", func(t *testing.T) {
		// The address comes from the environment, as `MESHFAST_ADDR=… make run` gives it.
		p := startMeshfast(t, bin, nil, []string{"MESHFAST_ADDR=127.0.0.1:0"})
		addr := p.addr

		hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := hc.Get("http://" + addr + "/health")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"status":"ok"`) {
			t.Fatalf("/health: %d %s", resp.StatusCode, body)
		}

		// The first contact the README and -h show, byte for byte.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws://"+addr+"/", &websocket.DialOptions{HTTPClient: hc})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		const echo = `{"id":1,"command":"echo","payload":"hello"}`
		if err := c.Write(ctx, websocket.MessageText, []byte(echo)); err != nil {
			t.Fatal(err)
		}
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("no echo reply: %v", err)
			}
			if strings.HasPrefix(string(b), `{"id":1`) {
				if string(b) != echo {
					t.Fatalf("echo reply %s, want %s", b, echo)
				}
				break
			}
		}

		// SIGTERM: the client is told 1001 (going away), the process exits 0.
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		var code websocket.StatusCode = -1
		for {
			if _, _, err := c.Read(ctx); err != nil {
				code = websocket.CloseStatus(err)
				break
			}
		}
		if code != websocket.StatusGoingAway {
			t.Errorf("client got close status %d on SIGTERM, want 1001", code)
		}
		if err := p.wait(15 * time.Second); err != nil {
			t.Fatalf("after SIGTERM: %v\n%s", err, p.output())
		}
		if !strings.Contains(p.output(), "msg=stopped") {
			t.Errorf("no clean stop logged:\n%s", p.output())
		}
	})
}

// buildMeshfast builds this package's binary into a fresh temporary folder.
func buildMeshfast(t *testing.T) string {
	t.Helper()
	return testutil.BuildBinary(t, ".")
}

// proc is a running meshfast and its merged output.
type proc struct {
	cmd  *exec.Cmd
	addr string
	done chan error

	mu  sync.Mutex
	out bytes.Buffer
}

// listening finds the bound address in the "listening" line, in either log format.
var listening = regexp.MustCompile(`(?:msg=listening |"msg":"listening",).*?"?addr"?[=:]"?([^\s"]+)`)

// startMeshfast starts bin with args and env added and waits for its
// "listening" line; the process is killed at cleanup if the test has not
// ended it.
func startMeshfast(t *testing.T, bin string, args, env []string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), done: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrs := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addrs <- m[1]
			}
		}
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		select {
		case err := <-p.done:
			p.done <- err
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case p.addr = <-addrs:
	case err := <-p.done:
		p.done <- err
		t.Fatalf("meshfast exited before listening: %v\n%s", err, p.output())
	case <-time.After(20 * time.Second):
		t.Fatalf("meshfast not listening after 20 s:\n%s", p.output())
	}
	if _, _, err := net.SplitHostPort(p.addr); err != nil {
		t.Fatalf("listening on %q: %v", p.addr, err)
	}
	return p
}

// wait returns the process's exit error, or an error if it runs past d.
func (p *proc) wait(d time.Duration) error {
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(d):
		return errors.New("still running")
	}
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}
