package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/httpapi"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/looker"
	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/core/sendgrid/sendgridtest"
	"github.com/onboard-dev/onboard/core/targets"
	"github.com/onboard-dev/onboard/internal/logbuf"
)

// Distinctive secret values: any appearance in a log or answer is a leak.
// Their "/+&<=" make every URL and JSON encoding differ from the raw value.
const (
	webhookSecret = "whsec/LEAKCHECK+7f3a9c&<="
	lookerSecret  = "looker/LEAKCHECK+91be2d&<="
	sendgridKey   = "SG.LEAKCHECK/4c1d77e0aa+&<="
)

type harness struct {
	app      *App
	looker   *lookertest.Server
	sendgrid *sendgridtest.Server
	logs     *logbuf.Buffer
}

// newHarness starts an App against fakes. env overrides its settings;
// tweaks, run once the fakes are up, may rewrite them (to put a proxy in
// front of a fake, say) and adjust the Options an entry point would pass.
func newHarness(t testing.TB, env map[string]string, tweaks ...func(h *harness, vars map[string]string, opts *Options)) *harness {
	t.Helper()
	cfg, err := targets.LoadConfig(configPath(t))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{
		looker:   lookertest.NewTestServer(t, lookertest.Options{ClientSecret: lookerSecret}),
		sendgrid: sendgridtest.NewTestServer(t, sendgridtest.Options{APIKey: sendgridKey}),
		logs:     &logbuf.Buffer{},
	}
	looker.SeedFake(h.looker, cfg)
	vars := map[string]string{
		"ONBOARD_CONFIG":          configPath(t),
		"LOOKERSDK_BASE_URL":      h.looker.URL,
		"LOOKERSDK_CLIENT_ID":     lookertest.DefaultClientID,
		"LOOKERSDK_CLIENT_SECRET": lookerSecret,
		"SENDGRID_API_KEY":        sendgridKey,
		"SENDGRID_BASE_URL":       h.sendgrid.URL,
		"ONBOARD_WEBHOOK_SECRET":  webhookSecret,
		"ONBOARD_STORE":           "file:" + t.TempDir(),
	}
	for k, v := range env {
		vars[k] = v
	}
	redactor := &logging.Redactor{}
	opts := Options{
		Getenv:   func(k string) string { return vars[k] },
		Log:      logging.New(h.logs, slog.LevelDebug, redactor),
		Redactor: redactor,
	}
	for _, tweak := range tweaks {
		tweak(h, vars, &opts)
	}
	h.app, err = New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func configPath(t testing.TB) string {
	p, err := filepath.Abs("../../testdata/onboard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (h *harness) post(t testing.TB, body string, headers ...string) answer {
	t.Helper()
	return h.postTo(t, "/", body, headers...)
}

func (h *harness) postTo(t testing.TB, target, body string, headers ...string) answer {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+webhookSecret)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.app.Handler.ServeHTTP(rec, req)
	a := answer{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	_ = json.Unmarshal(rec.Body.Bytes(), &a.body)
	return a
}

// writes counts requests that could change Looker or send an email.
func (h *harness) writes() int {
	n := len(h.sendgrid.Messages())
	for _, r := range h.looker.Requests() {
		if r.Method != http.MethodGet && r.Path != "/login" {
			n++
		}
	}
	return n
}

func TestProvisionOverHTTP(t *testing.T) {
	h := newHarness(t, nil)
	a := h.post(t, `{"email":"Ada@Example.com","name":"Ada Lovelace","attributes":{"region":"EMEA"}}`)
	if a.status != 200 || a.body["status"] != "created" || a.body["request_id"] == "" || a.body["email"] != "sent" {
		t.Fatalf("answer %d %s", a.status, a.raw)
	}
	msgs := h.sendgrid.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d emails", len(msgs))
	}
	m := msgs[0]
	if !strings.Contains(m.Text, "/account/setup/") || m.CustomArgs["request_id"] != a.body["request_id"] || m.ClickTracking {
		t.Errorf("email %+v", m)
	}
	// The same request again (same fingerprint, so the same idempotency
	// key): the stored first answer, and nothing done twice.
	again := h.post(t, `{"email":"ada@example.com","name":"Ada Lovelace","attributes":{"region":"EMEA"}}`)
	if again.status != 200 || again.body["status"] != "created" || again.body["request_id"] != a.body["request_id"] {
		t.Errorf("re-delivery: %d %s, want the first answer", again.status, again.raw)
	}
	// A different request for the same person finds the user as it should be.
	other := h.post(t, `{"email":"ada@example.com","name":"Ada Lovelace","attributes":{"region":"EMEA"},"idempotency_key":"zap-2"}`)
	if other.status != 200 || other.body["status"] != "unchanged" {
		t.Errorf("second request: %d %s", other.status, other.raw)
	}
	if n := len(h.sendgrid.Messages()); n != 1 {
		t.Errorf("%d emails after a re-delivery, want 1", n)
	}
	if n := len(h.looker.Users()); n != 1 {
		t.Errorf("%d Looker users", n)
	}
	gone := h.post(t, `{"email":"ada@example.com","action":"deprovision"}`)
	if gone.status != 200 || gone.body["status"] != "disabled" {
		t.Errorf("deprovision: %d %s", gone.status, gone.raw)
	}
}

func TestBadRequestsChangeNothing(t *testing.T) {
	h := newHarness(t, nil)
	big := `{"email":"a@example.com","name":"` + strings.Repeat("x", core.MaxBodyBytes) + `"}`
	cases := []struct {
		name    string
		body    string
		headers []string
		status  int
		field   string
		exact   string
	}{
		{"no credential", `{"email":"a@example.com"}`, []string{"Authorization", ""}, 401, "", `{"error":"unauthorized"}`},
		{"wrong credential", `{"email":"a@example.com"}`, []string{"Authorization", "Bearer nope"}, 401, "", `{"error":"unauthorized"}`},
		{"stale signature", `{"email":"a@example.com"}`, []string{"Authorization", "", httpapi.SignatureHeader, httpapi.Sign(webhookSecret, time.Now().Add(-10*time.Minute), []byte(`{"email":"a@example.com"}`))}, 401, "", `{"error":"unauthorized"}`},
		{"malformed", `{"email":`, nil, 400, "", ""},
		{"unknown field", `{"email":"a@example.com","roles":["Admin"]}`, nil, 400, "roles", ""},
		{"invalid email", `{"email":"Ada <a@example.com>"}`, nil, 400, "email", ""},
		{"attribute not allowed", `{"email":"a@example.com","attributes":{"department":"finance"}}`, nil, 400, "attributes.department", ""},
		{"domain not allowed", `{"email":"a@evil-example.com"}`, nil, 403, "email", ""},
		{"profile not allowed", `{"email":"a@example.com","profile":"root"}`, nil, 403, "profile", ""},
		{"too large", big, nil, 413, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.writes()
			a := h.post(t, tc.body, tc.headers...)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.raw)
			}
			if tc.field != "" && a.body["field"] != tc.field {
				t.Errorf("field %v, want %q", a.body["field"], tc.field)
			}
			if a.body["error"] == nil || a.body["error"] == "" {
				t.Errorf("no error message: %s", a.raw)
			}
			if tc.exact != "" && strings.TrimSpace(a.raw) != tc.exact {
				t.Errorf("body %s, want exactly %s", a.raw, tc.exact)
			}
			if after := h.writes(); after != before {
				t.Errorf("a refused request wrote %d times", after-before)
			}
		})
	}
}

