// Package appsscript tests onFormSubmit.gs, the Google Forms trigger, by
// running it under Node with stand-ins for the Apps Script services and
// checking its requests with the server's own code.
package appsscript

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/httpapi"
)

type fetch struct {
	URL     string `json:"url"`
	Clock   int64  `json:"clock"`
	Options struct {
		Method             string            `json:"method"`
		ContentType        string            `json:"contentType"`
		Payload            string            `json:"payload"`
		Headers            map[string]string `json:"headers"`
		MuteHTTPExceptions bool              `json:"muteHttpExceptions"`
	} `json:"options"`
}

type run struct {
	Result  json.RawMessage `json:"result"`
	Error   string          `json:"error"`
	Fetches []fetch         `json:"fetches"`
	Sleeps  []int64         `json:"sleeps"`
}

// runScript runs scenario through testdata/harness.js.
func runScript(t *testing.T, scenario map[string]any) run {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal("node not found; CI must run the Apps Script tests")
		}
		t.Skip("node not found: the Apps Script tests need Node.js. Skipped only outside CI; with CI=true this test fails.")
	}
	path := filepath.Join(t.TempDir(), "scenario.json")
	b, _ := json.Marshal(scenario)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(node, "testdata/harness.js", "onFormSubmit.gs", path).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node: %v\n%s", err, stderr)
	}
	var r run
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("harness output %q: %v", out, err)
	}
	return r
}

func scriptSignature(t *testing.T, secret string, ts int64, body string) string {
	t.Helper()
	r := runScript(t, map[string]any{"call": "onboardSignature_", "args": []any{secret, ts, body}})
	var sig string
	if err := json.Unmarshal(r.Result, &sig); err != nil || r.Error != "" {
		t.Fatalf("result %s, error %q", r.Result, r.Error)
	}
	return sig
}

func TestSignatureMatchesServer(t *testing.T) {
	const want = "t=1700000000,v1=218673b4fee630d3744eb7a41349b5a713d887445faf18f3e1475617feeb143e"
	if got := httpapi.Sign("test-secret", time.Unix(1700000000, 0), []byte(`{"email":"ada@example.com"}`)); got != want {
		t.Fatalf("server's test vector changed: %s", got)
	}
	if got := scriptSignature(t, "test-secret", 1700000000, `{"email":"ada@example.com"}`); got != want {
		t.Errorf("script signs %s, server %s", got, want)
	}
	// More MACs, so bytes below 0x10 (a lost leading zero) and above 0x7f
	// (a sign-extended byte) both come up.
	for i := range 8 {
		secret := fmt.Sprintf("whsec-%d-rotating", i)
		body := fmt.Sprintf(`{"email":"user%d@example.com","name":"N\u00famero %d"}`, i, i)
		ts := int64(1700000000 + i*37)
		if got, want := scriptSignature(t, secret, ts, body), httpapi.Sign(secret, time.Unix(ts, 0), []byte(body)); got != want {
			t.Errorf("vector %d: script %s, server %s", i, got, want)
		}
	}
}

const (
	url    = "https://europe-west1-acme.cloudfunctions.net/ProvisionHTTP"
	secret = "whsec-apps-script-test-91f2"
)

func formScenario(responses ...map[string]any) map[string]any {
	return map[string]any{
		"call":  "onFormSubmit",
		"now":   time.Now().Unix(),
		"props": map[string]string{"ONBOARD_URL": url, "ONBOARD_WEBHOOK_SECRET": secret},
		"event": map[string]any{"response": map[string]any{
			"id":              "2_ABaOnud1",
			"respondentEmail": "Jose.Nunez@Example.com",
			"items": []map[string]any{
				{"title": "Full name", "response": "José Núñez"},
				{"title": "Region", "response": "EMEA"},
				{"title": "Favourite colour", "response": "teal"},
			},
		}},
		"responses": responses,
	}
}

