package server

import (
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