func TestSignedRequest(t *testing.T) {
	h := newHarness(t, nil)
	body := `{"email":"sig@example.com"}`
	sig := httpapi.Sign(webhookSecret, time.Now(), []byte(body))
	if a := h.post(t, body, "Authorization", "", httpapi.SignatureHeader, sig); a.status != 200 {
		t.Fatalf("signed: %d %s", a.status, a.raw)
	}
	if a := h.post(t, body, "Authorization", "", httpapi.SignatureHeader, sig); a.status != 401 {
		t.Errorf("replayed signature: %d", a.status)
	}
}

func TestBulk(t *testing.T) {
	h := newHarness(t, nil)
	a := h.post(t, `[{"email":"a@example.com"},{"email":"not an email"},{"email":"c@example.com","profile":"admin-lite"}]`)
	if a.status != http.StatusMultiStatus {
		t.Fatalf("status %d: %s", a.status, a.raw)
	}
	var items []map[string]any
	if err := json.Unmarshal([]byte(a.raw), &items); err != nil || len(items) != 3 {
		t.Fatalf("items %s: %v", a.raw, err)
	}
	if items[0]["http_status"] != 200.0 || items[0]["status"] != "created" ||
		items[1]["http_status"] != 400.0 || items[1]["field"] != "email" ||
		items[2]["http_status"] != 403.0 || items[2]["field"] != "profile" {
		t.Errorf("items %s", a.raw)
	}
}

