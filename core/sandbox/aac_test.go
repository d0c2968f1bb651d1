package sandbox_test

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
	"github.com/onboard-dev/onboard/core/aac/aactest"
	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/sandbox"
	"github.com/onboard-dev/onboard/core/targets"
	"github.com/onboard-dev/onboard/internal/logbuf"
)

// The AAC example config works in sandbox mode as is: the fake holds its
// workspace and roles, onboard gets a chain to start from, and a request
// invites the person with the profile's role. No token reaches the log.
func TestSandboxServesAACProfiles(t *testing.T) {
	t.Setenv("AAC_BASE_URL", "")
	cfgPath, err := filepath.Abs("../../testdata/onboard-aac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := targets.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	box, err := sandbox.Start(cfg, t.TempDir(), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(box.Close)
	if box.Fakes["aac"] == nil {
		t.Fatal("no fake AAC for a config with aac profiles")
	}
	fake := box.Fakes["aac"].Server.(*aactest.Server)
	env := map[string]string{"ONBOARD_CONFIG": cfgPath, "ONBOARD_STORE": "file:" + t.TempDir(), "ONBOARD_INSECURE_NO_AUTH": "1"}
	for k, v := range box.Env {
		env[k] = v
	}
	logs := &logbuf.Buffer{}
	redactor := &logging.Redactor{}
	a, err := app.New(context.Background(), app.Options{Getenv: func(k string) string { return env[k] },
		Log: logging.New(logs, slog.LevelDebug, redactor), Redactor: redactor})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })

	for _, body := range []string{
		`{"email":"ada@example.com","name":"Ada Lovelace"}`,
		`{"email":"bob@example.com","profile":"insights-only"}`,
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		a.Handler.ServeHTTP(rec, req)
		var res core.Result
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &res) != nil || res.Targets["aac"].Status != core.StatusCreated {
			t.Fatalf("%s: %d %s", body, rec.Code, rec.Body)
		}
	}
	ws := fake.WorkspaceIDs("Sales Analytics")
	if len(ws) != 1 {
		t.Fatalf("workspaces = %v", ws)
	}
	roles := map[string][]string{}
	for _, m := range fake.Members(ws[0]) {
		roles[m.Email] = m.Roles
	}
	if r := roles["ada@example.com"]; len(r) != 1 || r[0] != "Auto Insights Creator" {
		t.Errorf("ada's roles = %v", r)
	}
	if r := roles["bob@example.com"]; len(r) != 1 || r[0] != "Auto Insights Viewer" {
		t.Errorf("bob's roles = %v", r)
	}
	var seeds map[string]string
	_ = json.Unmarshal([]byte(box.Env["AAC_REFRESH_TOKENS"]), &seeds)
	secrets := []string{seeds["Sales Analytics"]}
	for _, r := range fake.Refreshes() {
		secrets = append(secrets, r.Issued)
	}
	for _, r := range fake.Requests(aactest.OpPeople) {
		secrets = append(secrets, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(logs.String(), s) {
			t.Fatal("a token appears in the log")
		}
	}
}
