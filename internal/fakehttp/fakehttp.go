// Package fakehttp holds what every fake SaaS server needs and no vendor
// defines: a test-scoped HTTP server, injected faults that wear out, ways
// to fail like a network does, and reproducible random faults for chaos tests.
package fakehttp

import (
	"crypto/sha256"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Serve starts h on a local httptest server and returns its URL and the
// func that shuts it down, waiting for requests in flight.
func Serve(h http.HandlerFunc) (url string, stop func()) {
	ts := httptest.NewServer(h)
	return ts.URL, ts.Close
}

// CloseAtEnd closes s when tb and its subtests finish and returns s, so
// that a fake's NewTestServer is its NewServer plus this.
func CloseAtEnd[S interface{ Close() }](tb testing.TB, s S) S {
	tb.Cleanup(s.Close)
	return s
}

// Faults is a fake's list of injected faults. Each vendor matches requests
// its own way, so matching is the caller's; what they share is that the
// earliest-added matching fault wins and that a fault can wear out. The zero
// value is empty; it is not safe for concurrent use, as every fake already
// holds its own lock while it adds or takes faults.
type Faults[F any] struct {
	list []*fault[F]
}

type fault[F any] struct {
	f           F
	times, used int
}

// Add appends f, to fail the next times requests it matches, or all of them
// when times is 0 or less.
func (fs *Faults[F]) Add(f F, times int) {
	fs.list = append(fs.list, &fault[F]{f: f, times: times})
}

// Take returns the earliest-added fault that matches and is not worn out,
// and counts the request against it.
func (fs *Faults[F]) Take(match func(F) bool) (F, bool) {
	for _, ft := range fs.list {
		if ft.times > 0 && ft.used >= ft.times {
			continue
		}
		if match(ft.f) {
			ft.used++
			return ft.f, true
		}
	}
	var zero F
	return zero, false
}

// Reply is an injected fault's answer for vendors whose faults differ only
// in their error body: a status, an optional Retry-After, and either the
// test's body or the fake's own error body for the status.
type Reply struct {
	Status int // 0 means 500
	// Body is sent as is; empty sends the fake's own error body instead.
	Body string
	// ContentType is Body's; empty means application/json.
	ContentType string
	RetryAfter  string // sent as Retry-After when set
	// DropConnection answers nothing and closes the connection; the other
	// fields are ignored.
	DropConnection bool
}

// Write answers with r. writeError writes the fake's own error answer for a
// status, so each vendor keeps its error body and encoding.
func (r Reply) Write(w http.ResponseWriter, writeError func(w http.ResponseWriter, status int)) {
	if r.DropConnection {
		DropConnection(w)
		return
	}
	if r.RetryAfter != "" {
		w.Header().Set("Retry-After", r.RetryAfter)
	}
	status := r.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if r.Body == "" {
		writeError(w, status)
		return
	}
	ct := r.ContentType
	if ct == "" {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_, _ = io.WriteString(w, r.Body)
}

// DropConnection closes the client's connection without an answer, the way
// a crashed server or a load balancer reset looks to a client.
func DropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // net/http aborts the response instead
}

// Schedule decides which requests a chaos test fails, reproducibly: a
// decision depends only on the seed, on the request's key and on how many
// requests with that key came before, never on the order in which requests
// with different keys arrive. A key is the fake's description of a request
// without the ids the fake handed out or random values the client sent, so
// concurrent runs with one seed fail the same requests.
type Schedule struct {
	seed uint64
	mu   sync.Mutex
	seen map[string]uint64
}

// NewSchedule returns the schedule of seed.
func NewSchedule(seed uint64) *Schedule { return &Schedule{seed: seed, seen: map[string]uint64{}} }

// Seed is the schedule's seed: print it, so that a failure can be replayed.
func (s *Schedule) Seed() uint64 { return s.seed }

// draw returns a number in [0, 1) for the next request with key.
func (s *Schedule) draw(key string) float64 {
	s.mu.Lock()
	n := s.seen[key]
	s.seen[key]++
	s.mu.Unlock()
	var buf [16]byte
	binary.BigEndian.PutUint64(buf[:8], s.seed)
	binary.BigEndian.PutUint64(buf[8:], n)
	sum := sha256.Sum256(append(buf[:], key...))
	return float64(binary.BigEndian.Uint64(sum[:8])>>11) / (1 << 53)
}

// Chance is a fault to inject into a share (0 to 1) of the requests it matches.
type Chance[F any] struct {
	Fault F
	Share float64
}

// Chaos fails requests at random, by a Schedule. It is safe for concurrent use.
type Chaos[F any] struct {
	schedule *Schedule
	chances  []Chance[F]

	mu    sync.Mutex
	fired []int
}

// NewChaos returns chaos that injects each chance's fault into its share of
// the requests it matches, drawing from s.
func NewChaos[F any](s *Schedule, chances ...Chance[F]) *Chaos[F] {
	return &Chaos[F]{schedule: s, chances: chances, fired: make([]int, len(chances))}
}

// Pick draws once for a request with key; the chances match accepts share
// the draw in order (shares 0.1 then 0.05: a tenth of the requests get the
// first fault, a twentieth the second), and the fault drawn is returned.
func (c *Chaos[F]) Pick(key string, match func(F) bool) (F, bool) {
	draw, at := c.schedule.draw(key), 0.0
	for i, ch := range c.chances {
		if !match(ch.Fault) {
			continue
		}
		if at += ch.Share; draw < at {
			c.mu.Lock()
			c.fired[i]++
			c.mu.Unlock()
			return ch.Fault, true
		}
	}
	var zero F
	return zero, false
}

// Fired reports how many requests each chance failed, in NewChaos's order,
// so that a test can tell the chaos really happened.
func (c *Chaos[F]) Fired() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.fired...)
}
