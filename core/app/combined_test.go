package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/sandbox"
	"github.com/onboard-dev/onboard/core/sendgrid/sendgridtest"
	"github.com/onboard-dev/onboard/core/targets"
	"github.com/onboard-dev/onboard/internal/logbuf"
)

// fakedWorld is an App serving a policy whose every target (and the
// mailer) is the sandbox's in-memory fake, on the file store.
type fakedWorld struct {
	app  *App
	box  *sandbox.Sandbox
	logs *logbuf.Buffer
	vars map[string]string
}

func newFakedWorld(t *testing.T, yaml string) *fakedWorld {
	t.Helper()
	cfgFile := filepath.Join(t.TempDir(), "onboard.yaml")
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := targets.LoadConfig(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	box, err := sandbox.Start(cfg, t.TempDir(), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(box.Close)
	vars := map[string]string{"ONBOARD_CONFIG": cfgFile, "ONBOARD_STORE": "file:" + t.TempDir(), "ONBOARD_WEBHOOK_SECRET": webhookSecret, "ONBOARD_SCIM_TOKEN": scimToken}
	for k, v := range box.Env {
		vars[k] = v
	}
	w := &fakedWorld{box: box, logs: &logbuf.Buffer{}, vars: vars}
	w.start(t)
	return w
}

func (w *fakedWorld) start(t *testing.T) {
	t.Helper()
	redactor := &logging.Redactor{}
	app, err := New(context.Background(), Options{Getenv: func(k string) string { return w.vars[k] }, Log: logging.New(w.logs, slog.LevelDebug, redactor), Redactor: redactor})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Close() })
	w.app = app
}

// withPolicy goes on with another policy, as a redeploy does: the same
// store and the same fakes, a new instance.
func (w *fakedWorld) withPolicy(t *testing.T, yaml string) {
	t.Helper()
	if err := w.app.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.vars["ONBOARD_CONFIG"], []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	w.start(t)
}

// send posts body to the HTTP handler and returns the status and answer.
func (w *fakedWorld) send(t *testing.T, body string) (int, core.Result) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+webhookSecret)
	rec := httptest.NewRecorder()
	w.app.Handler.ServeHTTP(rec, req)
	var out core.Result
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

// done is send for a request that must succeed.
func (w *fakedWorld) done(t *testing.T, body string) core.Result {
	t.Helper()
	code, out := w.send(t, body)
	if code != http.StatusOK {
		t.Fatalf("%s: %d %+v\n%s", body, code, out, w.logs)
	}
	return out
}

// TestThreeTargetsInOneProfile: one profile provisions into Looker,
// Alteryx Analytics Cloud and two Periscope sites at once, through the HTTP
// handler and the sandbox's fakes of all three, and deprovisions from all.
func TestThreeTargetsInOneProfile(t *testing.T) {
	w := newFakedWorld(t, `default_profile: everything
email: {provider: sendgrid, from: "Data Team <data@example.com>", subject: Welcome, text: "Hi {{.FirstName}}: {{.SetupURL}}"}
periscope: {invited_by_email: data@example.com}
profiles:
  everything:
    looker: {roles: [Viewer], groups: [Analysts]}
    aac: {workspace: Sales Analytics, roles: [Auto Insights Creator]}
    periscope: {sites: [acme, emea], groups: [Analysts]}
`)
	created := w.done(t, `{"email":"ada@example.com","name":"Ada Lovelace"}`)
	for _, name := range []string{"looker", "aac", "periscope:acme", "periscope:emea"} {
		if s := created.Targets[name].Status; s != core.StatusCreated {
			t.Errorf("%s: %v, want created (all: %v)", name, s, created.Targets)
		}
	}
	if n := len(w.box.Fakes["sendgrid"].Server.(*sendgridtest.Server).Messages()); n != 1 {
		t.Errorf("%d welcome emails, want 1", n)
	}
	gone := w.done(t, `{"email":"ada@example.com","action":"deprovision"}`).Targets
	if gone["looker"].Status != core.StatusDisabled || gone["aac"].Status != core.StatusDeleted ||
		gone["periscope:acme"].Status != core.StatusDeleted || gone["periscope:emea"].Status != core.StatusDeleted {
		t.Errorf("deprovision: %v", gone)
	}
}
