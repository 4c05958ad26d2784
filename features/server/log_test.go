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
// slog logger, as JSON at warn with their component, that a level above
// warn hides them, and that commands log nothing per message.
func TestLogs(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelError} {
		t.Run(level.String(), func(t *testing.T) {
			var out syncBuffer
			cfg := Config{Logger: LogSettings{Format: LogJSON, Level: level}.NewLogger(&out)}
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
			var panicked map[string]any
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				if line == "" {
					continue
				}
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("not a JSON line: %q", line)
				}
				if strings.Contains(fmt.Sprint(rec["msg"]), "echo") {
					t.Fatalf("a line per message: %s", line)
				}
				if strings.Contains(fmt.Sprint(rec["msg"]), `command "boom" panicked: kaboom`) {
					panicked = rec
				}
			}
			if level == slog.LevelError {
				if out.String() != "" {
					t.Fatalf("at level error, engine and Mesh lines (warn) are hidden; got\n%s", out.String())
				}
				return
			}
			if panicked == nil || panicked["level"] != "WARN" || panicked["component"] != "mesh" {
				t.Fatalf("the panic's line: %v; log:\n%s", panicked, out.String())
			}
		})
	}
}
