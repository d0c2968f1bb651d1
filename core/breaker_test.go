package core

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/state"
)

// The breaker counts single deprovisions from every trigger and instance
// in the shared store: past max_deprovision within an hour, deprovisions
// answer 503 with Retry-After, CRITICAL is logged once, and it stays open
// until an operator releases it (audited). A redelivery is not counted
// twice; an operator's --force goes through and is counted.
func TestDeprovisionBreakerHoldsAcrossTriggersAndInstances(t *testing.T) {
	first, g := newGrantingEngine(t, nil)
	limit := 2
	first.Config.MaxDeprovision = &limit
	var logs bytes.Buffer
	first.Log = logging.New(&logs, slog.LevelInfo, nil)
	second := &Engine{Config: first.Config, Targets: first.Targets, Store: first.Store, Log: first.Log}
	people := []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com"}
	for _, p := range people {
		if _, err := handle(t, first, Request{Email: p}, Meta{Trigger: "http"}); err != nil {
			t.Fatal(err)
		}
	}
	leave := func(e *Engine, email string, meta Meta) error {
		_, herr := handle(t, e, Request{Email: email, Action: ActionDeprovision}, meta)
		return herr
	}
	if err := leave(first, "a@example.com", Meta{Trigger: "sqs", MessageID: "m-a"}); err != nil {
		t.Fatal(err)
	}
	// SQS redelivers m-a after a lost acknowledgement: answered, not counted.
	if err := leave(second, "a@example.com", Meta{Trigger: "sqs", MessageID: "m-a"}); err != nil {
		t.Fatal(err)
	}
	if err := leave(second, "b@example.com", Meta{Trigger: "pubsub", MessageID: "m-b"}); err != nil {
		t.Fatal(err)
	}
	for i, e := range []*Engine{first, second} {
		err := leave(e, "c@example.com", Meta{Trigger: "http"})
		if err == nil || AsError(err).Status != http.StatusServiceUnavailable || AsError(err).RetryAfter != BreakerRetryAfter || !AsError(err).Retryable() {
			t.Fatalf("deprovision %d past the limit: %+v, want a retryable 503", i+3, err)
		}
	}
	if n := strings.Count(logs.String(), `"severity":"CRITICAL"`); n != 1 {
		t.Errorf("%d CRITICAL lines, want 1:\n%s", n, logs.String())
	}
	if len(g.deprovisioned) != 2 {
		t.Fatalf("%d deprovisions ran, want 2", len(g.deprovisioned))
	}
	// An hour later it is still open: only an operator closes it.
	b, _, err := ReadBreaker(context.Background(), first.Store)
	if err != nil || !b.Open() {
		t.Fatalf("breaker %+v, %v", b, err)
	}
	if err := leave(first, "c@example.com", Meta{Trigger: "cli", Operator: true, Force: true}); err != nil {
		t.Errorf("an operator's --force was refused: %v", err)
	}
	if err := leave(first, "d@example.com", Meta{Trigger: "http", Force: true}); err == nil || AsError(err).Status != http.StatusServiceUnavailable {
		t.Errorf("force from a non-operator went through: %v", err)
	}
	released, err := ReleaseBreaker(context.Background(), first.Store, "ops@laptop")
	if err != nil || !released.Open() {
		t.Fatalf("release: %+v, %v", released, err)
	}
	if err := leave(second, "d@example.com", Meta{Trigger: "http"}); err != nil {
		t.Errorf("after release: %v", err)
	}
	recs, err := first.Store.Audit(context.Background(), state.AuditQuery{Since: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		found = found || (r.Operation == "release deprovision breaker" && r.Person == "ops@laptop" && r.Outcome == "ok")
	}
	if !found {
		t.Errorf("the release is not in the audit log: %+v", recs)
	}
}
