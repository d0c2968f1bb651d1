package core

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

type stubTarget struct {
	name  string
	panic bool
}

func (s stubTarget) Name() string        { return s.name }
func (stubTarget) Handles(*Profile) bool { return true }
func (s stubTarget) Provision(context.Context, Person, *Profile) (TargetResult, error) {
	if s.panic {
		panic("boom in " + s.name)
	}
	return TargetResult{Status: StatusCreated}, nil
}
func (s stubTarget) Deprovision(ctx context.Context, p Person, prof *Profile) (TargetResult, error) {
	return s.Provision(ctx, p, prof)
}

// A target that panics fails its request, retryably, with the stack kept
// for the log; the process and the other targets' work go on.
func TestPanickingTargetFailsOnlyItsRequest(t *testing.T) {
	cfg, err := ParseConfig([]byte("default_profile: a\nprofiles:\n  a:\n    looker: {roles: [Viewer]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{Config: cfg, Targets: []Target{stubTarget{name: "bad", panic: true}, stubTarget{name: "good"}}}
	req, verr := Request{Email: "ada@example.com"}.Normalize()
	if verr != nil {
		t.Fatal(verr)
	}
	res, herr := e.Handle(context.Background(), req, Meta{})
	if herr == nil || herr.Status != http.StatusInternalServerError || !herr.Retryable() || herr.Target != "bad" {
		t.Fatalf("answer %+v, want a retryable 500 from the panicking target", herr)
	}
	if herr.Error() != "bad: internal error" {
		t.Errorf("the panic's text reached the answer: %q", herr.Error())
	}
	if !strings.Contains(errText(herr.Err), "boom in bad") || !strings.Contains(errText(herr.Err), "runTarget") {
		t.Errorf("the cause lacks the panic and its stack: %v", herr.Err)
	}
	if res.Targets["good"].Status != StatusCreated {
		t.Errorf("the other target's result is lost: %+v", res.Targets)
	}
}

// A message attribute's idempotency key is held to the body's rules: a
// bad one drops the message (it could never succeed) and runs nothing.
func TestMessageAttributeKeyIsValidated(t *testing.T) {
	cfg, err := ParseConfig([]byte("default_profile: a\nprofiles:\n  a:\n    looker: {roles: [Viewer]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	e := &Engine{Config: cfg, Targets: []Target{countingTarget{&calls}}}
	out := e.HandleMessage(context.Background(), []byte(`{"email":"ada@example.com"}`),
		map[string]string{"idempotency_key": "a\x00b\nc"}, Meta{Trigger: "sqs", MessageID: "m1"})
	if out.Retry || out.Err == nil || out.Err.Field != "idempotency_key" || calls != 0 {
		t.Fatalf("outcome %+v after %d target calls, want a dropped message naming idempotency_key", out, calls)
	}
	out = e.HandleMessage(context.Background(), []byte(`{"email":"ada@example.com"}`),
		map[string]string{"idempotency_key": "  crm-7  "}, Meta{Trigger: "sqs", MessageID: "m2"})
	if out.Err != nil || calls != 1 || out.Result.IdempotencyKey != "crm-7" {
		t.Fatalf("a good attribute key: %+v, key %q, %d calls", out.Err, out.Result.IdempotencyKey, calls)
	}
}

type countingTarget struct{ calls *int }

func (countingTarget) Name() string          { return "counting" }
func (countingTarget) Handles(*Profile) bool { return true }
func (c countingTarget) Provision(context.Context, Person, *Profile) (TargetResult, error) {
	*c.calls++
	return TargetResult{Status: StatusCreated}, nil
}
func (c countingTarget) Deprovision(ctx context.Context, p Person, prof *Profile) (TargetResult, error) {
	return c.Provision(ctx, p, prof)
}
