// Package sendgridtest is an in-memory fake of SendGrid's POST /v3/mail/send
// for tests and local runs. It checks the Authorization header and the v3
// payload shape the way the real API does, answers with SendGrid's status
// codes and error bodies, and records what it would have delivered.
//
// Choices where SendGrid's documentation is silent:
//   - Messages() holds one entry per personalization (one per email SendGrid
//     would deliver); all entries from one request share its X-Message-Id.
//   - Sandbox requests (mail_settings.sandbox_mode.enable=true) are validated
//     and answered 200 with an empty body and no X-Message-Id. Nothing is
//     delivered, so they are not in Messages() nor in the outbox; inspect
//     them with SandboxMessages().
//   - Injected faults are served after authentication and before payload
//     validation: a bad key still gets 401, as rate limiting is per account.
//   - With an empty Options.APIKey any non-empty Bearer token is accepted.
package sendgridtest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/internal/fakehttp"
)

const (
	mailSendPath = "/v3/mail/send"
	// maxBodyBytes is SendGrid's documented 30 MB limit on the whole request.
	maxBodyBytes = 30 << 20
)

// Options configures a Server.
type Options struct {
	// APIKey is the accepted key; requests need "Authorization: Bearer <key>".
	APIKey string
	// OutboxDir, when set, receives one readable text file per delivered
	// email, named so that a plain sort is chronological.
	OutboxDir string
	// Latency delays every answer, to exercise client timeouts. The wait ends
	// early when the client goes away, so Close never hangs on it.
	Latency time.Duration
}

// Server is a running fake. URL is the base URL to give the client.
type Server struct {
	URL string

	opts Options
	hs   *httptest.Server

	mu        sync.Mutex
	messages  []Message
	sandboxed []Message
	faults    []*fault
	chaos     *fakehttp.Chaos[fakehttp.Reply]
	seq       int
}

type fault struct {
	status     int
	body       string
	retryAfter string
	remaining  int // <= 0: until ClearFaults
	// afterDelivery delivers the email first, then answers the fault: the
	// answer of an accepted email is lost (a proxy's 502, a dropped reply).
	afterDelivery bool
}

// NewServer starts a fake. It panics if OutboxDir cannot be created, like
// httptest.NewServer panics when it cannot listen.
func NewServer(opts Options) *Server {
	s, err := newServer(opts)
	if err != nil {
		panic(err)
	}
	return s
}

// NewTestServer starts a fake that is closed when tb's test ends.
func NewTestServer(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := newServer(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

func newServer(opts Options) (*Server, error) {
	if opts.OutboxDir != "" {
		if err := os.MkdirAll(opts.OutboxDir, 0o755); err != nil {
			return nil, fmt.Errorf("sendgridtest: outbox: %w", err)
		}
	}
	s := &Server{opts: opts}
	s.hs = httptest.NewServer(s)
	s.URL = s.hs.URL
	return s, nil
}

// Close shuts the server down, waiting for in-flight requests.
func (s *Server) Close() { s.hs.Close() }

// Messages returns the delivered emails in arrival order. The slice is a
// copy; treat TemplateData as read-only.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneMessages(s.messages)
}

// SandboxMessages returns the emails that passed validation in sandbox mode.
func (s *Server) SandboxMessages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneMessages(s.sandboxed)
}

func cloneMessages(in []Message) []Message {
	out := slices.Clone(in)
	for i := range out {
		out[i].CustomArgs = maps.Clone(out[i].CustomArgs)
		out[i].Raw = bytes.Clone(out[i].Raw)
	}
	return out
}

// InjectFault makes the next `times` authenticated requests fail with
// status (times <= 0: every request until ClearFaults). An empty body gets
// a SendGrid-shaped error body; a non-empty retryAfter is sent as the
// Retry-After header. Faults queue in the order injected.
func (s *Server) InjectFault(status int, body string, retryAfter string, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{status: status, body: body, retryAfter: retryAfter, remaining: times})
}

// InjectFaultAfterDelivery makes the next `times` valid emails be
// delivered and then answered with status, as when SendGrid accepted an
// email and the answer was lost on the way back.
func (s *Server) InjectFaultAfterDelivery(status int, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{status: status, remaining: times, afterDelivery: true})
}

// InjectChaos refuses requests at random, reproducibly (see fakehttp.Chaos),
// once their body is read and before it is validated: a request takes a
// chance's Reply by its share. The draw is keyed by the recipients, so a
// person meets the same refusals whatever order the emails arrive in.
// Faults added with InjectFault are served first.
func (s *Server) InjectChaos(c *fakehttp.Chaos[fakehttp.Reply]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chaos = c
}

