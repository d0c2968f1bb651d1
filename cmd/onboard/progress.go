package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progress reports rows as they finish: a redrawn bar on a terminal, and
// on anything else (CI logs, files) a plain line every few seconds, so the
// output stays readable.
type progress struct {
	w        io.Writer
	total    int
	tty      bool
	interval time.Duration

	mu       sync.Mutex
	finished int
	failed   int
	started  time.Time
	lastLine time.Time
}

func newProgress(w io.Writer, total int, tty bool) *progress {
	return &progress{w: w, total: total, tty: tty, interval: 2 * time.Second, started: time.Now()}
}

func (p *progress) done(r rowResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finished++
	if r.err != nil {
		p.failed++
	}
	switch {
	case p.tty:
		p.drawBar()
	case time.Since(p.lastLine) >= p.interval || p.finished == p.total:
		p.lastLine = time.Now()
		fmt.Fprintf(p.w, "import: %d/%d rows done, %d failed\n", p.finished, p.total, p.failed)
	}
}

func (p *progress) drawBar() {
	const width = 30
	filled := width * p.finished / max(p.total, 1)
	rate := float64(p.finished) / max(time.Since(p.started).Seconds(), 0.001)
	eta := ""
	if rate > 0 && p.finished < p.total {
		eta = " eta " + (time.Duration(float64(p.total-p.finished)/rate) * time.Second).Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d %d failed %.0f rows/s%s   ",
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), p.finished, p.total, p.failed, rate, eta)
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprintln(p.w)
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
