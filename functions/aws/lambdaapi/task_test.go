package lambdaapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/core/aac"
)

// What the EventBridge schedule sends (infra/aws/template.yaml): its
// constant input.
const keepAliveEvent = `{"onboard_task":"aac-keep-alive"}`

// Without AAC the task has nothing to do, succeeds, and says so.
func TestScheduledTaskRuns(t *testing.T) {
	h := newHarness(t, nil, 0)
	out, err := h.invoke(t, []byte(keepAliveEvent))
	if err != nil {
		t.Fatalf("invocation failed: %v", err)
	}
	var res struct{ Task, Outcome string }
	mustUnmarshal(t, out, &res)
	if res.Task != aac.TaskKeepAlive || res.Outcome != "done" {
		t.Errorf("answer %s, want the task and outcome done", out)
	}
	done := 0
	for _, l := range h.logLines(t, "task", aac.TaskKeepAlive) {
		if l["message"] == "task done" && l["outcome"] == "done" && l["severity"] == "INFO" {
			done++
		}
	}
	if done != 1 {
		t.Errorf("want one INFO task done line, got %d", done)
	}
	if n := len(h.looker.Users()); n != 0 {
		t.Errorf("a task provisioned %d users", n)
	}
}

// A chain seeded but never used is rotated and stored by the keep-alive.
func TestScheduledAACKeepAliveRotatesAQuietChain(t *testing.T) {
	h, fake := aacHarness(t)
	if _, err := h.invoke(t, []byte(keepAliveEvent)); err != nil {
		t.Fatalf("invocation failed: %v", err)
	}
	if r := fake.Refreshes(); len(r) != 1 || r[0].Outcome != "ok" {
		t.Fatalf("refreshes %+v, want one ok rotation of the seed", r)
	}
	// The next day's run finds the rotation in the store and leaves it be.
	if _, err := h.invoke(t, []byte(keepAliveEvent)); err != nil {
		t.Fatalf("second invocation failed: %v", err)
	}
	if r := fake.Refreshes(); len(r) != 1 {
		t.Fatalf("refreshes %+v after a second run, want still one: the rotation was not stored", r)
	}
}

// A failed task fails the invocation: Lambda retries it, and it counts in
// the Errors metric.
func TestScheduledTaskFailureFailsTheInvocation(t *testing.T) {
	h, fake := aacHarness(t)
	// Someone else spends the seed: the chain is broken before onboard uses it.
	seed := fake.LiveRefreshToken(0)
	resp, err := http.PostForm(fake.TokenURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {seed}, "client_id": {fake.ClientID()}})
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("spending the seed: %d", resp.StatusCode)
	}
	out, err := h.invoke(t, []byte(keepAliveEvent))
	if err == nil || !strings.Contains(err.Error(), aac.TaskKeepAlive) {
		t.Fatalf("answered %s, %v; want an error naming the task", out, err)
	}
	if len(h.logLines(t, "severity", "CRITICAL")) == 0 {
		t.Error("the broken chain is not logged at CRITICAL")
	}
}

// An unknown task fails the invocation, so a mistyped schedule shows in the
// Errors metric instead of succeeding silently.
func TestUnknownTaskFailsTheInvocation(t *testing.T) {
	for name, event := range map[string]string{
		"misspelt":   `{"onboard_task":"aac-keepalive"}`,
		"empty":      `{"onboard_task":""}`,
		"not a name": `{"onboard_task":42}`,
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil, 0)
			out, err := h.invoke(t, []byte(event))
			if err == nil {
				t.Fatalf("answered %s, want an error", out)
			}
			if !strings.Contains(err.Error(), aac.TaskKeepAlive) {
				t.Errorf("error %q does not name the known tasks", err)
			}
		})
	}
}
