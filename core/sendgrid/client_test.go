package sendgrid_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/sendgrid"
	"github.com/onboard-dev/onboard/core/sendgrid/sendgridtest"
	"github.com/onboard-dev/onboard/internal/leakcheck"
)

// secretKey is distinctive so a leak is unambiguous in any error text.
const secretKey = "SG.zz-DO-NOT-LEAK-7f3c91e0b2.q8Vw"

const setupURL = "https://looker.example.com/account/setup/3f9a?token=abc&next=%2F"

func newFake(t *testing.T, opts sendgridtest.Options) *sendgridtest.Server {
	t.Helper()
	if opts.APIKey == "" {
		opts.APIKey = secretKey
	}
	return sendgridtest.NewTestServer(t, opts)
}

func newClient(t *testing.T, cfg sendgrid.Config) *sendgrid.Client {
	t.Helper()
	if cfg.APIKey == "" {
		cfg.APIKey = secretKey
	}
	c, err := sendgrid.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func mustParse(t *testing.T, s string) sendgrid.Address {
	t.Helper()
	a, err := sendgrid.ParseAddress(s)
	if err != nil {
		t.Fatalf("ParseAddress(%q): %v", s, err)
	}
	return a
}

func textMessage(t *testing.T) sendgrid.Message {
	return sendgrid.Message{
		From:       mustParse(t, "Data Team <data@example.com>"),
		To:         sendgrid.Address{Name: "Ada Lovelace", Email: "ada@example.com"},
		Subject:    "Welcome to Looker",
		Text:       "Hi Ada, set your password: " + setupURL,
		CustomArgs: map[string]string{"request_id": "req-123"},
	}
}

func templateMessage(t *testing.T) sendgrid.Message {
	m := textMessage(t)
	m.Subject, m.Text = "", ""
	m.TemplateID = "d-5b2c0e1f"
	m.TemplateData = map[string]any{
		"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "setup_url": setupURL,
	}
	return m
}

// sendOne sends m and returns the single message the fake captured.
func sendOne(t *testing.T, m sendgrid.Message) (string, sendgridtest.Message) {
	t.Helper()
	fake := newFake(t, sendgridtest.Options{})
	id, err := newClient(t, sendgrid.Config{BaseURL: fake.URL}).Send(t.Context(), m)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs := fake.Messages()
	if len(msgs) != 1 {
		t.Fatalf("fake captured %d messages, want 1", len(msgs))
	}
	if id == "" || id != msgs[0].MessageID {
		t.Fatalf("Send returned id %q, fake issued %q", id, msgs[0].MessageID)
	}
	return id, msgs[0]
}

// rawTracking decodes the settings as sent, to check explicit false values
// rather than the fake's interpretation of them.
func rawTracking(t *testing.T, raw []byte) map[string]map[string]any {
	t.Helper()
	var body struct {
		TrackingSettings map[string]map[string]any `json:"tracking_settings"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatal(err)
	}
	return body.TrackingSettings
}

func TestSendText(t *testing.T) {
	_, got := sendOne(t, textMessage(t))
	want := sendgridtest.Address{Name: "Data Team", Email: "data@example.com"}
	if got.From != want {
		t.Errorf("From = %+v, want %+v", got.From, want)
	}
	if len(got.To) != 1 || got.To[0].Email != "ada@example.com" || got.To[0].Name != "Ada Lovelace" {
		t.Errorf("To = %+v", got.To)
	}
	if got.Subject != "Welcome to Looker" || !strings.Contains(got.Text, setupURL) || got.TemplateID != "" || got.TemplateData != nil {
		t.Errorf("content = %+v", got)
	}
	if got.CustomArgs["request_id"] != "req-123" {
		t.Errorf("custom_args = %v", got.CustomArgs)
	}
	if got.ClickTracking || got.ClickTrackingText || got.OpenTracking {
		t.Errorf("tracking must be off: click=%v text=%v open=%v", got.ClickTracking, got.ClickTrackingText, got.OpenTracking)
	}
	ct := rawTracking(t, got.Raw)["click_tracking"]
	if ct["enable"] != false || ct["enable_text"] != false {
		t.Errorf("click_tracking sent as %v, want explicit enable=false, enable_text=false", ct)
	}
}

func TestSendTemplate(t *testing.T) {
	m := templateMessage(t)
	_, got := sendOne(t, m)
	if got.TemplateID != m.TemplateID {
		t.Errorf("TemplateID = %q", got.TemplateID)
	}
	for k, v := range m.TemplateData {
		if got.TemplateData[k] != v {
			t.Errorf("dynamic_template_data[%q] = %v, want %v", k, got.TemplateData[k], v)
		}
	}
	if got.Subject != "" || got.Text != "" {
		t.Errorf("template sends must not carry subject/content: %q %q", got.Subject, got.Text)
	}
	if got.ClickTracking || got.CustomArgs["request_id"] != "req-123" {
		t.Errorf("click=%v custom_args=%v", got.ClickTracking, got.CustomArgs)
	}
}

func TestTemplateReplacesSubjectAndText(t *testing.T) {
	m := templateMessage(t)
	m.Subject, m.Text = "ignored", "ignored"
	_, got := sendOne(t, m)
	if bytes.Contains(got.Raw, []byte("ignored")) {
		t.Fatalf("subject/text leaked into a template send: %s", got.Raw)
	}
}

func TestSendAPIErrors(t *testing.T) {
	cases := []struct {
		name          string
		status        int
		body, retry   string
		wantMessages  []string
		wantTemporary bool
		wantRetry     time.Duration
	}{
		{
			name: "400 with field errors", status: 400,
			body:         `{"errors":[{"message":"The from email does not contain a valid address.","field":"from.email","help":"http://x"},{"message":"general","field":null,"help":null}]}`,
			wantMessages: []string{"from.email: The from email does not contain a valid address.", "general"},
		},
		{name: "403 default body", status: 403, wantMessages: []string{"Forbidden"}},
		{name: "429 Retry-After", status: 429, retry: "7", wantMessages: []string{"Too Many Requests"}, wantTemporary: true, wantRetry: 7 * time.Second},
		{name: "500", status: 500, wantMessages: []string{"Internal Server Error"}, wantTemporary: true},
		{name: "502 non-JSON body", status: 502, body: "<html>bad gateway</html>", wantMessages: []string{"<html>bad gateway</html>"}, wantTemporary: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFake(t, sendgridtest.Options{})
			fake.InjectFault(tc.status, tc.body, tc.retry, 1)
			_, err := newClient(t, sendgrid.Config{BaseURL: fake.URL}).Send(t.Context(), textMessage(t))
			apiErr, ok := errors.AsType[*sendgrid.APIError](err)
			if !ok {
				t.Fatalf("want *APIError, got %T %v", err, err)
			}
			if apiErr.StatusCode != tc.status || !slices.Equal(apiErr.Messages, tc.wantMessages) || apiErr.RetryAfter != tc.wantRetry {
				t.Fatalf("got %+v", apiErr)
			}
			if apiErr.Temporary() != tc.wantTemporary || sendgrid.IsTemporary(err) != tc.wantTemporary {
				t.Fatalf("Temporary=%v IsTemporary=%v, want %v", apiErr.Temporary(), sendgrid.IsTemporary(err), tc.wantTemporary)
			}
			if !strings.Contains(err.Error(), fmt.Sprint(tc.status)) {
				t.Fatalf("error text lacks the status: %v", err)
			}
		})
	}
}

func TestWrongKeyIsPermanentAPIError(t *testing.T) {
	fake := newFake(t, sendgridtest.Options{APIKey: "SG.the-right-one"})
	_, err := newClient(t, sendgrid.Config{BaseURL: fake.URL}).Send(t.Context(), textMessage(t))
	apiErr, ok := errors.AsType[*sendgrid.APIError](err)
	if !ok || apiErr.StatusCode != 401 || sendgrid.IsTemporary(err) ||
		!slices.Equal(apiErr.Messages, []string{"The provided authorization grant is invalid, expired, or revoked"}) {
		t.Fatalf("got %v", err)
	}
}

// TestSendDoesNotRetry pins the no-retry contract: one temporary failure
// must surface, and the fake must see exactly one attempt.
func TestSendDoesNotRetry(t *testing.T) {
	fake := newFake(t, sendgridtest.Options{})
	fake.InjectFault(503, "", "", 1)
	c := newClient(t, sendgrid.Config{BaseURL: fake.URL})
	if _, err := c.Send(t.Context(), textMessage(t)); !sendgrid.IsTemporary(err) {
		t.Fatalf("want temporary error, got %v", err)
	}
	if n := len(fake.Messages()); n != 0 {
		t.Fatalf("Send retried on its own: fake delivered %d", n)
	}
	if _, err := c.Send(t.Context(), textMessage(t)); err != nil {
		t.Fatalf("next attempt: %v", err)
	}
}

func TestSendTimeout(t *testing.T) {
	// Latency is finite so that an ignored Timeout makes Send succeed (and
	// the test fail) instead of hanging.
	fake := newFake(t, sendgridtest.Options{Latency: 10 * time.Second})
	c := newClient(t, sendgrid.Config{BaseURL: fake.URL, Timeout: 50 * time.Millisecond})
	_, err := c.Send(t.Context(), textMessage(t))
	if err == nil {
		t.Fatal("want timeout error")
	}
	if !sendgrid.IsTemporary(err) || !errors.Is(err, sendgrid.ErrTransport) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want temporary transport timeout, got %v", err)
	}
	if _, ok := errors.AsType[*sendgrid.APIError](err); ok {
		t.Fatal("a timeout is not an API answer")
	}
}

func TestCallerCancellationIsTransportError(t *testing.T) {
	fake := newFake(t, sendgridtest.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := newClient(t, sendgrid.Config{BaseURL: fake.URL}).Send(ctx, textMessage(t))
	if !errors.Is(err, context.Canceled) || !errors.Is(err, sendgrid.ErrTransport) {
		t.Fatalf("got %v", err)
	}
}

func TestBaseURLForms(t *testing.T) {
	fake := newFake(t, sendgridtest.Options{})
	for _, base := range []string{fake.URL, fake.URL + "/", fake.URL + "//", fake.URL + "/v3/mail/send"} {
		if _, err := newClient(t, sendgrid.Config{BaseURL: base}).Send(t.Context(), textMessage(t)); err != nil {
			t.Errorf("BaseURL %q: %v", base, err)
		}
	}
	if n := len(fake.Messages()); n != 4 {
		t.Fatalf("fake got %d messages, want 4", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestDefaultBaseURLAndHeaders(t *testing.T) {
	var got *http.Request
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r
		return &http.Response{StatusCode: 202, Header: http.Header{"X-Message-Id": {"abc"}}, Body: io.NopCloser(strings.NewReader(""))}, nil
	})}
	id, err := newClient(t, sendgrid.Config{HTTPClient: hc}).Send(t.Context(), textMessage(t))
	if err != nil || id != "abc" {
		t.Fatalf("Send = %q, %v", id, err)
	}
	if got.Method != http.MethodPost || got.URL.String() != "https://api.sendgrid.com/v3/mail/send" ||
		got.Header.Get("Authorization") != "Bearer "+secretKey || got.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("request = %s %s %v", got.Method, got.URL, got.Header)
	}
	if _, ok := got.Context().Deadline(); !ok {
		t.Fatal("the default timeout must put a deadline on the request")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	cases := map[string]sendgrid.Config{
		"empty key":        {},
		"key with newline": {APIKey: secretKey + "\r\nX-Evil: 1"},
		"negative timeout": {APIKey: secretKey, Timeout: -time.Second},
		"ftp scheme":       {APIKey: secretKey, BaseURL: "ftp://api.sendgrid.com"},
		"no host":          {APIKey: secretKey, BaseURL: "https://"},
		"relative":         {APIKey: secretKey, BaseURL: "api.sendgrid.com"},
		"unparseable":      {APIKey: secretKey, BaseURL: "https://api sendgrid.com:port"},
		"query":            {APIKey: secretKey, BaseURL: "https://api.sendgrid.com?x=1"},
		"userinfo":         {APIKey: secretKey, BaseURL: "https://apikey:" + secretKey + "@api.sendgrid.com"},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := sendgrid.New(cfg)
			if err == nil || c != nil {
				t.Fatalf("New(%v) = %v, %v; want error", cfg, c, err)
			}
			assertNoSecret(t, err.Error())
		})
	}
}

func assertNoSecret(t *testing.T, s string) {
	t.Helper()
	if found := leakcheck.Find(s, map[string]string{"API key": secretKey}); found != nil {
		t.Fatalf("API key leaked (%v): %s", found, s)
	}
}

func TestSecretNeverInSendErrors(t *testing.T) {
	// The fault body echoes the key, as a misbehaving proxy might.
	echo := newFake(t, sendgridtest.Options{})
	echo.InjectFault(500, `{"errors":[{"message":"bad key `+secretKey+`","field":null,"help":null}]}`, "", 1)
	proxy := newFake(t, sendgridtest.Options{})
	proxy.InjectFault(502, "upstream said Authorization: Bearer "+secretKey, "", 1)
	encoded := newFake(t, sendgridtest.Options{})
	encoded.InjectFault(502, "upstream said, base64-encoded: "+base64.StdEncoding.EncodeToString([]byte("Authorization: Bearer "+secretKey)), "", 1)
	wrongKey := newFake(t, sendgridtest.Options{APIKey: "SG.other"})
	slow := newFake(t, sendgridtest.Options{Latency: 10 * time.Second})
	refused := closedAddr(t)

	cases := map[string]sendgrid.Config{
		"bad status echoing key":    {BaseURL: echo.URL},
		"non-JSON body echoing key": {BaseURL: proxy.URL},
		"body echoing key base64":   {BaseURL: encoded.URL},
		"401":                       {BaseURL: wrongKey.URL},
		"timeout":                   {BaseURL: slow.URL, Timeout: 50 * time.Millisecond},
		"connection refused":        {BaseURL: "http://" + refused},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := newClient(t, cfg).Send(t.Context(), textMessage(t))
			if err == nil {
				t.Fatal("want error")
			}
			assertNoSecret(t, fmt.Sprintf("%v %+v %#v", err, err, err))
			for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
				assertNoSecret(t, u.Error())
			}
			if name == "connection refused" && !sendgrid.IsTemporary(err) {
				t.Fatalf("connection refused must be temporary: %v", err)
			}
		})
	}
}

// closedAddr returns an address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestSecretNeverPrinted(t *testing.T) {
	cfg := sendgrid.Config{APIKey: secretKey, BaseURL: "https://api.eu.sendgrid.com", Timeout: time.Second}
	c := newClient(t, cfg)
	var out bytes.Buffer
	slog.New(slog.NewJSONHandler(&out, nil)).Info("cfg", "config", cfg, "client", c)
	slog.New(slog.NewTextHandler(&out, nil)).Info("cfg", "config", cfg, "client", c)
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&out, "%v %+v %#v %s %v %+v %#v %s", cfg, cfg, cfg, &cfg, c, c, c, *c)
	out.Write(js)
	assertNoSecret(t, out.String())
	if !strings.Contains(out.String(), "api.eu.sendgrid.com") || !strings.Contains(out.String(), "[REDACTED]") {
		t.Fatalf("redacted output should still be useful: %s", out.String())
	}
}

func TestValidation(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(m *sendgrid.Message)
		want   string
	}{
		{"missing to", func(m *sendgrid.Message) { m.To = sendgrid.Address{} }, "to.email is required"},
		{"missing from", func(m *sendgrid.Message) { m.From = sendgrid.Address{} }, "from.email is required"},
		{"invalid to", func(m *sendgrid.Message) { m.To.Email = "ada@" }, "to.email is not a valid"},
		{"display name in email", func(m *sendgrid.Message) { m.To.Email = "Ada <ada@example.com>" }, "to.email is not a valid"},
		{"CRLF in subject", func(m *sendgrid.Message) { m.Subject = "Hi\r\nBcc: x@example.com" }, "subject must not contain CR or LF"},
		{"LF in to name", func(m *sendgrid.Message) { m.To.Name = "Ada\nBcc: x" }, "to must not contain CR or LF"},
		{"CR in from email", func(m *sendgrid.Message) { m.From.Email = "data@example.com\r" }, "from must not contain CR or LF"},
		{"no text nor template", func(m *sendgrid.Message) { m.Text = "" }, "either text or template_id"},
		{"text without subject", func(m *sendgrid.Message) { m.Subject = "" }, "subject is required"},
		{"template data without template", func(m *sendgrid.Message) { m.TemplateData = map[string]any{"a": 1} }, "template_data requires template_id"},
		{"legacy template id", func(m *sendgrid.Message) { m.TemplateID = "5b2c0e1f" }, `starting with "d-"`},
		{"custom args too big", func(m *sendgrid.Message) {
			m.CustomArgs = map[string]string{"request_id": "r", "blob": strings.Repeat("x", sendgrid.MaxCustomArgsBytes)}
		}, "exceeds"},
		{"empty custom arg key", func(m *sendgrid.Message) { m.CustomArgs = map[string]string{"": "v"} }, "keys must be non-empty"},
		{"unencodable template data", func(m *sendgrid.Message) {
			*m = templateMessage(t)
			m.TemplateData["f"] = func() {}
		}, "not JSON-encodable"},
	}
	// Validation must fail before any network use.
	hc := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		t.Error("invalid message reached the network")
		return nil, errors.New("unreachable")
	})}
	c := newClient(t, sendgrid.Config{HTTPClient: hc})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := textMessage(t)
			tc.mutate(&m)
			_, err := c.Send(t.Context(), m)
			if !errors.Is(err, sendgrid.ErrInvalidMessage) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalidMessage containing %q", err, tc.want)
			}
			if sendgrid.IsTemporary(err) {
				t.Fatal("validation errors are permanent")
			}
		})
	}
}

func TestParseAddress(t *testing.T) {
	cases := []struct {
		in      string
		want    sendgrid.Address
		wantErr bool
	}{
		{in: "Data Team <data@example.com>", want: sendgrid.Address{Name: "Data Team", Email: "data@example.com"}},
		{in: `"Team, Data" <data@example.com>`, want: sendgrid.Address{Name: "Team, Data", Email: "data@example.com"}},
		{in: "  data@example.com ", want: sendgrid.Address{Email: "data@example.com"}},
		{in: "=?utf-8?q?Donn=C3=A9es?= <d@example.com>", want: sendgrid.Address{Name: "Données", Email: "d@example.com"}},
		{in: "", wantErr: true},
		{in: "Data Team", wantErr: true},
		{in: "a@example.com, b@example.com", wantErr: true},
		{in: "Data\r\nBcc: x@example.com <data@example.com>", wantErr: true},
	}
	for _, tc := range cases {
		got, err := sendgrid.ParseAddress(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseAddress(%q) = %+v, %v; want %+v, err=%v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// A welcome may be tried again only when SendGrid cannot have it: the
// request never left whole. After it was written, a timeout or a cancelled
// caller leaves the outcome unknown, because SendGrid may have queued it.
func TestWelcomeNotDeliveredOnlyWhenNeverSent(t *testing.T) {
	slow := newFake(t, sendgridtest.Options{Latency: 10 * time.Second})
	fast := newFake(t, sendgridtest.Options{})
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	cases := []struct {
		name        string
		cfg         sendgrid.Config
		ctx         context.Context
		notSentSure bool
	}{
		{"cancelled before sending", sendgrid.Config{BaseURL: fast.URL}, cancelled, true},
		{"connection refused", sendgrid.Config{BaseURL: "http://" + closedAddr(t)}, t.Context(), true},
		{"timeout after sending", sendgrid.Config{BaseURL: slow.URL, Timeout: 50 * time.Millisecond}, t.Context(), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, err := sendgrid.NewWelcomer(newClient(t, tc.cfg), "onboard@example.com")
			if err != nil {
				t.Fatal(err)
			}
			_, err = w.SendWelcome(tc.ctx, core.Welcome{To: core.Person{Email: "ada@example.com"}, Subject: "Welcome", Text: "Hi"})
			if err == nil {
				t.Fatal("sent")
			}
			if got := errors.Is(err, core.ErrNotDelivered); got != tc.notSentSure {
				t.Fatalf("ErrNotDelivered = %v, want %v (%v)", got, tc.notSentSure, err)
			}
		})
	}
}
