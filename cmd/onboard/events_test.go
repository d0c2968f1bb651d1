package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core/httpapi"
	"github.com/onboard-dev/onboard/core/looker/lookertest"
)

// startLocalSandbox runs serve's handler in this process, in sandbox mode
// with a throwaway webhook secret, as `onboard serve` does.
func startLocalSandbox(t *testing.T) (*local, *httptest.Server) {
	t.Helper()
	setSandboxEnv(t)
	l, err := startLocal(context.Background(), io.Discard, t.TempDir(), slog.LevelError)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.close)
	srv := httptest.NewServer(localHandler(l.instance, l.app.Auth, l.log))
	t.Cleanup(srv.Close)
	return l, srv
}

// setSandboxEnv makes this process's environment that of a sandbox run of
// the example config, with a state store of its own.
func setSandboxEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"LOOKERSDK_BASE_URL", "ONBOARD_WEBHOOK_SECRET", "ONBOARD_INSECURE_NO_AUTH", "ONBOARD_SECRETS"} {
		t.Setenv(k, "")
	}
	t.Setenv("ONBOARD_CONFIG", absPath(t, "../../testdata/onboard.yaml"))
	t.Setenv("ONBOARD_STORE", "file:"+t.TempDir())
}

// sendEvent posts body to url with the given headers and returns the status.
func sendEvent(t *testing.T, url string, body []byte, header map[string]string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		var answer map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || answer["error"] != "unauthorized" || len(answer) != 1 {
			t.Errorf("401 answer %v (%v), want {\"error\":\"unauthorized\"}", answer, err)
		}
	}
	return resp.StatusCode
}

// The event routes reach the engine like POST / does, so they need the same
// credential: an SQS-shaped body with none must not deprovision anyone, a
// push body with none must not provision anyone.
func TestLocalEventRoutesNeedTheWebhookCredential(t *testing.T) {
	l, srv := startLocalSandbox(t)
	secret := l.getenv("ONBOARD_WEBHOOK_SECRET")
	push, err := os.ReadFile("../../testdata/events/pubsub-push.json") // provisions grace
	if err != nil {
		t.Fatal(err)
	}
	sqs, err := os.ReadFile("../../testdata/events/sqs.json") // provisions ada, deprovisions grace
	if err != nil {
		t.Fatal(err)
	}
	grace := func() (disabled, exists bool) {
		u, ok := l.box.Fakes["looker"].Server.(*lookertest.Server).UserByEmail("grace@example.com")
		return u.IsDisabled, ok
	}

	for name, header := range map[string]map[string]string{
		"no credential":   nil,
		"wrong bearer":    {"Authorization": "Bearer not-the-secret"},
		"wrong signature": {httpapi.SignatureHeader: httpapi.Sign("not-the-secret", time.Now(), push)},
	} {
		if got := sendEvent(t, srv.URL+"/_local/pubsub", push, header); got != http.StatusUnauthorized {
			t.Errorf("push, %s: %d, want 401", name, got)
		}
	}
	if _, exists := grace(); exists {
		t.Error("an unauthenticated push provisioned grace")
	}
	// A signature over the raw event body is a credential too.
	if got := sendEvent(t, srv.URL+"/_local/pubsub", push, map[string]string{httpapi.SignatureHeader: httpapi.Sign(secret, time.Now(), push)}); got != http.StatusOK {
		t.Fatalf("signed push: %d", got)
	}
	if disabled, exists := grace(); !exists || disabled {
		t.Fatalf("grace after the signed push: exists %v, disabled %v", exists, disabled)
	}

	// The attack: a deprovision in an SQS batch from anyone who reaches the port.
	if got := sendEvent(t, srv.URL+"/_local/lambda", sqs, nil); got != http.StatusUnauthorized {
		t.Errorf("SQS batch without a credential: %d, want 401", got)
	}
	if disabled, _ := grace(); disabled {
		t.Error("an unauthenticated SQS batch deprovisioned grace")
	}
	if got := sendEvent(t, srv.URL+"/_local/lambda", sqs, map[string]string{"Authorization": "Bearer " + secret}); got != http.StatusOK {
		t.Fatalf("SQS batch with the bearer: %d", got)
	}
	if disabled, _ := grace(); !disabled {
		t.Error("the authenticated SQS batch did not deprovision grace")
	}
}

// Every route checks signatures with the one WebhookAuth of the app, so a
// signature used on an event route is spent for POST / too.
func TestLocalEventRoutesShareTheReplayMemory(t *testing.T) {
	l, srv := startLocalSandbox(t)
	body := []byte(`{"Records":[{"messageId":"m1","eventSource":"aws:sqs","body":"{\"email\":\"lin@example.com\"}"}]}`)
	signed := map[string]string{httpapi.SignatureHeader: httpapi.Sign(l.getenv("ONBOARD_WEBHOOK_SECRET"), time.Now(), body)}
	if got := sendEvent(t, srv.URL+"/_local/lambda", body, signed); got != http.StatusOK {
		t.Fatalf("signed batch: %d", got)
	}
	// A second WebhookAuth would accept the signature and then refuse the
	// body as a request (400); the shared one knows it was used.
	if got := sendEvent(t, srv.URL+"/", body, signed); got != http.StatusUnauthorized {
		t.Errorf("the same signature on POST /: %d, want 401 (replayed)", got)
	}
}
