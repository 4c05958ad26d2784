package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// testConfig runs bin with configuration files, variables and flags, as
// TestBinary's "config" group.
func testConfig(t *testing.T, bin string) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// meshfast runs bin to its end and returns its status and output.
	meshfast := func(t *testing.T, env []string, args ...string) (int, string, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if ctx.Err() != nil {
			t.Fatalf("%v still running after 20 s: %s", args, stderr.String())
		}
		var exit *exec.ExitError
		switch {
		case err == nil:
			return 0, stdout.String(), stderr.String()
		case errors.As(err, &exit):
			return exit.ExitCode(), stdout.String(), stderr.String()
		}
		t.Fatal(err)
		return 0, "", ""
	}

	t.Run("refused", func(t *testing.T) {
		bad := write("bad.yaml", "addr: \"127.0.0.1:0\"\nlog:\n  level: loud\n")
		unknown := write("unknown.yaml", "# comment\naddr: \"127.0.0.1:0\"\nmax_conections: 5\n")
		list := write("list.yaml", "expose:\n  channels:\n    - name: a\n      history: many\n")
		loops := write("loops.yaml", "loops: 100\n")
		for _, tc := range []struct {
			env  []string
			args []string
			want string
		}{
			{args: []string{"-config", bad}, want: bad + `:3: log.level: "loud": "loud" is not debug, info, warn or error`},
			{args: []string{"-config", unknown}, want: unknown + `:3: unknown key "max_conections" (did you mean "max_connections"?)`},
			{args: []string{"-config", list}, want: list + `:4: expose.channels[0].history: "many": not a whole number`},
			{args: []string{"-config", loops}, want: loops + `:1: loops: server: invalid configuration: engine: invalid options: Loops 100: 1 to 64`},
			{env: []string{"MESHFAST_CONFIG=" + unknown}, want: unknown + `:3: unknown key`},
			{args: []string{"-config", filepath.Join(dir, "missing.yaml")}, want: "missing.yaml: no such file"},
			{env: []string{`MESHFAST_EXPOSE_CHANNELS=[{pattern: "("}]`}, want: `MESHFAST_EXPOSE_CHANNELS="[{pattern: \"(\"}]": line 1: expose.channels[0].pattern: "(": error parsing regexp`},
			{args: []string{"-log-format", "xml"}, want: `invalid value "xml" for flag -log-format`},
			{args: []string{"-print-config", "-max-connections", "-1"}, want: "-max-connections"},
		} {
			status, stdout, stderr := meshfast(t, tc.env, tc.args...)
			if status != 1 || !strings.Contains(stderr, tc.want) || stdout != "" {
				t.Errorf("%v %v: status %d, stdout %q, stderr:\n%s\nwant status 1 and %s", tc.env, tc.args, status, stdout, stderr, tc.want)
			}
		}
	})

	t.Run("precedence", func(t *testing.T) {
		file := write("p.yaml", "max_connections: 11\nmax_message_size: 1KiB\nloops: 1\nlog:\n  level: warn\n")
		other := write("other.yaml", "max_connections: 99\n")
		env := []string{"MESHFAST_MAX_MESSAGE_SIZE=2KiB", "MESHFAST_LOOPS=2", "MESHFAST_CONFIG=" + other, "MESHFAST_MAX_CONECTIONS=4"}
		status, out, stderr := meshfast(t, env, "-config", file, "-loops", "3", "-print-config")
		if status != 0 {
			t.Fatalf("status %d: %s", status, stderr)
		}
		// A misspelt variable is not a key, so not refused, but said.
		if !strings.Contains(stderr, `level=WARN msg="not a configuration variable; ignored" var=MESHFAST_MAX_CONECTIONS`) {
			t.Errorf("no warning for MESHFAST_MAX_CONECTIONS:\n%s", stderr)
		}
		for _, want := range []string{
			"\nmax_connections: 11\n",     // the file (-config wins over MESHFAST_CONFIG)
			"\nmax_message_size: 2KiB\n",  // the variable over the file
			"\nloops: 3\n",                // the flag over both
			"\nmax_pending_bytes: 4MiB\n", // the default
			"\n  level: warn\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("-print-config lacks %q:\n%s", strings.TrimSpace(want), out)
			}
		}
	})

	t.Run("print-config reads back", func(t *testing.T) {
		status, defaults, stderr := meshfast(t, nil, "-print-config")
		if status != 0 || !strings.HasPrefix(defaults, "addr: :8080\n") {
			t.Fatalf("defaults: status %d\n%s%s", status, defaults, stderr)
		}
		example, err := filepath.Abs("../../examples/edge/meshfast.yaml")
		if err != nil {
			t.Fatal(err)
		}
		status, first, stderr := meshfast(t, nil, "-config", example, "-print-config")
		if status != 0 || !strings.Contains(first, "history: 50") {
			t.Fatalf("the example: status %d\n%s%s", status, first, stderr)
		}
		printed := write("printed.yaml", first)
		status, second, stderr := meshfast(t, nil, "-config", printed, "-print-config")
		if status != 0 || second != first {
			t.Fatalf("the printed configuration loads as another: status %d\n%s\n---\n%s\n%s", status, first, second, stderr)
		}
	})

	t.Run("exposures honoured", func(t *testing.T) {
		cfg := write("chat.yaml", `
bench: true   # bench/publish is the one way a client publishes today
log:
  format: json
expose:
  channels:
    - pattern: ^chat:[a-z]+$
      history: 3
`)
		p := startMeshfast(t, bin, []string{"-config", cfg}, []string{"MESHFAST_ADDR=127.0.0.1:0"})
		for _, line := range strings.Split(strings.TrimSpace(p.output()), "\n") {
			if !json.Valid([]byte(line)) {
				t.Fatalf("log.format json, but a line is not JSON: %q", line)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		c, _, err := websocket.Dial(ctx, "ws://"+p.addr+"/", &websocket.DialOptions{HTTPClient: hc})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		call := func(id int, command, payload string) string {
			t.Helper()
			msg := fmt.Sprintf(`{"id":%d,"command":%q,"payload":%s}`, id, command, payload)
			if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			prefix := fmt.Sprintf(`{"id":%d,`, id)
			for {
				_, b, err := c.Read(ctx)
				if err != nil {
					t.Fatalf("no reply to %s: %v", msg, err)
				}
				if strings.HasPrefix(string(b), prefix) {
					return string(b)
				}
			}
		}
		for i := 1; i <= 5; i++ {
			call(i, "bench/publish", fmt.Sprintf(`{"channel":"chat:lobby","message":"m%d"}`, i))
		}
		want := `{"id":10,"command":"mesh/subscribe-channel","payload":{"success":true,"history":["m5","m4","m3"]}}`
		if got := call(10, "mesh/subscribe-channel", `{"channel":"chat:lobby","historyLimit":100}`); got != want {
			t.Fatalf("exposed channel:\n got %s\nwant %s", got, want)
		}
		want = `{"id":11,"command":"mesh/subscribe-channel","payload":{"success":false,"history":[]}}`
		if got := call(11, "mesh/subscribe-channel", `{"channel":"secret","historyLimit":5}`); got != want {
			t.Fatalf("channel not exposed:\n got %s\nwant %s", got, want)
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := p.wait(15 * time.Second); err != nil {
			t.Fatalf("after SIGTERM: %v\n%s", err, p.output())
		}
		if !strings.Contains(p.output(), `"msg":"stopped"`) {
			t.Errorf("no clean stop logged:\n%s", p.output())
		}
	})
}