func TestTargetFailuresMapToRetryableAnswers(t *testing.T) {
	h := newHarness(t, nil)
	h.looker.InjectFault(lookertest.Fault{Method: "GET", Path: "/users/credential/{type}/{id}", Status: 429, RetryAfter: "42", Times: 100, Body: `{"message":"slow down","documentation_url":"x"}`})
	a := h.post(t, `{"email":"r@example.com"}`)
	if a.status != 429 || a.header.Get("Retry-After") != "42" {
		t.Errorf("rate limited: %d Retry-After=%q %s", a.status, a.header.Get("Retry-After"), a.raw)
	}

	h = newHarness(t, nil)
	h.looker.InjectFault(lookertest.Fault{Method: "GET", Path: "/users/credential/{type}/{id}", Status: 503, Body: `{"message":"down","documentation_url":"x"}`})
	a = h.post(t, `{"email":"r@example.com"}`)
	if a.status != 503 || a.header.Get("Retry-After") == "" {
		t.Errorf("down: %d Retry-After=%q %s", a.status, a.header.Get("Retry-After"), a.raw)
	}

	h = newHarness(t, nil)
	h.looker.InjectFault(lookertest.Fault{Method: "POST", Path: "/users", Status: 403, Body: `{"message":"Not allowed to create users","documentation_url":"x"}`})
	a = h.post(t, `{"email":"r@example.com"}`)
	if a.status != 502 || !strings.Contains(a.raw, "Not allowed to create users") || a.header.Get("Retry-After") != "" {
		t.Errorf("refused: %d %s", a.status, a.raw)
	}
}

func TestSendGridFailureIsRetryable(t *testing.T) {
	h := newHarness(t, nil)
	h.sendgrid.InjectFault(503, `{"errors":[{"message":"busy"}]}`, "7", 1)
	a := h.post(t, `{"email":"m@example.com"}`)
	if a.status != 503 || a.header.Get("Retry-After") != "7" {
		t.Errorf("%d %v %s", a.status, a.header, a.raw)
	}
	if tr, ok := a.body["targets"].(map[string]any); !ok || tr["looker"] == nil {
		t.Errorf("the answer should still say what Looker did: %s", a.raw)
	}
}

func TestHealthzTouchesNothing(t *testing.T) {
	h := newHarness(t, nil)
	before := len(h.looker.Requests())
	rec := httptest.NewRecorder()
	h.app.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != 200 {
		t.Fatalf("healthz %d", rec.Code)
	}
	if after := len(h.looker.Requests()); after != before {
		t.Errorf("healthz made %d Looker calls", after-before)
	}
	rec = httptest.NewRecorder()
	h.app.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET / = %d", rec.Code)
	}
}

func TestNoSecretConfiguredRefusesAll(t *testing.T) {
	h := newHarness(t, map[string]string{"ONBOARD_WEBHOOK_SECRET": ""})
	if a := h.post(t, `{"email":"a@example.com"}`, "Authorization", "Bearer "); a.status != 401 {
		t.Errorf("status %d", a.status)
	}
	h = newHarness(t, map[string]string{"ONBOARD_WEBHOOK_SECRET": "", "ONBOARD_INSECURE_NO_AUTH": "1"})
	if a := h.post(t, `{"email":"a@example.com"}`, "Authorization", ""); a.status != 200 {
		t.Errorf("insecure local mode: %d %s", a.status, a.raw)
	}
}

