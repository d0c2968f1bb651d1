package app

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/periscope/periscopetest"
	"github.com/onboard-dev/onboard/internal/logbuf"
)

// Distinctive Periscope keys: any appearance in a log or answer is a leak.
const (
	periscopeKeyAcme = "psk/LEAKCHECK+app-acme-31c9&<="
	periscopeKeyBeta = "psk/LEAKCHECK+app-beta-8d02&<="
	periscopeSites   = `{"acme":"` + periscopeKeyAcme + `","beta":"` + periscopeKeyBeta + `"}`
)

// combinedConfig grants Looker and two Periscope sites in one profile; its
// Looker names are those testdata/onboard.yaml seeds into the fake.
const combinedConfig = `
allowed_email_domains: [example.com]
default_profile: analyst-bi
email:
  provider: sendgrid
  from: "Data Team <data@example.com>"
  subject: "Welcome"
  text: "Hi {{.FirstName}}, set up your account: {{.SetupURL}}"
periscope:
  invited_by_email: data@example.com
profiles:
  analyst-bi:
    looker:
      roles: [Viewer]
      groups: [Analysts]
    periscope:
      sites: [acme, beta]
      groups: [Analysts, Finance]
`

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "onboard.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// periscopeKeys are the fake's sites and their keys (periscopeSites, as a map).
var periscopeKeys = map[string]string{"acme": periscopeKeyAcme, "beta": periscopeKeyBeta}

func newPeriscopeFake(t testing.TB) *periscopetest.Server {
	return periscopetest.NewTestServer(t, periscopetest.Options{Sites: periscopeKeys})
}

func TestLookerAndPeriscopeInOneProfile(t *testing.T) {
	ps := newPeriscopeFake(t)
	h := newHarness(t, map[string]string{
		"ONBOARD_CONFIG":     writeConfig(t, combinedConfig),
		"PERISCOPE_BASE_URL": ps.URL,
		"PERISCOPE_SITES":    periscopeSites,
	})

	a := h.post(t, `{"email":"ada@example.com","name":"Ada Lovelace"}`)
	targets, _ := a.body["targets"].(map[string]any)
	if a.status != 200 || a.body["status"] != "created" || len(targets) != 3 {
		t.Fatalf("answer %d %s", a.status, a.raw)
	}
	for _, name := range []string{"looker", "periscope:acme", "periscope:beta"} {
		if r, _ := targets[name].(map[string]any); r["status"] != "created" {
			t.Errorf("%s: %v", name, targets[name])
		}
	}
	for _, site := range []string{"acme", "beta"} {
		if u, ok := ps.User(site, "ada@example.com"); !ok || len(u.Groups) != 2 {
			t.Errorf("%s: %+v", site, u)
		}
	}
	// Periscope invites by itself: the one welcome email is Looker's.
	if n := len(h.sendgrid.Messages()); n != 1 {
		t.Errorf("%d emails", n)
	}

	gone := h.post(t, `{"email":"ada@example.com","action":"deprovision"}`)
	targets, _ = gone.body["targets"].(map[string]any)
	if gone.status != 200 || gone.body["status"] != "deleted" || len(targets) != 3 {
		t.Fatalf("deprovision %d %s", gone.status, gone.raw)
	}
	if r, _ := targets["looker"].(map[string]any); r["status"] != "disabled" {
		t.Errorf("looker %v", targets["looker"])
	}
	if len(ps.Users("acme"))+len(ps.Users("beta")) != 0 {
		t.Error("still on a Periscope site")
	}

	// One site rate limiting: the answer is retryable and names the site.
	ps.InjectFault(periscopetest.Fault{Site: "beta", Method: "GET", Path: "/api/v1/users", Status: 429, RetryAfter: "120"})
	slow := h.post(t, `{"email":"bob@example.com","name":"Bob Babbage"}`)
	if slow.status != 429 || slow.header.Get("Retry-After") != "120" || !strings.Contains(slow.raw, "periscope:beta") {
		t.Errorf("rate limited: %d Retry-After=%q %s", slow.status, slow.header.Get("Retry-After"), slow.raw)
	}

	for _, out := range []string{a.raw, gone.raw, slow.raw, h.logs.String()} {
		if strings.Contains(out, periscopeKeyAcme) || strings.Contains(out, periscopeKeyBeta) {
			t.Fatalf("a Periscope key leaked: %s", out)
		}
	}
}

