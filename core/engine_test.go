package core

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/core/state/filestore"
)

// stubTarget provisions anyone, counting its calls, or panics.
type stubTarget struct {
	name  string
	panic bool
	calls *int
}

func (s stubTarget) Name() string        { return s.name }
func (stubTarget) Handles(*Profile) bool { return true }
func (s stubTarget) Provision(context.Context, Person, *Profile) (TargetResult, error) {
	if s.panic {
		panic("boom in " + s.name)
	}
	if s.calls != nil {
		*s.calls++
	}
	return TargetResult{Status: StatusCreated}, nil
}
func (s stubTarget) Deprovision(ctx context.Context, p Person, prof *Profile) (TargetResult, error) {
	return s.Provision(ctx, p, prof)
}

// A target that panics fails its request, retryably, with the stack kept
// for the log; the process and the other targets' work go on.
func TestPanickingTargetFailsOnlyItsRequest(t *testing.T) {
	cfg, err := ParseConfig([]byte("default_profile: a\nprofiles:\n  a:\n    stub: {}\n"), stubSchema)
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{Config: cfg, Targets: []Target{stubTarget{name: "bad", panic: true}, stubTarget{name: "good"}}}
	req, verr := Request{Email: "ada@example.com"}.Normalize()
	if verr != nil {
		t.Fatal(verr)
	}
	res, herr := e.Handle(context.Background(), req, Meta{})
	if herr == nil || AsError(herr).Status != http.StatusInternalServerError || !AsError(herr).Retryable() || AsError(herr).Target != "bad" {
		t.Fatalf("answer %+v, want a retryable 500 from the panicking target", herr)
	}
	if herr.Error() != "bad: internal error" {
		t.Errorf("the panic's text reached the answer: %q", herr.Error())
	}
	if !strings.Contains(errText(AsError(herr).Err), "boom in bad") || !strings.Contains(errText(AsError(herr).Err), "runTarget") {
		t.Errorf("the cause lacks the panic and its stack: %v", AsError(herr).Err)
	}
	if res.Targets["good"].Status != StatusCreated {
		t.Errorf("the other target's result is lost: %+v", res.Targets)
	}
}

// Someone provisioned, deprovisioned and provisioned again by requests that
// carry no key (a Zapier webhook sends the same body each time) is
// provisioned again; a duplicate delivery in between still gets the first
// answer without touching the targets.
func TestSameContentAfterTheOppositeActionRunsAgain(t *testing.T) {
	cfg, err := ParseConfig([]byte("default_profile: a\nprofiles:\n  a:\n    stub: {}\n"), stubSchema)
	if err != nil {
		t.Fatal(err)
	}
	store, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	calls := 0
	e := &Engine{Config: cfg, Targets: []Target{stubTarget{name: "counting", calls: &calls}}, Store: store}
	send := func(action Action, meta Meta) Result {
		t.Helper()
		req, verr := Request{Email: "ada@example.com", Action: action}.Normalize()
		if verr != nil {
			t.Fatal(verr)
		}
		res, herr := e.Handle(context.Background(), req, meta)
		if herr != nil {
			t.Fatal(herr)
		}
		return res
	}
	hired := send(ActionProvision, Meta{Trigger: "http"})
	if again := send(ActionProvision, Meta{Trigger: "http"}); again.RequestID != hired.RequestID || calls != 1 {
		t.Fatalf("a duplicate ran the targets (%d calls) or got a new answer", calls)
	}
	send(ActionDeprovision, Meta{Trigger: "sqs", MessageID: "leaver-1"})
	rehired := send(ActionProvision, Meta{Trigger: "http"})
	if calls != 3 || rehired.RequestID == hired.RequestID {
		t.Fatalf("the rehire was answered from the first hire's record (%d target calls)", calls)
	}
	if again := send(ActionProvision, Meta{Trigger: "http"}); again.RequestID != rehired.RequestID || calls != 3 {
		t.Fatalf("a duplicate of the rehire ran the targets (%d calls)", calls)
	}
	send(ActionDeprovision, Meta{Trigger: "http"})
	send(ActionProvision, Meta{Trigger: "http"})
	if calls != 5 {
		t.Fatalf("second leave and rehire by keyless requests: %d target calls, want 5", calls)
	}
}
