// Package examples_test runs the example programs as a user would.
package examples_test

import (
	"bufio"
	"context"
	"errors"
	"net/http"
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

// TestGracefulShutdown builds each example server, connects a client and
// sends SIGTERM: the client must get close 1001 (going away) and the
// process must exit 0 after saying it stopped, as cmd/meshfast does.
func TestGracefulShutdown(t *testing.T) {
	for _, tc := range []struct{ name, path string }{{"chat", "/chat"}, {"meshserver", "/"}} {
		t.Run(tc.name, func(t *testing.T) {
			bin := testutil.BuildBinary(t, "./"+tc.name)
			cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var log strings.Builder
			addrs := make(chan string, 1)
			done := make(chan error, 1)
			bound := regexp.MustCompile(`on ws://(\S+?)/`)
			go func() {
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					mu.Lock()
					log.WriteString(sc.Text() + "\n")
					mu.Unlock()
					if m := bound.FindStringSubmatch(sc.Text()); m != nil {
						addrs <- m[1]
					}
				}
				done <- cmd.Wait()
			}()
			output := func() string { mu.Lock(); defer mu.Unlock(); return log.String() }
			t.Cleanup(func() {
				select {
				case err := <-done:
					done <- err
				default:
					_ = cmd.Process.Kill()
					<-done
				}
			})
			var addr string
			select {
			case addr = <-addrs:
			case err := <-done:
				done <- err
				t.Fatalf("exited before listening: %v\n%s", err, output())
			case <-time.After(20 * time.Second):
				t.Fatalf("not listening after 20 s:\n%s", output())
			}

			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			c, _, err := websocket.Dial(ctx, "ws://"+addr+tc.path, &websocket.DialOptions{HTTPClient: hc})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			for {
				if _, _, err := c.Read(ctx); err != nil {
					if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
						t.Errorf("client read ended with %v (status %d), want close 1001", err, code)
					}
					break
				}
			}
			select {
			case err := <-done:
				done <- err
				var exit *exec.ExitError
				if err != nil && !errors.As(err, &exit) {
					t.Fatal(err)
				}
				if err != nil {
					t.Fatalf("exit %v after SIGTERM, want 0:\n%s", err, output())
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("still running 15 s after SIGTERM:\n%s", output())
			}
			if !strings.Contains(output(), "stopped") {
				t.Errorf("no clean stop logged:\n%s", output())
			}
		})
	}
}