// A deployed function ignores ONBOARD_INSECURE_NO_AUTH=1, says so at ERROR
// level, and refuses a request without the secret; the same setting still
// works locally (TestNoSecretConfiguredRefusesAll).
func TestDeployedIgnoresInsecureNoAuth(t *testing.T) {
	h := newHarness(t, map[string]string{"ONBOARD_WEBHOOK_SECRET": "", "ONBOARD_INSECURE_NO_AUTH": "1"},
		func(_ *harness, _ map[string]string, o *Options) { o.Deployed = true })
	if a := h.post(t, `{"email":"a@example.com"}`, "Authorization", ""); a.status != http.StatusUnauthorized || a.body["error"] != "unauthorized" {
		t.Errorf("deployed, insecure asked for, no credential: %d %s", a.status, a.raw)
	}
	if n := h.writes(); n != 0 {
		t.Errorf("%d writes after a refused request", n)
	}
	var ignored bool
	for _, line := range strings.Split(h.logs.String(), "\n") {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) == nil && entry["severity"] == "ERROR" &&
			strings.Contains(fmt.Sprint(entry["message"]), "ONBOARD_INSECURE_NO_AUTH=1 is ignored") {
			ignored = true
		}
	}
	if !ignored {
		t.Errorf("no ERROR line saying the setting is ignored:\n%s", h.logs)
	}
}

// TestSecretsNeverLeak runs every kind of request, including failures,
// and looks for the secret values in everything a caller or operator sees.
func TestSecretsNeverLeak(t *testing.T) {
	h := newHarness(t, map[string]string{"ONBOARD_LOG_LEVEL": "debug"})
	var seen strings.Builder
	record := func(a answer) { seen.WriteString(a.raw); seen.WriteString(a.header.Get("Retry-After")) }
	record(h.post(t, `{"email":"leak@example.com","name":"L K"}`))
	record(h.post(t, `{"email":"leak@example.com"}`, "Authorization", "Bearer wrong-"+webhookSecret))
	h.looker.RevokeTokens()
	record(h.post(t, `{"email":"leak2@example.com"}`))
	h.looker.InjectFault(lookertest.Fault{Method: "POST", Path: "/login", Status: 500, Body: `{"message":"echo ` + lookerSecret + `","documentation_url":"x"}`})
	h.looker.RevokeTokens()
	record(h.post(t, `{"email":"leak3@example.com"}`))
	h.sendgrid.InjectFault(400, `{"errors":[{"message":"bad key `+sendgridKey+`"}]}`, "", 1)
	record(h.post(t, `{"email":"leak4@example.com"}`))
	seen.WriteString(h.logs.String())
	for _, secret := range []string{webhookSecret, lookerSecret, sendgridKey} {
		if strings.Contains(seen.String(), secret) {
			t.Errorf("secret %q appeared in an answer or the log", secret)
		}
	}
	if !strings.Contains(h.logs.String(), `"severity"`) || !strings.Contains(h.logs.String(), `"message"`) {
		t.Errorf("logs lack Cloud Logging keys: %.300s", h.logs.String())
	}
}

func TestStartupErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"looker profile without looker": {map[string]string{"LOOKERSDK_BASE_URL": ""}, "LOOKERSDK_BASE_URL is not set"},
		"bad verify ssl":                {map[string]string{"LOOKERSDK_VERIFY_SSL": "maybe"}, "LOOKERSDK_VERIFY_SSL"},
		"sendgrid without key":          {map[string]string{"SENDGRID_API_KEY": ""}, "SENDGRID_API_KEY"},
		"missing config":                {map[string]string{"ONBOARD_CONFIG": "/nonexistent/onboard.yaml"}, "/nonexistent/onboard.yaml"},
		"unknown store":                 {map[string]string{"ONBOARD_STORE": "nosuch:x"}, `ONBOARD_STORE="nosuch:x"`},
		// The store opens beside the policy's reading; the policy's error still wins.
		"missing config and unknown store": {map[string]string{"ONBOARD_CONFIG": "/nonexistent/onboard.yaml", "ONBOARD_STORE": "nosuch:x"}, "/nonexistent/onboard.yaml"},
		"unknown store and no looker":      {map[string]string{"ONBOARD_STORE": "nosuch:x", "LOOKERSDK_BASE_URL": ""}, `ONBOARD_STORE="nosuch:x"`},
	} {
		t.Run(name, func(t *testing.T) {
			vars := map[string]string{
				"ONBOARD_CONFIG": configPath(t), "ONBOARD_STORE": "file:" + t.TempDir(), "LOOKERSDK_BASE_URL": "http://127.0.0.1:1", "LOOKERSDK_CLIENT_ID": "id",
				"LOOKERSDK_CLIENT_SECRET": lookerSecret, "SENDGRID_API_KEY": sendgridKey,
			}
			for k, v := range tc.env {
				vars[k] = v
			}
			_, err := New(context.Background(), Options{Getenv: func(k string) string { return vars[k] }, Log: logging.New(&bytes.Buffer{}, slog.LevelDebug, nil)})
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), lookerSecret) {
				t.Errorf("got %v, want an error naming %q and no secret", err, tc.want)
			}
		})
	}
}

func TestDynamicTemplateEmail(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "onboard.yaml")
	yaml := `default_profile: analyst
email: {provider: sendgrid, from: "Data Team <data@example.com>", template_id: d-welcome42}
profiles:
  analyst:
    looker: {roles: [Viewer], groups: [Analysts]}
`
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, map[string]string{"ONBOARD_CONFIG": cfgFile})
	if a := h.post(t, `{"email":"tpl@example.com","first_name":"Tee","last_name":"Pee"}`); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	msgs := h.sendgrid.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d emails", len(msgs))
	}
	m := msgs[0]
	url, _ := m.TemplateData["setup_url"].(string)
	if m.TemplateID != "d-welcome42" || m.TemplateData["first_name"] != "Tee" || m.TemplateData["last_name"] != "Pee" ||
		m.TemplateData["email"] != "tpl@example.com" || !strings.Contains(url, "/account/setup/") || m.Text != "" {
		t.Errorf("template email %+v", m)
	}
}

