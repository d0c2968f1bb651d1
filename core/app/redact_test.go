package app

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/internal/fakehttp"
	"github.com/onboard-dev/onboard/internal/leakcheck"
)

// echoingUpstreams puts a proxy that echoes refused requests (headers and
// body, raw and base64) in front of the Looker, SendGrid and Periscope fakes;
// refuse names the one call ("METHOD /path") they currently refuse with 400.
type echoingUpstreams struct {
	mu     sync.Mutex
	refuse string
}

func (e *echoingUpstreams) set(call string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.refuse = call
}

func (e *echoingUpstreams) status(r *http.Request) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r.Method+" "+r.URL.Path == e.refuse {
		return http.StatusBadRequest
	}
	return 0
}

func (e *echoingUpstreams) install(t testing.TB, periscopeURL string) func(*harness, map[string]string, *Options) {
	return func(h *harness, vars map[string]string, _ *Options) {
		vars["LOOKERSDK_BASE_URL"] = fakehttp.EchoingProxy(t, h.looker.URL, e.status)
		vars["SENDGRID_BASE_URL"] = fakehttp.EchoingProxy(t, h.sendgrid.URL, e.status)
		vars["PERISCOPE_BASE_URL"] = fakehttp.EchoingProxy(t, periscopeURL, e.status)
	}
}

// Upstreams that echo what they refuse, credentials included, in any
// encoding: no answer body, log line or audit record holds a secret or a
// Looker access token in any form, and a refused login shows nothing of
// its answer at all.
func TestEchoedSecretsReachNoAnswerLogOrAudit(t *testing.T) {
	ps := newPeriscopeFake(t)
	up := &echoingUpstreams{}
	h := newHarness(t, map[string]string{
		"ONBOARD_CONFIG":  writeConfig(t, combinedConfig),
		"PERISCOPE_SITES": periscopeSites,
	}, up.install(t, ps.URL))

	var answers []string
	for i, call := range []string{
		"POST /api/4.0/login", // Looker's login: the form with client_secret
		"POST /api/4.0/users", // a Looker write: Authorization: Bearer <token>
		"POST /api/v1/users",  // a Periscope write: the site key header
		"POST /v3/mail/send",  // SendGrid: Authorization: Bearer <key>
	} {
		up.set(call)
		a := h.post(t, `{"email":"echo`+strconv.Itoa(i)+`@example.com","name":"Echo Test"}`)
		if i == 0 {
			if strings.Contains(a.raw, fakehttp.EchoMarker) || !strings.Contains(a.raw, "LOOKERSDK_CLIENT_SECRET") {
				t.Errorf("a refused login's answer %d %s: want a fixed message naming the settings, nothing echoed", a.status, a.raw)
			}
		} else if a.status != http.StatusBadGateway || !strings.Contains(a.raw, fakehttp.EchoMarker) {
			t.Errorf("%s: answer %d %s: want the upstream's (masked) refusal, or this test proves nothing", call, a.status, a.raw)
		}
		answers = append(answers, a.raw)
		// The next request logs in again: tokens rotate through the redactor.
		h.looker.RevokeTokens()
	}

	secrets := map[string]string{
		"webhook secret": webhookSecret, "Looker client secret": lookerSecret, "SendGrid key": sendgridKey,
		"Periscope key (acme)": periscopeKeyAcme, "Periscope key (beta)": periscopeKeyBeta,
	}
	tokens := map[string]bool{}
	for _, r := range h.looker.Requests() {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && !tokens[tok] {
			tokens[tok] = true
			secrets["Looker token #"+strconv.Itoa(len(tokens))] = tok
		}
	}
	if len(tokens) < 2 {
		t.Fatalf("%d Looker token(s) used; the test needs them to rotate", len(tokens))
	}
	records, err := h.app.Store.Audit(context.Background(), state.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	audit, _ := json.Marshal(records)
	if !strings.Contains(string(audit), fakehttp.EchoMarker) {
		t.Errorf("no audit record quotes an upstream refusal, so this test proves nothing: %s", audit)
	}
	for where, text := range map[string]string{"answers": strings.Join(answers, "\n"), "log": h.logs.String(), "audit log": string(audit)} {
		if found := leakcheck.Find(text, secrets); found != nil {
			t.Errorf("the %s hold %v", where, found)
		}
	}
}