func TestPeriscopeSettingsAreCheckedAtStart(t *testing.T) {
	cfg := writeConfig(t, combinedConfig)
	for name, tc := range map[string]struct {
		sites, baseURL string
		want           []string
	}{
		"unset":         {"", "", []string{`profile "analyst-bi" configures periscope but PERISCOPE_SITES is not set`}},
		"site missing":  {`{"acme":"` + periscopeKeyAcme + `"}`, "", []string{`periscope site "beta", which is not a key of PERISCOPE_SITES (its sites: acme)`}},
		"not an object": {`["` + periscopeKeyAcme + `"]`, "", []string{"PERISCOPE_SITES must be a JSON object"}},
		"bad base URL":  {periscopeSites, "ftp://periscope", []string{"PERISCOPE_BASE_URL must be an http(s) URL"}},
	} {
		t.Run(name, func(t *testing.T) {
			vars := map[string]string{
				"ONBOARD_CONFIG": cfg, "LOOKERSDK_BASE_URL": "https://looker.invalid", "LOOKERSDK_CLIENT_ID": "id",
				"LOOKERSDK_CLIENT_SECRET": lookerSecret, "SENDGRID_API_KEY": sendgridKey, "ONBOARD_WEBHOOK_SECRET": webhookSecret,
				"ONBOARD_STORE": "file:" + t.TempDir(), "PERISCOPE_SITES": tc.sites, "PERISCOPE_BASE_URL": tc.baseURL,
			}
			logs := &logbuf.Buffer{}
			a, err := New(context.Background(), Options{Getenv: func(k string) string { return vars[k] }, Log: logging.New(logs, slog.LevelDebug, nil)})
			if err == nil {
				a.Close()
				t.Fatal("started")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q, want %q", err, w)
				}
			}
			if strings.Contains(err.Error()+logs.String(), periscopeKeyAcme) {
				t.Errorf("a key leaked: %v %s", err, logs.String())
			}
		})
	}
}

// A new user whose Looker account was made by a request that then failed
// on another target is still new on the retry: the retry finishes the
// request and sends the one welcome email the first could not.
func TestRetryAfterAnotherTargetFailedStillWelcomesOnce(t *testing.T) {
	ps := newPeriscopeFake(t)
	h := newHarness(t, map[string]string{
		"ONBOARD_CONFIG":     writeConfig(t, combinedConfig),
		"PERISCOPE_BASE_URL": ps.URL,
		"PERISCOPE_SITES":    periscopeSites,
	})
	ps.InjectFault(periscopetest.Fault{Site: "beta", Method: "POST", Path: "/api/v1/users", Status: 503, Times: 1})
	first := h.post(t, `{"email":"ada@example.com","name":"Ada Lovelace"}`)
	if first.status != 503 {
		t.Fatalf("first delivery: %d %s", first.status, first.raw)
	}
	if n := len(h.sendgrid.Messages()); n != 0 {
		t.Fatalf("%d welcome emails from a request that failed", n)
	}
	retry := h.post(t, `{"email":"ada@example.com","name":"Ada Lovelace"}`)
	targets, _ := retry.body["targets"].(map[string]any)
	if looker, _ := targets["looker"].(map[string]any); retry.status != 200 || looker["status"] != "created" || retry.body["email"] != "sent" {
		t.Fatalf("retry: %d %s", retry.status, retry.raw)
	}
	if n := len(h.sendgrid.Messages()); n != 1 {
		t.Errorf("%d welcome emails, want one", n)
	}
	again := h.post(t, `{"email":"ada@example.com","name":"Ada Lovelace"}`)
	if again.status != 200 || len(h.sendgrid.Messages()) != 1 {
		t.Errorf("a third delivery: %d %s, %d emails", again.status, again.raw, len(h.sendgrid.Messages()))
	}
}
