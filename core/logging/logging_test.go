package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// A rotating secret's last two generations are masked and older ones are
// let go, so the masker stays small; fixed secrets stay masked throughout.
func TestRedactorRotate(t *testing.T) {
	var out bytes.Buffer
	r := &Redactor{}
	log := New(&out, slog.LevelInfo, r)
	r.Add("static-SECRET-1")
	r.Rotate("chain", "refresh-GEN-1", "access-GEN-1")
	r.Rotate("chain", "refresh-GEN-2", "access-GEN-2")
	r.Rotate("chain", "refresh-GEN-2", "access-GEN-2") // read again: not a new generation
	log.Info("m", "v", "static-SECRET-1 refresh-GEN-1 access-GEN-2")
	if s := out.String(); strings.Contains(s, "static-SECRET-1") || strings.Contains(s, "refresh-GEN-1") || strings.Contains(s, "access-GEN-2") {
		t.Fatalf("a live value was logged: %s", s)
	}
	r.Rotate("chain", "refresh-GEN-3", "access-GEN-3")
	out.Reset()
	log.Info("m", "v", "refresh-GEN-1 refresh-GEN-2 refresh-GEN-3 static-SECRET-1")
	s := out.String()
	if !strings.Contains(s, "refresh-GEN-1") {
		t.Errorf("a value three generations old is still scanned for: %s", s)
	}
	if strings.Contains(s, "refresh-GEN-2") || strings.Contains(s, "refresh-GEN-3") || strings.Contains(s, "static-SECRET-1") {
		t.Errorf("a value that can still be live was logged: %s", s)
	}
	if n := len(r.rotating["chain"][0]) + len(r.rotating["chain"][1]); n != 4 {
		t.Errorf("the slot holds %d values, want 4", n)
	}
}
