package gcp_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/looker"
	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/core/sendgrid/sendgridtest"
	onboardtargets "github.com/onboard-dev/onboard/core/targets"
	"github.com/onboard-dev/onboard/functions/gcp"
	"github.com/onboard-dev/onboard/internal/emulators"
	"github.com/onboard-dev/onboard/internal/logbuf"
)

func TestMain(m *testing.M) {
	code := emulators.Run(m)
	removeBuiltFunction()
	os.Exit(code)
}

// Distinctive values: any appearance in a log or answer is a leak.
const (
	webhookSecret = "whsec-GCPTEST-31c9e5"
	lookerSecret  = "looker-GCPTEST-77ad02"
	sendgridKey   = "SG.GCPTEST-b4e1c9d7"
)

// targets are the fakes one function instance talks to.
type targets struct {
	looker   *lookertest.Server
	sendgrid *sendgridtest.Server
	store    string // ONBOARD_STORE: idempotency records must not outlive the test
}

func newTargets(t testing.TB) targets {
	t.Helper()
	cfg, err := onboardtargets.LoadConfig(repoPath(t, "testdata/onboard.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tg := targets{
		looker:   lookertest.NewTestServer(t, lookertest.Options{ClientSecret: lookerSecret}),
		sendgrid: sendgridtest.NewTestServer(t, sendgridtest.Options{APIKey: sendgridKey}),
		store:    "file:" + t.TempDir(),
	}
	looker.SeedFake(tg.looker, cfg)
	return tg
}

// env is what a deployed function would have in its environment.
func (tg targets) env(t testing.TB) map[string]string {
	return map[string]string{
		"ONBOARD_CONFIG":          repoPath(t, "testdata/onboard.yaml"),
		"LOOKERSDK_BASE_URL":      tg.looker.URL,
		"LOOKERSDK_CLIENT_ID":     lookertest.DefaultClientID,
		"LOOKERSDK_CLIENT_SECRET": lookerSecret,
		"SENDGRID_API_KEY":        sendgridKey,
		"SENDGRID_BASE_URL":       tg.sendgrid.URL,
		"ONBOARD_WEBHOOK_SECRET":  webhookSecret,
		"ONBOARD_LOG_LEVEL":       "debug",
		"ONBOARD_STORE":           tg.store,
	}
}

// users returns the fake Looker's users with this email.
func (tg targets) users(email string) []lookertest.User {
	var out []lookertest.User
	for _, u := range tg.looker.Users() {
		if strings.EqualFold(u.Email, email) {
			out = append(out, u)
		}
	}
	return out
}

// fixture is one in-process instance of the functions against fakes.
type fixture struct {
	targets
	fns  *gcp.Functions
	logs *logBuffer
}

// newFixture starts an instance the way Register does, with env overriding
// the defaults and backends as its secret managers, and waits until it is up.
func newFixture(t testing.TB, env map[string]string, backends map[string]app.SecretBackend) *fixture {
	t.Helper()
	f := &fixture{targets: newTargets(t), logs: &logBuffer{}}
	vars := f.env(t)
	for k, v := range env {
		vars[k] = v
	}
	instance := startInstance(vars, backends, f.logs)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := instance.App(ctx); err != nil {
		t.Fatalf("instance did not start: %v\n%s", err, f.logs)
	}
	f.fns = gcp.New(instance)
	return f
}

func startInstance(vars map[string]string, backends map[string]app.SecretBackend, logs *logBuffer) *app.Instance {
	redactor := &logging.Redactor{}
	return app.Start(app.Options{
		Getenv:         func(k string) string { return vars[k] },
		SecretBackends: backends,
		Log:            logging.New(logs, slog.LevelDebug, redactor),
		Redactor:       redactor,
	})
}

func repoPath(t testing.TB, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readRepoFile(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// logBuffer collects JSON log lines from concurrent writers.
type logBuffer = logbuf.Buffer

// lines returns the JSON log lines that have every key/value in want.
// logLines returns the JSON log lines whose fields equal want.
func logLines(b *logBuffer, want map[string]string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(b.String(), "\n") {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) != nil {
			continue
		}
		match := true
		for k, v := range want {
			if s, _ := entry[k].(string); s != v {
				match = false
				break
			}
		}
		if match {
			out = append(out, entry)
		}
	}
	return out
}

// waitFor polls cond until it holds or the bounded wait is over.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func discardLog() *slog.Logger { return logging.New(io.Discard, slog.LevelError, nil) }

// serveHTTP sends body to ProvisionHTTP with secret as the bearer token.
func (f *fixture) serveHTTP(t *testing.T, contentType, secret, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+secret)
	rec := httptest.NewRecorder()
	f.fns.ProvisionHTTP(rec, req)
	return rec
}

func (f *fixture) postJSONAs(t *testing.T, secret, body string) int {
	t.Helper()
	return f.serveHTTP(t, "application/json", secret, body).Code
}
