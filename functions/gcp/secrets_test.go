package gcp_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/core/secrets/gcpsecrets/gcpsecretstest"
	"github.com/onboard-dev/onboard/functions/gcp"
)

const oldWebhookSecret = "whsec-GCPTEST-previous-0a7d"

// secretManagerEnv moves every secret into the fake Secret Manager and
// leaves wrong values in the environment, so a request only succeeds if the
// secrets really came from Secret Manager.
func secretManagerEnv(t *testing.T) (map[string]string, map[string]app.SecretBackend) {
	t.Helper()
	sm := gcpsecretstest.NewServer(t)
	sm.AddVersion("LOOKERSDK_CLIENT_ID", lookertest.DefaultClientID)
	sm.AddVersion("LOOKERSDK_CLIENT_SECRET", lookerSecret)
	sm.AddVersion("SENDGRID_API_KEY", sendgridKey)
	sm.AddVersion("ONBOARD_WEBHOOK_SECRET", oldWebhookSecret)
	sm.AddVersion("ONBOARD_WEBHOOK_SECRET", webhookSecret)
	env := map[string]string{
		"ONBOARD_SECRETS":         "gcp",
		"ONBOARD_GCP_PROJECT":     gcpsecretstest.Project,
		"LOOKERSDK_CLIENT_SECRET": "wrong-from-env",
		"SENDGRID_API_KEY":        "SG.wrong-from-env",
		"ONBOARD_WEBHOOK_SECRET":  "wrong-from-env",
	}
	return env, map[string]app.SecretBackend{"gcp": gcp.SecretManager(sm.ClientOptions()...)}
}

func TestSecretsFromSecretManager(t *testing.T) {
	t.Run("latest versions", func(t *testing.T) {
		env, backends := secretManagerEnv(t)
		f := newFixture(t, env, backends)
		if code := f.postJSONAs(t, webhookSecret, `{"email":"sm@example.com"}`); code != http.StatusOK {
			t.Fatalf("with the latest webhook secret: %d\n%s", code, f.logs)
		}
		if len(f.users("sm@example.com")) != 1 || len(f.sendgrid.Messages()) != 1 {
			t.Error("Looker and SendGrid credentials were not the ones in Secret Manager")
		}
		if code := f.postJSONAs(t, oldWebhookSecret, `{"email":"old@example.com"}`); code != http.StatusUnauthorized {
			t.Errorf("a superseded version was accepted: %d", code)
		}
	})
	t.Run("pinned version", func(t *testing.T) {
		env, backends := secretManagerEnv(t)
		env["ONBOARD_SECRET_VERSIONS"] = `{"ONBOARD_WEBHOOK_SECRET": 1}`
		f := newFixture(t, env, backends)
		if code := f.postJSONAs(t, oldWebhookSecret, `{"email":"pinned@example.com"}`); code != http.StatusOK {
			t.Errorf("with the pinned version: %d", code)
		}
		if code := f.postJSONAs(t, webhookSecret, `{"email":"latest@example.com"}`); code != http.StatusUnauthorized {
			t.Errorf("latest was used despite the pin: %d", code)
		}
	})
}

func TestSecretManagerSettingErrors(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no project", map[string]string{"ONBOARD_GCP_PROJECT": ""}, "ONBOARD_GCP_PROJECT is not set"},
		{"malformed pins", map[string]string{"ONBOARD_SECRET_VERSIONS": `LOOKERSDK_CLIENT_SECRET=3`}, "ONBOARD_SECRET_VERSIONS must be a JSON object"},
		{"null pins", map[string]string{"ONBOARD_SECRET_VERSIONS": `null`}, "ONBOARD_SECRET_VERSIONS must be a JSON object"},
		{"pin for a name onboard never reads", map[string]string{"ONBOARD_SECRET_VERSIONS": `{"LOOKERSDK_CLIENT_SECRT":"3"}`}, `pins "LOOKERSDK_CLIENT_SECRT", which is not a secret onboard reads`},
		{"pin that is no version", map[string]string{"ONBOARD_SECRET_VERSIONS": `{"LOOKERSDK_CLIENT_SECRET":0}`}, `ONBOARD_SECRET_VERSIONS["LOOKERSDK_CLIENT_SECRET"] must be a version number or alias`},
		{"pinned version missing", map[string]string{"ONBOARD_SECRET_VERSIONS": `{"LOOKERSDK_CLIENT_SECRET":"7"}`}, "pinned version 7"},
	}
	tg := newTargets(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env, backends := secretManagerEnv(t)
			vars := tg.env(t)
			for _, m := range []map[string]string{env, tc.env} {
				for k, v := range m {
					vars[k] = v
				}
			}
			_, err := app.New(context.Background(), app.Options{Getenv: func(k string) string { return vars[k] }, SecretBackends: backends, Log: discardLog()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
