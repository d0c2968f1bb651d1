// Package logging builds onboard's structured logger: JSON lines that Cloud
// Logging and CloudWatch both parse, with Cloud Logging's "severity" and
// "message" keys, and a last line of defence that masks known secret values.
package logging

import (
	"io"
	"log/slog"
)

// LevelCritical is Cloud Logging's CRITICAL, for failures a human must fix
// (a broken token chain, a user that could not be rolled back).
const LevelCritical = slog.Level(12)

// New returns a JSON logger writing to w at the given minimum level.
func New(w io.Writer, level slog.Leveler, redactor *Redactor) *slog.Logger {
	if redactor == nil {
		redactor = &Redactor{}
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 {
				switch a.Key {
				case slog.LevelKey:
					return slog.String("severity", severity(a.Value.Any().(slog.Level)))
				case slog.MessageKey:
					a.Key = "message"
				}
			}
			switch v := a.Value.Any().(type) {
			case string:
				a.Value = slog.StringValue(redactor.Redact(v))
			case error: // logged as its text, which may quote an upstream
				a.Value = slog.StringValue(redactor.Redact(v.Error()))
			}
			return a
		},
	}))
}

// severity maps slog levels to Cloud Logging's LogSeverity names.
func severity(l slog.Level) string {
	switch {
	case l >= LevelCritical:
		return "CRITICAL"
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= slog.LevelInfo:
		return "INFO"
	}
	return "DEBUG"
}

// ParseLevel reads ONBOARD_LOG_LEVEL (debug, info, warn, error); unknown means info.
func ParseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}
