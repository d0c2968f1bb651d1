package gcp_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/core/aac"
	"github.com/onboard-dev/onboard/core/aac/aactest"
)

// What Cloud Scheduler publishes (infra/gcp/scheduler.tf): the task in an
// attribute, "{}" as data.
func taskMessage(id, task, body string) message {
	return message{id: id, idKey: "messageId", attrs: map[string]string{"onboard_task": task}, body: body}
}

// aacFixture is an instance with the AAC example profiles whose workspace
// chain is seeded from the secret and has never been used.
func aacFixture(t *testing.T) (*fixture, *aactest.Server, aactest.Grant) {
	t.Helper()
	fake := aactest.NewTestServer(t, aactest.Options{})
	grant := fake.NewWorkspaceGrant(fake.AddWorkspace("Sales Analytics", "Auto Insights Creator", "Auto Insights Viewer"))
	seeds, _ := json.Marshal(map[string]string{"Sales Analytics": grant.RefreshToken})
	f := newFixture(t, map[string]string{
		"ONBOARD_CONFIG":     repoPath(t, "testdata/onboard-aac.yaml"),
		"AAC_BASE_URL":       fake.URL,
		"AAC_TOKEN_URL":      fake.TokenURL(),
		"AAC_CLIENT_ID":      fake.ClientID(),
		"AAC_REFRESH_TOKENS": string(seeds),
	}, nil)
	return f, fake, grant
}

// The task runs instead of a request: a body that would provision someone
// is ignored.
func TestPubSubTaskRunsInsteadOfARequest(t *testing.T) {
	f := newFixture(t, nil, nil)
	if err := f.deliver(t, taskMessage("6001", aac.TaskKeepAlive, `{"email":"ada@example.com","name":"Ada Lovelace"}`)); err != nil {
		t.Fatalf("a task that succeeds must be acknowledged, got %v", err)
	}
	done := logLines(f.logs, map[string]string{"message": "task done", "task": aac.TaskKeepAlive, "outcome": "done", "message_id": "6001", "severity": "INFO"})
	if len(done) != 1 {
		t.Errorf("want one INFO line for the task run:\n%s", f.logs)
	}
	if n := f.looker.Count("GET", "/users/credential/email/ada@example.com") + f.looker.Count("POST", "/users"); n != 0 {
		t.Errorf("the body of a task message reached Looker (%d calls)", n)
	}
	if keys := f.idempotencyKeys(); len(keys) != 0 {
		t.Errorf("the body of a task message was handled as a request: %v", keys)
	}
}

// A chain seeded but never used is rotated and stored by the keep-alive, so
// the seed's lifetime no longer bounds it.
func TestPubSubAACKeepAliveRotatesAQuietChain(t *testing.T) {
	f, fake, grant := aacFixture(t)
	if n := len(fake.Refreshes()); n != 0 {
		t.Fatalf("%d refreshes before the task; the test needs a never-used chain", n)
	}
	if err := f.deliver(t, taskMessage("6101", aac.TaskKeepAlive, "{}")); err != nil {
		t.Fatalf("keep-alive: %v", err)
	}
	refreshes := fake.Refreshes()
	if len(refreshes) != 1 || refreshes[0].Outcome != "ok" || refreshes[0].Presented != grant.RefreshToken {
		t.Fatalf("refreshes %+v, want one ok refresh of the seed", refreshes)
	}
	// A later run finds the rotation in the store and leaves it be.
	if err := f.deliver(t, taskMessage("6102", aac.TaskKeepAlive, "{}")); err != nil {
		t.Fatalf("second keep-alive: %v", err)
	}
	if n := len(fake.Refreshes()); n != 1 {
		t.Fatalf("%d refreshes after a second run, want still one: the rotation was not stored", n)
	}
	if got := logLines(f.logs, map[string]string{"message": "task done", "task": aac.TaskKeepAlive}); len(got) != 2 {
		t.Errorf("want a task done line per run:\n%s", f.logs)
	}
}

// A broken chain fails the task, so Pub/Sub redelivers it, and the chain is
// logged at CRITICAL with its fix.
func TestPubSubTaskFailureAsksForRedelivery(t *testing.T) {
	f, fake, grant := aacFixture(t)
	// Someone else spends the seed: the chain is broken before onboard uses it.
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {grant.RefreshToken}, "client_id": {fake.ClientID()}}
	resp, err := http.PostForm(fake.TokenURL(), form)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("spending the seed: %d", resp.StatusCode)
	}

	err = f.deliver(t, taskMessage("6201", aac.TaskKeepAlive, "{}"))
	if err == nil || !strings.Contains(err.Error(), aac.TaskKeepAlive) {
		t.Fatalf("want an error naming the task (redelivery), got %v", err)
	}
	if got := logLines(f.logs, map[string]string{"message": "task failed", "task": aac.TaskKeepAlive, "outcome": "failed", "severity": "ERROR"}); len(got) != 1 {
		t.Errorf("want one ERROR line for the failed task:\n%s", f.logs)
	}
	if got := logLines(f.logs, map[string]string{"severity": "CRITICAL"}); len(got) == 0 {
		t.Errorf("the broken chain is not logged at CRITICAL:\n%s", f.logs)
	}
}

// An unknown task is acknowledged, so a mistyped schedule does not loop
// until the dead-letter topic, and logged at ERROR each time.
func TestPubSubUnknownTaskIsAcknowledged(t *testing.T) {
	for name, task := range map[string]string{"misspelt": "aac-keepalive", "empty": ""} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, nil, nil)
			if err := f.deliver(t, taskMessage("6301", task, `{"email":"ada@example.com"}`)); err != nil {
				t.Fatalf("an unknown task must be acknowledged, got %v", err)
			}
			lines := logLines(f.logs, map[string]string{"message": "unknown task", "task": task, "outcome": "unknown", "severity": "ERROR"})
			if len(lines) != 1 {
				t.Fatalf("want one ERROR line naming the task:\n%s", f.logs)
			}
			if known, _ := lines[0]["known_tasks"].(string); !strings.Contains(known, aac.TaskKeepAlive) {
				t.Errorf("the ERROR line does not list the known tasks: %v", lines[0])
			}
			if n := f.looker.Count("POST", "/users"); n != 0 || len(f.idempotencyKeys()) != 0 {
				t.Errorf("the body of a task message was handled as a request (%d users created)", n)
			}
		})
	}
}
