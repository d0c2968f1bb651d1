package sandbox_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/core/sandbox"
	"github.com/onboard-dev/onboard/core/secrets"
	"github.com/onboard-dev/onboard/core/sheets/sheetstest"
	"github.com/onboard-dev/onboard/core/targets"
)

const mixed = `email: {provider: none}
periscope: {invited_by_email: data@example.com}
profiles:
  both:
    looker: {roles: [Viewer]}
    periscope: {sites: [acme], groups: [Analysts]}
`

// The note names a real target's host and nothing more: credentials, a
// path or a query pasted into its URL stay off the terminal.
func TestNoteShowsOnlyTheHost(t *testing.T) {
	cfg, err := targets.ParseConfig([]byte(mixed))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PERISCOPE_SITES": `{"acme":"k"}`, "PERISCOPE_BASE_URL": "https://admin:pw-LEAK@periscope.example/api/v1?key=q-LEAK"}
	box, err := sandbox.Start(cfg, t.TempDir(), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	note := strings.Join(box.Note(), "\n") + "\n"
	if !strings.Contains(note, "periscope: real, https://periscope.example\n") || strings.Contains(note, "LEAK") {
		t.Errorf("note:\n%s", note)
	}
}

// realSecrets is a secret manager holding a deployment's real credentials.
type realSecrets struct{}

func (realSecrets) Fetch(_ context.Context, name string) (string, error) {
	if !strings.HasPrefix(name, "LOOKERSDK_") {
		return "", &secrets.NotFoundError{Name: name}
	}
	return "REAL-" + name, nil
}

// A target the sandbox fakes signs in with the fake's credentials, even when
// a secret manager holds the real ones: those are never sent to a fake.
func TestFakedTargetNeverReadsTheRealSecret(t *testing.T) {
	cfg, err := targets.ParseConfig([]byte("profiles:\n  a:\n    looker: {roles: [Viewer]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	box, err := sandbox.Start(cfg, t.TempDir(), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	path := t.TempDir() + "/onboard.yaml"
	if err := writeFile(path, "profiles:\n  a:\n    looker: {roles: [Viewer]}\n"); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ONBOARD_CONFIG": path, "ONBOARD_SECRETS": "manager", "ONBOARD_STORE": "file:" + t.TempDir()}
	for k, v := range box.Env {
		env[k] = v
	}
	a, err := app.New(context.Background(), app.Options{
		Getenv: func(k string) string { return env[k] }, Pinned: box.Env,
		Log:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		SecretBackends: map[string]app.SecretBackend{"manager": func(context.Context, func(string) string) (secrets.Source, error) { return realSecrets{}, nil }},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.Warm(context.Background()) // the Looker login
	fake := box.Fakes["looker"].Server.(*lookertest.Server)
	logins := fake.Count("POST", "/login")
	for _, r := range fake.Requests() {
		if strings.Contains(string(r.Body), "REAL-") {
			t.Fatalf("a real credential reached the fake: %s", r.Body)
		}
	}
	if logins != 1 {
		t.Errorf("%d logins, want 1 with the fake's credentials", logins)
	}
}

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o600) }

// A sheets source is faked without Google credentials, and real with any
// of them; ONBOARD_SANDBOX=0 refuses to fake it, naming what to set.
func TestSheetsSourceIsFakedWithoutGoogleCredentials(t *testing.T) {
	cfg, err := targets.ParseConfig([]byte(mixed + "sources:\n  sheets:\n    - spreadsheet_id: 1SandboxSheetId\n"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PERISCOPE_SITES": `{"acme":"k"}`}
	getenv := func(k string) string { return env[k] }
	box, err := sandbox.Start(cfg, t.TempDir(), getenv)
	if err != nil {
		t.Fatal(err)
	}
	fake := box.Fakes["sheets"]
	if fake == nil || box.Env["SHEETS_BASE_URL"] != fake.Settings["SHEETS_BASE_URL"] || !strings.Contains(box.Env["GOOGLE_SHEETS_CREDENTIALS"], "sandbox.iam.gserviceaccount.com") {
		t.Fatalf("no fake sheets: %v", box.Note())
	}
	if rows := fake.Server.(*sheetstest.Server).Values("1SandboxSheetId", "Form Responses 1"); len(rows) != 4 || rows[0][1] != "email" {
		t.Errorf("seeded tab %q, want a header reading email and three answers", rows)
	}
	box.Close()

	env["GOOGLE_APPLICATION_CREDENTIALS"] = "/home/me/adc.json"
	box, err = sandbox.Start(cfg, t.TempDir(), getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	if box.Fakes["sheets"] != nil || !strings.Contains(strings.Join(box.Note(), "\n"), "sheets: real (GOOGLE_APPLICATION_CREDENTIALS is set)") {
		t.Errorf("with credentials: %v", box.Note())
	}
	delete(env, "GOOGLE_APPLICATION_CREDENTIALS")
	env["ONBOARD_SANDBOX"] = "0"
	env["LOOKERSDK_BASE_URL"] = "https://looker.example"
	if _, err := sandbox.Start(cfg, t.TempDir(), getenv); err == nil || !strings.Contains(err.Error(), "GOOGLE_SHEETS_CREDENTIALS") {
		t.Errorf("ONBOARD_SANDBOX=0 without Google credentials: %v", err)
	}
}
