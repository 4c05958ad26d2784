package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshfast/meshfast/client"
	"github.com/meshfast/meshfast/internal/testutil"
	"github.com/meshfast/meshfast/protocol"
)

func TestMain(m *testing.M) {
	testutil.VerifyNoLeaks(m)
}

// node is a real meshfast process started from the example configuration.
type node struct {
	addr string
	cmd  *exec.Cmd
	done chan error
	mu   sync.Mutex
	log  strings.Builder
}

func (n *node) output() string { n.mu.Lock(); defer n.mu.Unlock(); return n.log.String() }

// startNode builds cmd/meshfast and runs it with the example config, the
// clients' address on a free port and the command proxy at backendURL.
func startNode(t *testing.T, backendURL string, env ...string) *node {
	t.Helper()
	bin := testutil.BuildBinary(t, "github.com/meshfast/meshfast/cmd/meshfast")
	cmd := exec.Command(bin, "-config", "../meshfast.yaml", "-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), append([]string{"MESHFAST_PROXY_COMMAND_URL=" + backendURL + "/mesh/command"}, env...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{cmd: cmd, done: make(chan error, 1)}
	addrs := make(chan string, 1)
	listening := regexp.MustCompile(`msg=listening addr=(\S+)`)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			n.mu.Lock()
			n.log.WriteString(sc.Text() + "\n")
			n.mu.Unlock()
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addrs <- m[1]
			}
		}
		n.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		select {
		case err := <-n.done:
			n.done <- err
		default:
			_ = cmd.Process.Kill()
			<-n.done
		}
	})
	select {
	case n.addr = <-addrs:
	case err := <-n.done:
		n.done <- err
		t.Fatalf("exited before listening: %v\n%s", err, n.output())
	case <-time.After(60 * time.Second):
		t.Fatalf("not listening after 60 s:\n%s", n.output())
	}
	return n
}

// stop sends SIGTERM and expects a clean exit.
func (n *node) stop(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-n.done:
		n.done <- err
		if err != nil {
			t.Fatalf("exit %v after SIGTERM:\n%s", err, n.output())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("still running 15 s after SIGTERM:\n%s", n.output())
	}
}

func getToken(t *testing.T, backendURL, user string) string {
	t.Helper()
	resp, err := http.Get(backendURL + "/token?user=" + user)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Token == "" {
		t.Fatalf("token: %v %+v", err, out)
	}
	return out.Token
}

// TestWalkthrough is the README's walk-through against a real meshfast
// process run from examples/edge/meshfast.yaml and the example backend:
// a token from the backend, a connection with it, a room with presence, a
// channel with history, chat/send answered by the backend through the
// command proxy and published through the HTTP API; a connection without
// a token refused 401, the API without a key 401.
func TestWalkthrough(t *testing.T) {
	b := newBackend(devSecret, devAPIKey)
	srv := httptest.NewServer(b.routes())
	defer srv.Close()
	n := startNode(t, srv.URL)
	b.setMeshfast("http://" + n.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	dial := func(query string) (*client.Client, error) {
		c := client.New("ws://"+n.addr+"/"+query, client.Options{NoReconnect: true, AwaitConnectionID: true,
			Dialer: (&net.Dialer{KeepAlive: -1}).DialContext})
		return c, c.Connect(ctx)
	}
	if c, err := dial(""); err == nil {
		_ = c.Close()
		t.Fatal("a connection without a token was let in")
	}
	alice, err := dial("?token=" + getToken(t, srv.URL, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob, err := dial("?token=" + getToken(t, srv.URL, "bob"))
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()

	if m, err := alice.Command(ctx, "mesh/get-my-connection-metadata", map[string]any{}); err != nil || string(m) != `{"metadata":{"name":"alice"}}` {
		t.Fatalf("metadata from the token: %s %v", m, err)
	}
	if r, err := alice.JoinRoom(ctx, "chat:lobby"); err != nil || !r.Success {
		t.Fatal(r, err)
	}
	r, err := bob.JoinRoom(ctx, "chat:lobby")
	if err != nil || !r.Success || !slices.Contains(r.Present, alice.ConnectionID()) {
		t.Fatalf("bob joins and sees alice present: %+v %v", r, err)
	}
	got := make(chan string, 4)
	if r, err := bob.SubscribeChannel(ctx, "chat:lobby", func(m string) { got <- m }); err != nil || !r.Success {
		t.Fatal(r, err)
	}
	out, err := alice.Command(ctx, "chat/send", map[string]string{"room": "lobby", "text": "hello"})
	if err != nil || string(out) != `{"sent":true}` {
		t.Fatalf("chat/send through the proxy: %s %v", out, err)
	}
	select {
	case m := <-got:
		var msg struct{ User, Text string }
		if json.Unmarshal([]byte(m), &msg) != nil || msg.User != "alice" || msg.Text != "hello" {
			t.Fatalf("message %s", m)
		}
	case <-ctx.Done():
		t.Fatal("no chat message")
	}
	var ce *protocol.CodeError
	if _, err := alice.Command(ctx, "chat/send", map[string]string{"room": "lobby"}); !errors.As(err, &ce) || ce.Code != "EEMPTY" {
		t.Fatalf("the backend's error: %v", err)
	}
	// A late joiner gets the history the configuration keeps.
	carol, err := dial("?token=" + getToken(t, srv.URL, "carol"))
	if err != nil {
		t.Fatal(err)
	}
	defer carol.Close()
	h, err := carol.SubscribeChannel(ctx, "chat:lobby", func(string) {}, client.WithHistoryLimit(10))
	if err != nil || len(h.History) != 1 || !strings.Contains(h.History[0], `"text":"hello"`) {
		t.Fatalf("history: %+v %v", h, err)
	}
	// The token's allow claim: no room outside chat:.
	if _, err := carol.JoinRoom(ctx, "staff"); !errors.As(err, &ce) || ce.Code != protocol.CodeForbidden {
		t.Fatalf("a room outside the token's allow: %v", err)
	}

	// The API wants its key.
	resp, err := http.Post("http://"+n.addr+"/api/publish", "application/json", strings.NewReader(`{"channel":"chat:lobby","message":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("the API without a key: %d %s", resp.StatusCode, body)
	}
	_, _, _ = alice.Close(), bob.Close(), carol.Close()
	n.stop(t)
}
