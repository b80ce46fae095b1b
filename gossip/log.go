package gossip

import (
	"bytes"
	"context"
	"log/slog"
)

// logWriter turns memberlist's log lines ("[LEVEL] memberlist: text") into
// slog records.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	line := bytes.TrimRight(p, "\n")
	level := slog.LevelInfo
	for _, l := range []struct {
		tag   string
		level slog.Level
	}{{"[DEBUG] ", slog.LevelDebug}, {"[INFO] ", slog.LevelInfo}, {"[WARN] ", slog.LevelWarn}, {"[ERR] ", slog.LevelError}, {"[ERROR] ", slog.LevelError}} {
		if rest, ok := bytes.CutPrefix(line, []byte(l.tag)); ok {
			line, level = rest, l.level
			break
		}
	}
	line, _ = bytes.CutPrefix(line, []byte("memberlist: "))
	w.log.Log(context.Background(), level, string(line), "component", "memberlist")
	return len(p), nil
}