func TestFormSubmissionIsSignedAndRetried(t *testing.T) {
	r := runScript(t, formScenario(
		map[string]any{"status": 503, "headers": map[string]string{"Retry-After": "7"}},
		map[string]any{"status": 429, "headers": map[string]string{"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}},
		map[string]any{"status": 409, "headers": map[string]string{"Retry-After": "0"}},
		map[string]any{"status": 200, "body": `{"status":"created"}`},
	))
	if r.Error != "" || string(r.Result) != `{"status":"created"}` {
		t.Fatalf("result %s, error %q", r.Result, r.Error)
	}
	// 7 s as told; 2^2 s when Retry-After is a date; at least 1 s for 0.
	if want := []int64{7000, 4000, 1000}; fmt.Sprint(r.Sleeps) != fmt.Sprint(want) {
		t.Errorf("slept %v ms, want %v", r.Sleeps, want)
	}
	if len(r.Fetches) != 4 {
		t.Fatalf("%d requests, want 4", len(r.Fetches))
	}
	seen := map[string]bool{}
	for i, f := range r.Fetches {
		o := f.Options
		if f.URL != url || o.Method != "post" || o.ContentType != "application/json" || !o.MuteHTTPExceptions {
			t.Errorf("request %d: %+v", i, f)
		}
		sig := o.Headers[httpapi.SignatureHeader]
		if seen[sig] {
			t.Errorf("request %d reuses a signature; the server refuses replays", i)
		}
		seen[sig] = true
		// The server's own check, at the moment the request was made.
		auth := &httpapi.WebhookAuth{
			Secret: func(context.Context) (string, error) { return secret, nil },
			Now:    func() time.Time { return time.Unix(f.Clock, 0) },
		}
		h := http.Header{}
		h.Set(httpapi.SignatureHeader, sig)
		if err := auth.Verify(context.Background(), h, []byte(o.Payload)); err != nil {
			t.Errorf("request %d: server refuses the signature: %v", i, err)
		}
	}

	body := r.Fetches[0].Options.Payload
	for _, c := range body {
		if c > 0x7e {
			t.Fatalf("body is not ASCII, so its signed bytes depend on UrlFetchApp's charset: %s", body)
		}
	}
	req, derr := core.DecodeRequest([]byte(body))
	if derr != nil {
		t.Fatalf("server refuses the body %s: %v", body, derr)
	}
	if req.Email != "Jose.Nunez@example.com" || req.FirstName != "José" || req.LastName != "Núñez" ||
		req.Attributes["region"] != "EMEA" || req.IdempotencyKey != "gform-2_ABaOnud1" {
		t.Errorf("request %+v from body %s", req, body)
	}
}

func TestFormSubmissionFailures(t *testing.T) {
	t.Run("refused request is not retried", func(t *testing.T) {
		r := runScript(t, formScenario(map[string]any{"status": 400, "body": `{"error":"must be a single bare address","field":"email"}`}))
		if len(r.Fetches) != 1 || !strings.Contains(r.Error, "onboard answered 400") || !strings.Contains(r.Error, `"field":"email"`) {
			t.Errorf("%d requests, error %q", len(r.Fetches), r.Error)
		}
	})
	t.Run("gives up after five attempts", func(t *testing.T) {
		var busy []map[string]any
		for range 5 {
			busy = append(busy, map[string]any{"status": 503, "headers": map[string]string{"Retry-After": "600"}})
		}
		r := runScript(t, formScenario(busy...))
		if len(r.Fetches) != 5 || !strings.Contains(r.Error, "onboard answered 503 after 5 attempt(s)") {
			t.Errorf("%d requests, error %q", len(r.Fetches), r.Error)
		}
		for _, ms := range r.Sleeps {
			if ms != 60000 {
				t.Errorf("slept %d ms; waits are capped at a minute to fit a trigger's run time", ms)
			}
		}
	})
	t.Run("not configured", func(t *testing.T) {
		s := formScenario()
		s["props"] = map[string]string{}
		if r := runScript(t, s); len(r.Fetches) != 0 || !strings.Contains(r.Error, "Script Properties") {
			t.Errorf("%d requests, error %q", len(r.Fetches), r.Error)
		}
	})
}