func TestSecretsReReadAfterTTL(t *testing.T) {
	var mu sync.Mutex
	vars := map[string]string{
		"ONBOARD_CONFIG": configPath(t), "ONBOARD_INSECURE_NO_AUTH": "", "ONBOARD_WEBHOOK_SECRET": "whsec-first-aaaa",
		"ONBOARD_SECRETS_TTL": "1ns", "ONBOARD_STORE": "file:" + t.TempDir(), "LOOKERSDK_BASE_URL": "http://127.0.0.1:1", "LOOKERSDK_CLIENT_ID": "id",
		"LOOKERSDK_CLIENT_SECRET": "s", "SENDGRID_API_KEY": sendgridKey,
	}
	getenv := func(k string) string { mu.Lock(); defer mu.Unlock(); return vars[k] }
	a, err := New(context.Background(), Options{Getenv: getenv, Log: logging.New(&bytes.Buffer{}, slog.LevelError, nil)})
	if err != nil {
		t.Fatal(err)
	}
	secretNow := func() string {
		v, err := a.Handler.(*httpapi.Handler).Auth.Secret(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := secretNow(); v != "whsec-first-aaaa" {
		t.Fatalf("secret %q", v)
	}
	mu.Lock()
	vars["ONBOARD_WEBHOOK_SECRET"] = "whsec-second-bbbb"
	mu.Unlock()
	if v := secretNow(); v != "whsec-second-bbbb" {
		t.Errorf("after rotation and TTL the secret is still %q", v)
	}
	// Through the handler: the old secret is refused, the new one passes
	// authentication (and then fails on the unreachable Looker, retryably).
	for bearer, want := range map[string]int{"whsec-first-aaaa": 401, "whsec-second-bbbb": 503} {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"email":"rot@example.com"}`))
		req.Header.Set("Authorization", "Bearer "+bearer)
		rec := httptest.NewRecorder()
		a.Handler.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("bearer %s: %d, want %d", bearer, rec.Code, want)
		}
	}
}

func TestSecretSettingsErrors(t *testing.T) {
	for name, tc := range map[string]struct{ env, want string }{
		"unknown backend": {"ONBOARD_SECRETS=vault", `ONBOARD_SECRETS="vault" is not available`},
		"bad ttl":         {"ONBOARD_SECRETS_TTL=soon", "ONBOARD_SECRETS_TTL"},
	} {
		t.Run(name, func(t *testing.T) {
			k, v, _ := strings.Cut(tc.env, "=")
			vars := map[string]string{"ONBOARD_CONFIG": configPath(t), "ONBOARD_STORE": "file:" + t.TempDir(), k: v}
			_, err := New(context.Background(), Options{Getenv: func(x string) string { return vars[x] }, Log: logging.New(&bytes.Buffer{}, slog.LevelError, nil)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestBulkDeprovisionCircuitBreaker(t *testing.T) {
	h := newHarness(t, nil)
	var items []string
	for i := range 11 {
		items = append(items, fmt.Sprintf(`{"email":"p%d@example.com","action":"deprovision"}`, i))
	}
	body := "[" + strings.Join(items, ",") + "]"
	before := len(h.looker.Requests())
	a := h.post(t, body)
	if a.status != 403 || !strings.Contains(a.raw, "max_deprovision") {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	if n := len(h.looker.Requests()) - before; n != 0 {
		t.Errorf("a refused bulk request made %d Looker calls", n)
	}
	// force exists only on the CLI: in a URL it is a word like any other.
	if a := h.postTo(t, "/?force=true", body); a.status != 403 || len(h.looker.Requests()) != before {
		t.Errorf("?force=true lifted the limit: %d %s", a.status, a.raw)
	}
}

// TestInstanceServesDuringItsWarmUp holds the Looker login an Instance
// starts with: requests get the App all the same (ForRequest; App still
// waits), and one arriving meanwhile is answered once the login ends,
// sharing it rather than logging in again.
func TestInstanceServesDuringItsWarmUp(t *testing.T) {
	release := make(chan struct{})
	var logins atomic.Int32
	var inst *Instance
	h := newHarness(t, nil, func(h *harness, vars map[string]string, opts *Options) {
		upstream, err := url.Parse(h.looker.URL)
		if err != nil {
			t.Fatal(err)
		}
		proxy := httputil.NewSingleHostReverseProxy(upstream)
		gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/4.0/login" {
				logins.Add(1)
				<-release
			}
			proxy.ServeHTTP(w, r)
		}))
		t.Cleanup(gate.Close)
		vars["LOOKERSDK_BASE_URL"] = gate.URL
		inst = Start(*opts)
	})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) }) // before gate.Close, which waits for the held login

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := inst.ForRequest(ctx)
	if err != nil {
		t.Fatalf("the App was not handed out while its login was held: %v", err)
	}
	h.app = a
	answered := make(chan answer, 1)
	go func() { answered <- h.post(t, `{"email":"early@example.com","name":"Early Bird"}`) }()
	// Meanwhile the request reaches its first Looker call.
	held, cancelHeld := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelHeld()
	if _, err := inst.App(held); err == nil {
		t.Error("App handed the instance out before its warm-up ended; the CLI's output would interleave with its log")
	}
	releaseOnce.Do(func() { close(release) })
	if got := <-answered; got.status != http.StatusOK || got.body["status"] != "created" {
		t.Fatalf("the request arriving during the login: %d %s", got.status, got.raw)
	}
	if n := logins.Load(); n != 1 {
		t.Errorf("%d logins, want the warm-up's one, shared with the request", n)
	}
	if _, err := inst.App(ctx); err != nil {
		t.Fatalf("App after the warm-up: %v", err)
	}
}
