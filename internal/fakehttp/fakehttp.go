// Package fakehttp holds what every fake SaaS server needs and no vendor
// defines: a test-scoped HTTP server, injected faults that wear out, and
// ways to fail like a network does.
package fakehttp

import (
	"io"
	"net/http"
	"net/http/httptest"
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
