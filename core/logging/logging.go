// Package logging builds onboard's structured logger: JSON lines that Cloud
// Logging and CloudWatch both parse, with Cloud Logging's "severity" and
// "message" keys, and a last line of defence that masks known secret values.
package logging

import (
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

// LevelCritical is Cloud Logging's CRITICAL, for failures a human must fix
// (a broken token chain, a user that could not be rolled back).
const LevelCritical = slog.Level(12)

// Redactor masks registered secret values wherever they appear in a log
// line's message or string attributes. Code never logs secrets on purpose;
// this catches the accident (an upstream error echoing a token).
type Redactor struct {
	mu      sync.RWMutex
	secrets []string
	known   map[string]bool
	// rotating holds, per slot, the values of a secret that keeps changing
	// (a token chain's pair): this generation's and the one before.
	rotating map[string][2][]string
}

// Rotate registers the current values of a secret that changes, such as a
// rotating token pair: they replace the slot's values of two generations
// ago, so a long-lived instance masks what can still be live without
// scanning every token it ever saw. Registering the current values again
// changes nothing.
func (r *Redactor) Rotate(slot string, values ...string) {
	var keep []string
	for _, v := range values {
		if len(v) >= 6 {
			keep = append(keep, v)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rotating == nil {
		r.rotating = map[string][2][]string{}
	}
	gens := r.rotating[slot]
	if slices.Equal(gens[0], keep) {
		return
	}
	r.rotating[slot] = [2][]string{keep, gens[0]}
}

// Add registers secret values; very short ones are ignored, because masking
// "1" would shred every number in the log.
func (r *Redactor) Add(values ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.known == nil {
		r.known = map[string]bool{}
	}
	for _, v := range values {
		if len(v) >= 6 && !r.known[v] {
			r.known[v] = true
			r.secrets = append(r.secrets, v)
		}
	}
}

func (r *Redactor) redact(s string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, secret := range r.secrets {
		if strings.Contains(s, secret) {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	for _, gens := range r.rotating {
		for _, gen := range gens {
			for _, secret := range gen {
				s = strings.ReplaceAll(s, secret, "[redacted]")
			}
		}
	}
	return s
}

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
			if a.Value.Kind() == slog.KindString {
				a.Value = slog.StringValue(redactor.redact(a.Value.String()))
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
