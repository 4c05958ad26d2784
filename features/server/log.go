package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
)

// NewLogger returns the logger l describes, writing one line per record
// to w.
func (l LogSettings) NewLogger(w io.Writer) *slog.Logger {
	o := &slog.HandlerOptions{Level: l.Level}
	if l.Format == LogJSON {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// LogfLevel is the level of the lines the engine and Mesh write through
// their Logf. Logf carries no level, and every line they write today is a
// failure the node survived (a refused subscription, a coordinator error,
// a handler's panic, gnet's accept errors), save gnet's one start-up line;
// at warn, a node told to log only warnings still shows them all.
const LogfLevel = slog.LevelWarn

// logf adapts l to engine.Options.Logf and mesh.Options.Logf: one record
// at LogfLevel per line, with component naming its source. The line is
// formatted only if the level is enabled.
func logf(l *slog.Logger, component string) func(string, ...any) {
	return func(format string, args ...any) {
		ctx := context.Background()
		if !l.Enabled(ctx, LogfLevel) {
			return
		}
		l.Log(ctx, LogfLevel, fmt.Sprintf(format, args...), "component", component)
	}
}
