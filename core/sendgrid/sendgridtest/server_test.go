package sendgridtest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core/sendgrid/sendgridtest"
	"github.com/onboard-dev/onboard/internal/fakehttp"
)

const testKey = "SG.test-key"

type errorItem struct {
	Message string  `json:"message"`
	Field   *string `json:"field"`
	Help    *string `json:"help"`
}

// validBody is a minimal text message the real API accepts; cases mutate it.
func validBody() map[string]any {
	return map[string]any{
		"personalizations": []any{map[string]any{
			"to": []any{map[string]any{"email": "ada@example.com", "name": "Ada Lovelace"}},
		}},
		"from":    map[string]any{"email": "data@example.com", "name": "Data Team"},
		"subject": "Welcome",
		"content": []any{map[string]any{"type": "text/plain", "value": "Hello Ada"}},
	}
}

// templateBody is a dynamic-template message: no subject, no content.
func templateBody(setupURL string) map[string]any {
	b := validBody()
	delete(b, "subject")
	delete(b, "content")
	b["template_id"] = "d-0123456789abcdef"
	b["custom_args"] = map[string]any{"request_id": "req-42"}
	b["tracking_settings"] = map[string]any{"click_tracking": map[string]any{"enable": false, "enable_text": false}}
	firstPersonalization(b)["dynamic_template_data"] = map[string]any{"first_name": "Ada", "setup_url": setupURL}
	return b
}

