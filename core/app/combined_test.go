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

	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/sandbox"
	"github.com/onboard-dev/onboard/core/sendgrid/sendgridtest"
	"github.com/onboard-dev/onboard/core/targets"
	"github.com/onboard-dev/onboard/internal/logbuf"
)

// TestThreeTargetsInOneProfile: one profile provisions into Looker,
// Alteryx Analytics Cloud and two Periscope sites at once, through the HTTP
// handler and the sandbox's fakes of all three, and deprovisions from all.
func TestThreeTargetsInOneProfile(t *testing.T) {
	yaml := `default_profile: everything
email: {provider: sendgrid, from: "Data Team <data@example.com>", subject: Welcome, text: "Hi {{.FirstName}}: {{.SetupURL}}"}
periscope: {invited_by_email: data@example.com}
profiles:
  everything:
    looker: {roles: [Viewer], groups: [Analysts]}
    aac: {workspace: Sales Analytics, roles: [Auto Insights Creator]}
    periscope: {sites: [acme, emea], groups: [Analysts]}
`
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
	vars := map[string]string{"ONBOARD_CONFIG": cfgFile, "ONBOARD_STORE": "file:" + t.TempDir(), "ONBOARD_WEBHOOK_SECRET": webhookSecret}
	for k, v := range box.Env {
		vars[k] = v
	}
	logs := &logbuf.Buffer{}
	a, err := New(context.Background(), Options{Getenv: func(k string) string { return vars[k] }, Log: logging.New(logs, slog.LevelError, nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	post := func(body string) map[string]any {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+webhookSecret)
		rec := httptest.NewRecorder()
		a.Handler.ServeHTTP(rec, req)
		var out map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		if rec.Code != http.StatusOK {
			t.Fatalf("%d %s\n%s", rec.Code, rec.Body, logs)
		}
		return out
	}
	targetStatus := func(out map[string]any) map[string]any {
		got := map[string]any{}
		for name, r := range out["targets"].(map[string]any) {
			got[name] = r.(map[string]any)["status"]
		}
		return got
	}
	created := targetStatus(post(`{"email":"ada@example.com","name":"Ada Lovelace"}`))
	for _, name := range []string{"looker", "aac", "periscope:acme", "periscope:emea"} {
		if created[name] != "created" {
			t.Errorf("%s: %v, want created (all: %v)", name, created[name], created)
		}
	}
	if n := len(box.Fakes["sendgrid"].Server.(*sendgridtest.Server).Messages()); n != 1 {
		t.Errorf("%d welcome emails, want 1", n)
	}
	gone := targetStatus(post(`{"email":"ada@example.com","action":"deprovision"}`))
	if gone["looker"] != "disabled" || gone["aac"] != "deleted" || gone["periscope:acme"] != "deleted" || gone["periscope:emea"] != "deleted" {
		t.Errorf("deprovision: %v", gone)
	}
}