// chaosReply is the chaos answer for a request with body raw, if any.
func (s *Server) chaosReply(raw []byte) (fakehttp.Reply, bool) {
	s.mu.Lock()
	c := s.chaos
	s.mu.Unlock()
	if c == nil {
		return fakehttp.Reply{}, false
	}
	var req struct {
		Personalizations []struct {
			To []struct {
				Email string `json:"email"`
			} `json:"to"`
		} `json:"personalizations"`
	}
	_ = json.Unmarshal(raw, &req) // an unreadable body is keyed "" and refused later
	var to []string
	for _, p := range req.Personalizations {
		for _, a := range p.To {
			to = append(to, strings.ToLower(a.Email))
		}
	}
	return c.Pick(strings.Join(to, ","), func(fakehttp.Reply) bool { return true })
}

// ClearFaults drops all pending faults.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

func (s *Server) nextFault() *fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) == 0 {
		return nil
	}
	f := s.faults[0]
	if f.remaining > 0 {
		f.remaining--
		if f.remaining == 0 {
			s.faults = s.faults[1:]
		}
	}
	return f
}

// ServeHTTP implements the fake endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Read the body first: net/http only notices a client hanging up (and
	// cancels r.Context) once the body has been consumed, and wait relies
	// on that to end early.
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if !s.wait(r.Context()) {
		return
	}
	if r.URL.Path != mailSendPath {
		writeErrors(w, http.StatusNotFound, apiErr("", "resource not found"))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeErrors(w, http.StatusMethodNotAllowed, apiErr("", "method not allowed"))
		return
	}
	if e, ok := s.authorize(r); !ok {
		writeErrors(w, http.StatusUnauthorized, e)
		return
	}
	f := s.nextFault()
	if f != nil && !f.afterDelivery {
		f.serve(w)
		return
	}
	raw, err := inflate(r.Header, body, readErr)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeErrors(w, http.StatusRequestEntityTooLarge, apiErr("", "Payload Too Large"))
			return
		}
		writeErrors(w, http.StatusBadRequest, apiErr("", "Bad Request"))
		return
	}
	if reply, ok := s.chaosReply(raw); ok {
		reply.Write(w, func(w http.ResponseWriter, status int) { writeErrors(w, status, apiErr("", http.StatusText(status))) })
		return
	}
	req, errs := decodeRequest(raw)
	if len(errs) > 0 {
		writeErrors(w, http.StatusBadRequest, errs...)
		return
	}
	if req.sandbox() {
		s.mu.Lock()
		s.sandboxed = append(s.sandboxed, req.messages("", raw, time.Now())...)
		s.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		return
	}
	id := newMessageID()
	if err := s.deliver(req.messages(id, raw, time.Now())); err != nil {
		writeErrors(w, http.StatusInternalServerError, apiErr("", "sendgridtest: "+err.Error()))
		return
	}
	if f != nil {
		f.serve(w)
		return
	}
	w.Header().Set("X-Message-Id", id)
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) wait(ctx context.Context) bool {
	if s.opts.Latency <= 0 {
		return true
	}
	t := time.NewTimer(s.opts.Latency)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Server) authorize(r *http.Request) (apiError, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return apiErr("", "authorization required"), false
	}
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" || (s.opts.APIKey != "" && token != s.opts.APIKey) {
		return apiErr("", "The provided authorization grant is invalid, expired, or revoked"), false
	}
	return apiError{}, true
}

func (f *fault) serve(w http.ResponseWriter) {
	if f.retryAfter != "" {
		w.Header().Set("Retry-After", f.retryAfter)
	}
	if f.body == "" {
		writeErrors(w, f.status, apiErr("", http.StatusText(f.status)))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.status)
	_, _ = io.WriteString(w, f.body)
}

// inflate honours Content-Encoding: gzip, which sendgrid-go can send.
func inflate(h http.Header, body []byte, readErr error) ([]byte, error) {
	if readErr != nil || !strings.EqualFold(h.Get("Content-Encoding"), "gzip") {
		return body, readErr
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	// Bound the inflated size too, so a tiny gzip bomb cannot exhaust memory.
	raw, err := io.ReadAll(io.LimitReader(zr, maxBodyBytes+1))
	if err == nil && len(raw) > maxBodyBytes {
		return nil, &http.MaxBytesError{Limit: maxBodyBytes}
	}
	return raw, err
}

// deliver records msgs and writes their outbox files under one lock, so file
// names, sequence numbers and Messages() order all agree.
func (s *Server) deliver(msgs []Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range msgs {
		s.seq++
		msgs[i].Seq = s.seq
		if s.opts.OutboxDir != "" {
			if err := writeOutbox(s.opts.OutboxDir, msgs[i]); err != nil {
				return err
			}
		}
	}
	s.messages = append(s.messages, msgs...)
	return nil
}

// newMessageID mimics SendGrid's 22-character URL-safe ids.
func newMessageID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+).
	return base64.RawURLEncoding.EncodeToString(b)
}