func firstPersonalization(b map[string]any) map[string]any {
	return b["personalizations"].([]any)[0].(map[string]any)
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func send(t *testing.T, srv *sendgridtest.Server, method, path string, header http.Header, body []byte) reply {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

func authHeader(key string) http.Header {
	return http.Header{"Authorization": {"Bearer " + key}, "Content-Type": {"application/json"}}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func post(t *testing.T, srv *sendgridtest.Server, body any) reply {
	t.Helper()
	raw, ok := body.([]byte)
	if !ok {
		raw = mustJSON(t, body)
	}
	return send(t, srv, http.MethodPost, "/v3/mail/send", authHeader(testKey), raw)
}

func decodeErrors(t *testing.T, r reply) []errorItem {
	t.Helper()
	var eb struct{ Errors []errorItem }
	if err := json.Unmarshal(r.body, &eb); err != nil || len(eb.Errors) == 0 {
		t.Fatalf("want SendGrid error body, got %d %q (%v)", r.status, r.body, err)
	}
	return eb.Errors
}

func newServer(t *testing.T) *sendgridtest.Server {
	return sendgridtest.NewTestServer(t, sendgridtest.Options{APIKey: testKey})
}

func assertNoMessages(t *testing.T, srv *sendgridtest.Server) {
	t.Helper()
	if got := srv.Messages(); len(got) != 0 {
		t.Fatalf("want nothing delivered, got %d messages", len(got))
	}
}

func TestAuthorization(t *testing.T) {
	srv := newServer(t)
	body := mustJSON(t, validBody())
	cases := []struct {
		name, auth, wantBody string
	}{
		{"missing header", "", `{"errors":[{"message":"authorization required","field":null,"help":null}]}`},
		{"wrong key", "Bearer SG.other", `{"errors":[{"message":"The provided authorization grant is invalid, expired, or revoked","field":null,"help":null}]}`},
		{"not bearer", "Basic " + testKey, `{"errors":[{"message":"The provided authorization grant is invalid, expired, or revoked","field":null,"help":null}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.auth != "" {
				h.Set("Authorization", tc.auth)
			}
			r := send(t, srv, http.MethodPost, "/v3/mail/send", h, body)
			if r.status != http.StatusUnauthorized || strings.TrimSpace(string(r.body)) != tc.wantBody {
				t.Fatalf("got %d %s, want 401 %s", r.status, r.body, tc.wantBody)
			}
		})
	}
	assertNoMessages(t, srv)
}

func TestAnyBearerAcceptedWithoutConfiguredKey(t *testing.T) {
	srv := sendgridtest.NewTestServer(t, sendgridtest.Options{})
	if r := post(t, srv, validBody()); r.status != http.StatusAccepted {
		t.Fatalf("got %d %s, want 202", r.status, r.body)
	}
	r := send(t, srv, http.MethodPost, "/v3/mail/send", http.Header{}, mustJSON(t, validBody()))
	if r.status != http.StatusUnauthorized {
		t.Fatalf("missing header: got %d, want 401", r.status)
	}
}

func TestAcceptsTextMessage(t *testing.T) {
	srv := newServer(t)
	first, second := post(t, srv, validBody()), post(t, srv, validBody())
	for _, r := range []reply{first, second} {
		if r.status != http.StatusAccepted || len(r.body) != 0 || r.header.Get("X-Message-Id") == "" {
			t.Fatalf("got %d body=%q id=%q, want 202, empty body, X-Message-Id", r.status, r.body, r.header.Get("X-Message-Id"))
		}
	}
	if first.header.Get("X-Message-Id") == second.header.Get("X-Message-Id") {
		t.Fatal("X-Message-Id repeated across requests")
	}
	msgs := srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("got %d messages, want 2", len(msgs))
	}
	m := msgs[0]
	want := sendgridtest.Address{Name: "Ada Lovelace", Email: "ada@example.com"}
	if m.MessageID != first.header.Get("X-Message-Id") || len(m.To) != 1 || m.To[0] != want ||
		m.From.Name != "Data Team" || m.Subject != "Welcome" || m.Text != "Hello Ada" || m.TemplateID != "" {
		t.Fatalf("decoded message = %+v", m)
	}
	if !m.ClickTracking || !m.OpenTracking {
		t.Fatal("absent tracking_settings must fall back to the account default (on)")
	}
	if !json.Valid(m.Raw) || !bytes.Contains(m.Raw, []byte(`"Hello Ada"`)) {
		t.Fatalf("Raw = %s", m.Raw)
	}
}

func TestAcceptsValidShapes(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(b map[string]any)
	}{
		{"template without subject or content", func(b map[string]any) {
			delete(b, "subject")
			delete(b, "content")
			b["template_id"] = "d-123"
		}},
		{"subject only in personalization", func(b map[string]any) {
			delete(b, "subject")
			firstPersonalization(b)["subject"] = "Per-person"
		}},
		{"text/plain then text/html", func(b map[string]any) {
			b["content"] = []any{
				map[string]any{"type": "text/plain", "value": "hi"},
				map[string]any{"type": "text/html", "value": "<p>hi</p>"},
			}
		}},
		{"custom_args at both levels", func(b map[string]any) {
			b["custom_args"] = map[string]any{"a": "1"}
			firstPersonalization(b)["custom_args"] = map[string]any{"b": "2"}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t)
			b := validBody()
			tc.mutate(b)
			if r := post(t, srv, b); r.status != http.StatusAccepted {
				t.Fatalf("got %d %s, want 202", r.status, r.body)
			}
		})
	}
}

func TestRejectsInvalidShapes(t *testing.T) {
	many := func(n int, item func(i int) any) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = item(i)
		}
		return out
	}
	to := func(i int) any { return map[string]any{"email": fmt.Sprintf("u%d@example.com", i)} }
	cases := []struct {
		name      string
		mutate    func(b map[string]any)
		raw       string // sent instead of the mutated body when set
		wantField string // "" means field:null
	}{
		{name: "missing personalizations", mutate: func(b map[string]any) { delete(b, "personalizations") }, wantField: "personalizations"},
		{name: "empty personalizations", mutate: func(b map[string]any) { b["personalizations"] = []any{} }, wantField: "personalizations"},
		{name: "1001 personalizations", mutate: func(b map[string]any) {
			b["personalizations"] = many(1001, func(i int) any { return map[string]any{"to": []any{to(i)}} })
		}, wantField: "personalizations"},
		{name: "1001 recipients", mutate: func(b map[string]any) {
			firstPersonalization(b)["to"] = many(1001, to)
		}, wantField: "personalizations"},
		{name: "no to", mutate: func(b map[string]any) { delete(firstPersonalization(b), "to") }, wantField: "personalizations.0.to"},
		{name: "invalid to email", mutate: func(b map[string]any) {
			firstPersonalization(b)["to"] = []any{map[string]any{"email": "not-an-address"}}
		}, wantField: "personalizations.0.to.0.email"},
		{name: "display name inside email", mutate: func(b map[string]any) {
			firstPersonalization(b)["to"] = []any{map[string]any{"email": "Ada <ada@example.com>"}}
		}, wantField: "personalizations.0.to.0.email"},
		{name: "duplicate between to and cc", mutate: func(b map[string]any) {
			firstPersonalization(b)["cc"] = []any{map[string]any{"email": "ADA@example.com"}}
		}, wantField: "personalizations.0"},
		{name: "missing from", mutate: func(b map[string]any) { delete(b, "from") }, wantField: "from.email"},
		{name: "invalid from", mutate: func(b map[string]any) { b["from"] = map[string]any{"email": "data@"} }, wantField: "from.email"},
		{name: "no content and no template", mutate: func(b map[string]any) { delete(b, "content") }, wantField: "content"},
		{name: "empty content value", mutate: func(b map[string]any) {
			b["content"] = []any{map[string]any{"type": "text/plain", "value": ""}}
		}, wantField: "content.0.value"},
		{name: "text/plain not first", mutate: func(b map[string]any) {
			b["content"] = []any{
				map[string]any{"type": "text/html", "value": "<p>hi</p>"},
				map[string]any{"type": "text/plain", "value": "hi"},
			}
		}, wantField: "content.1.type"},
		{name: "missing subject", mutate: func(b map[string]any) { delete(b, "subject") }, wantField: "subject"},
		{name: "numeric custom arg", mutate: func(b map[string]any) {
			b["custom_args"] = map[string]any{"attempt": 3}
		}, wantField: "personalizations.0.custom_args.attempt"},
		{name: "custom_args over 10000 bytes", mutate: func(b map[string]any) {
			b["custom_args"] = map[string]any{"a": strings.Repeat("x", 6000)}
			firstPersonalization(b)["custom_args"] = map[string]any{"b": strings.Repeat("y", 4000)}
		}, wantField: "personalizations.0.custom_args"},
		{name: "dynamic_template_data without template_id", mutate: func(b map[string]any) {
			firstPersonalization(b)["dynamic_template_data"] = map[string]any{"first_name": "Ada"}
		}, wantField: "personalizations.0.dynamic_template_data"},
		{name: "sandbox enable as string", mutate: func(b map[string]any) {
			b["mail_settings"] = map[string]any{"sandbox_mode": map[string]any{"enable": "true"}}
		}, wantField: "mail_settings.sandbox_mode.enable"},
		{name: "malformed JSON", raw: `{"personalizations":`, wantField: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t)
			var body any = []byte(tc.raw)
			if tc.raw == "" {
				b := validBody()
				tc.mutate(b)
				body = b
			}
			r := post(t, srv, body)
			if r.status != http.StatusBadRequest {
				t.Fatalf("got %d %s, want 400", r.status, r.body)
			}
			if !bytes.Contains(r.body, []byte(`"help":null`)) {
				t.Errorf("help must be an explicit null like SendGrid's: %s", r.body)
			}
			errs := decodeErrors(t, r)
			if !slices.ContainsFunc(errs, func(e errorItem) bool {
				return e.Message != "" && (tc.wantField == "" && e.Field == nil || e.Field != nil && *e.Field == tc.wantField)
			}) {
				t.Fatalf("no error for field %q in %s", tc.wantField, r.body)
			}
			assertNoMessages(t, srv)
		})
	}
}

func TestRoutingErrors(t *testing.T) {
	srv := newServer(t)
	body := mustJSON(t, validBody())
	if r := send(t, srv, http.MethodGet, "/v3/mail/send", authHeader(testKey), nil); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != http.MethodPost {
		t.Fatalf("GET: got %d Allow=%q", r.status, r.header.Get("Allow"))
	}
	if r := send(t, srv, http.MethodPost, "/v3/mail/batch", authHeader(testKey), body); r.status != http.StatusNotFound {
		t.Fatalf("unknown path: got %d", r.status)
	}
	assertNoMessages(t, srv)
}

func TestGzipBody(t *testing.T) {
	srv := newServer(t)
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	if _, err := zw.Write(mustJSON(t, validBody())); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	h := authHeader(testKey)
	h.Set("Content-Encoding", "gzip")
	if r := send(t, srv, http.MethodPost, "/v3/mail/send", h, zb.Bytes()); r.status != http.StatusAccepted {
		t.Fatalf("got %d %s, want 202", r.status, r.body)
	}
	if msgs := srv.Messages(); len(msgs) != 1 || msgs[0].Text != "Hello Ada" {
		t.Fatalf("messages = %+v", msgs)
	}
}

func TestSandboxMode(t *testing.T) {
	dir := t.TempDir()
	srv := sendgridtest.NewTestServer(t, sendgridtest.Options{APIKey: testKey, OutboxDir: dir})
	b := validBody()
	b["mail_settings"] = map[string]any{"sandbox_mode": map[string]any{"enable": true}}
	r := post(t, srv, b)
	if r.status != http.StatusOK || len(r.body) != 0 || r.header.Get("X-Message-Id") != "" {
		t.Fatalf("got %d body=%q id=%q, want 200, empty, no id", r.status, r.body, r.header.Get("X-Message-Id"))
	}
	assertNoMessages(t, srv)
	if sb := srv.SandboxMessages(); len(sb) != 1 || !sb[0].Sandbox || sb[0].Text != "Hello Ada" {
		t.Fatalf("sandbox messages = %+v", sb)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("sandbox mail must not reach the outbox, found %d files", len(entries))
	}
	delete(b, "from")
	if r := post(t, srv, b); r.status != http.StatusBadRequest {
		t.Fatalf("sandbox still validates: got %d", r.status)
	}
}

func TestOutbox(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "outbox")
	srv := sendgridtest.NewTestServer(t, sendgridtest.Options{APIKey: testKey, OutboxDir: dir})
	setupURL := "https://looker.example.com/account/setup/abc?token=x&y=z"
	for _, b := range []map[string]any{templateBody(setupURL), validBody()} {
		if r := post(t, srv, b); r.status != http.StatusAccepted {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(entries) != len(msgs) {
		t.Fatalf("%d files for %d messages (leftover temp files?)", len(entries), len(msgs))
	}
	name := regexp.MustCompile(`^\d{8}T\d{6}\.\d{3}-\d{6}-[A-Za-z0-9_-]{22}\.txt$`)
	for i, e := range entries { // os.ReadDir sorts by name, i.e. by time
		if !name.MatchString(e.Name()) || e.Name() != sendgridtest.OutboxFileName(msgs[i]) {
			t.Fatalf("file %d = %q, want %q", i, e.Name(), sendgridtest.OutboxFileName(msgs[i]))
		}
	}
	tmpl, err := os.ReadFile(filepath.Join(dir, entries[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		setupURL, `"first_name": "Ada"`, "To: \"Ada Lovelace\" <ada@example.com>", "From: \"Data Team\" <data@example.com>",
		"X-Template-Id: d-0123456789abcdef", "X-Custom-Arg-request_id: req-42", "X-Click-Tracking: off",
		"X-Message-Id: " + msgs[0].MessageID,
	} {
		if !strings.Contains(string(tmpl), want) {
			t.Errorf("outbox file lacks %q:\n%s", want, tmpl)
		}
	}
	text, err := os.ReadFile(filepath.Join(dir, entries[1].Name()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "Subject: Welcome\n") || !strings.Contains(string(text), "Hello Ada") {
		t.Errorf("text outbox file:\n%s", text)
	}
}

func TestInjectFault(t *testing.T) {
	srv := newServer(t)
	srv.InjectFault(http.StatusServiceUnavailable, "", "5", 2)
	srv.InjectFault(http.StatusBadRequest, `{"errors":[{"message":"boom","field":"x","help":null}]}`, "", 1)
	for i := range 2 {
		r := post(t, srv, validBody())
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "5" {
			t.Fatalf("request %d: got %d Retry-After=%q", i, r.status, r.header.Get("Retry-After"))
		}
		if errs := decodeErrors(t, r); errs[0].Message != "Service Unavailable" {
			t.Fatalf("default fault body = %s", r.body)
		}
	}
	if r := post(t, srv, validBody()); r.status != http.StatusBadRequest || !bytes.Contains(r.body, []byte(`"boom"`)) {
		t.Fatalf("second fault: got %d %s", r.status, r.body)
	}
	assertNoMessages(t, srv)
	if r := post(t, srv, validBody()); r.status != http.StatusAccepted {
		t.Fatalf("after faults: got %d", r.status)
	}

	srv.InjectFault(http.StatusInternalServerError, "", "", 0)
	for range 3 {
		if r := post(t, srv, validBody()); r.status != http.StatusInternalServerError {
			t.Fatalf("permanent fault: got %d", r.status)
		}
	}
	srv.ClearFaults()
	if r := post(t, srv, validBody()); r.status != http.StatusAccepted {
		t.Fatalf("after ClearFaults: got %d", r.status)
	}
	if n := len(srv.Messages()); n != 2 {
		t.Fatalf("got %d messages, want 2", n)
	}
}

// Chaos refuses a recipient's emails by their address, so every run with a
// seed refuses the same ones, and a refused email is not delivered.
func TestChaosRefusesByRecipient(t *testing.T) {
	run := func(order []int) (map[string][]int, int) {
		srv := newServer(t)
		srv.InjectChaos(fakehttp.NewChaos(fakehttp.NewSchedule(5),
			fakehttp.Chance[fakehttp.Reply]{Fault: fakehttp.Reply{Status: http.StatusTooManyRequests, RetryAfter: "1"}, Share: 0.3}))
		got := map[string][]int{}
		for _, i := range order {
			b := validBody()
			to := fmt.Sprintf("p%d@example.com", i)
			firstPersonalization(b)["to"] = []any{map[string]any{"email": to}}
			for range 3 {
				r := post(t, srv, b)
				if r.status == http.StatusTooManyRequests && (r.header.Get("Retry-After") != "1" || decodeErrors(t, r)[0].Message != "Too Many Requests") {
					t.Fatalf("refusal %s", r.body)
				}
				got[to] = append(got[to], r.status)
			}
		}
		return got, len(srv.Messages())
	}
	first, delivered := run([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	again, _ := run([]int{9, 8, 7, 6, 5, 4, 3, 2, 1, 0})
	if !maps.EqualFunc(first, again, slices.Equal) {
		t.Errorf("one seed refused other emails in another order:\n%v\n%v", first, again)
	}
	if delivered == 0 || delivered == 30 {
		t.Errorf("%d of 30 emails delivered, want about 70%%", delivered)
	}
	accepted := 0
	for _, statuses := range first {
		for _, st := range statuses {
			if st == http.StatusAccepted {
				accepted++
			}
		}
	}
	if accepted != delivered {
		t.Errorf("%d accepted, %d delivered", accepted, delivered)
	}
}

func TestFaultsComeAfterAuth(t *testing.T) {
	srv := newServer(t)
	srv.InjectFault(http.StatusTooManyRequests, "", "1", 1)
	if r := send(t, srv, http.MethodPost, "/v3/mail/send", authHeader("wrong"), mustJSON(t, validBody())); r.status != http.StatusUnauthorized {
		t.Fatalf("bad key: got %d, want 401", r.status)
	}
	if r := post(t, srv, validBody()); r.status != http.StatusTooManyRequests {
		t.Fatalf("fault must still be pending: got %d", r.status)
	}
}

func TestLatencyEndsWhenClientGivesUp(t *testing.T) {
	srv := sendgridtest.NewTestServer(t, sendgridtest.Options{APIKey: testKey, Latency: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v3/mail/send", bytes.NewReader(mustJSON(t, validBody())))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = authHeader(testKey)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("got %d before the latency elapsed", resp.StatusCode)
	}
	// Close (run by Cleanup) would block for an hour if the handler ignored
	// the cancelled request; the test timing out is the failure signal.
	srv.Close()
	assertNoMessages(t, srv)
}

func TestConcurrentSends(t *testing.T) {
	srv := newServer(t)
	const n = 25
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if r := post(t, srv, validBody()); r.status != http.StatusAccepted {
				t.Errorf("got %d", r.status)
			}
		})
	}
	wg.Wait()
	msgs := srv.Messages()
	if len(msgs) != n {
		t.Fatalf("got %d messages, want %d", len(msgs), n)
	}
	ids := map[string]bool{}
	for i, m := range msgs {
		ids[m.MessageID] = true
		if m.Seq != i+1 {
			t.Fatalf("message %d has Seq %d", i, m.Seq)
		}
	}
	if len(ids) != n {
		t.Fatalf("only %d distinct message ids for %d sends", len(ids), n)
	}
}

func TestMessagesReturnsCopies(t *testing.T) {
	srv := newServer(t)
	b := validBody()
	b["custom_args"] = map[string]any{"request_id": "r1"}
	post(t, srv, b)
	srv.Messages()[0].CustomArgs["request_id"] = "tampered"
	if got := srv.Messages()[0].CustomArgs["request_id"]; got != "r1" {
		t.Fatalf("caller mutation leaked into the fake: %q", got)
	}
}
