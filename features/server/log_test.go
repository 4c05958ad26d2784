package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshfast/meshfast/features/mesh"
)

// syncBuffer is a bytes.Buffer for a logger written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogs checks that the engine's and Mesh's lines reach the node's
// slog logger as JSON, each at its own level with its component: gnet's
// start at info, a client's malformed payload (EINVALID) at debug, a
// handler's panic at error; that a level hides what is below it; and that
// commands log nothing per message.
func TestLogs(t *testing.T) {
	for _, tc := range []struct {
		level      slog.Level
		start, bad bool // gnet's start line, the bad payload's detail
	}{
		{slog.LevelDebug, true, true},
		{slog.LevelInfo, true, false},
		{slog.LevelError, false, false},
	} {
		t.Run(tc.level.String(), func(t *testing.T) {
			var out syncBuffer
			cfg := Config{Logger: LogSettings{Format: LogJSON, Level: tc.level}.NewLogger(&out)}
			n := startNode(t, cfg)
			n.Mesh.Expose("boom", func(*mesh.Context) (any, error) { panic("kaboom") })
			c := connect(t, n)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for i := range 200 {
				if _, err := c.Command(ctx, "echo", fmt.Sprint(i)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.Command(ctx, "boom", nil); err == nil {
				t.Fatal("a panicking command answered without an error")
			}
			if _, err := c.Command(ctx, "mesh/join-room", "not an object"); err == nil {
				t.Fatal("a bad join payload answered without an error")
			}
			var panicked, start, bad map[string]any
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				if line == "" {
					continue
				}
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("not a JSON line: %q", line)
				}
				msg := fmt.Sprint(rec["msg"])
				switch {
				case strings.Contains(msg, "echo") || rec["command"] == "echo":
					t.Fatalf("a line per message: %s", line)
				case strings.Contains(msg, `command "boom" panicked: kaboom`):
					panicked = rec
				case strings.Contains(msg, "gnet: Launching gnet"):
					start = rec
				case rec["command"] == "mesh/join-room" && rec["code"] == "EINVALID":
					bad = rec
				}
			}
			if panicked == nil || panicked["level"] != "ERROR" || panicked["component"] != "mesh" {
				t.Fatalf("the panic's line: %v; log:\n%s", panicked, out.String())
			}
			if (start != nil) != tc.start || start != nil && (start["level"] != "INFO" || start["component"] != "engine") {
				t.Fatalf("gnet's start line: %v, want it %v at INFO; log:\n%s", start, tc.start, out.String())
			}
			if (bad != nil) != tc.bad || bad != nil && bad["level"] != "DEBUG" {
				t.Fatalf("the bad payload's line: %v, want it %v at DEBUG; log:\n%s", bad, tc.bad, out.String())
			}
		})
	}
}
