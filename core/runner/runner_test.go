package runner_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/runner"
)

// stubSchema gives profiles a "stub" section for byEmail.
var stubSchema = core.ConfigSchema{
	Profile: map[string]func(*yaml.Node, *core.Profile) (any, error){
		"stub": func(n *yaml.Node, _ *core.Profile) (any, error) {
			var section map[string]any
			return section, n.Decode(&section)
		},
	},
}

// byEmail answers per person: refusals and outages as listed, else created.
type byEmail struct {
	mu   sync.Mutex
	seen []string
	fail map[string]error
}

func (*byEmail) Name() string               { return "stub" }
func (*byEmail) Handles(*core.Profile) bool { return true }
func (b *byEmail) Provision(_ context.Context, p core.Person, _ *core.Profile) (core.TargetResult, error) {
	b.mu.Lock()
	b.seen = append(b.seen, p.Email)
	b.mu.Unlock()
	if p.Email == "panic@example.com" {
		panic("a bug for one person")
	}
	if err := b.fail[p.Email]; err != nil {
		return core.TargetResult{}, err
	}
	return core.TargetResult{Status: core.StatusCreated}, nil
}
func (b *byEmail) Deprovision(ctx context.Context, p core.Person, prof *core.Profile) (core.TargetResult, error) {
	return b.Provision(ctx, p, prof)
}

// One runner for every source: each item's outcome is its own; a group
// runs in order and stops at the first item to redeliver, the rest of it
// redelivered unrun; an undecodable item is answered, never run or
// redelivered; a panic fails only its item.
func TestRun(t *testing.T) {
	cfg, err := core.ParseConfig([]byte("default_profile: a\nprofiles:\n  a:\n    stub: {}\n"), stubSchema)
	if err != nil {
		t.Fatal(err)
	}
	target := &byEmail{fail: map[string]error{
		"down@example.com":    core.Unavailable("stub", 0, errors.New("503")),
		"refused@example.com": core.Refused("stub", "no such group", errors.New("400")),
	}}
	e := &core.Engine{Config: cfg, Targets: []core.Target{target}}
	item := func(email, group string) runner.Item {
		req, _ := core.Request{Email: email}.Normalize()
		return runner.Item{Request: req, Group: group, Meta: core.Meta{Trigger: "test"}}
	}
	items := []runner.Item{
		item("g1@example.com", "g"), item("down@example.com", "g"), item("g3@example.com", "g"),
		item("refused@example.com", ""), item("panic@example.com", ""), item("ok@example.com", ""),
		{Err: core.Invalid("email", "required")},
	}
	var heard []int
	var mu sync.Mutex
	out := runner.Run(context.Background(), e, items, 2, func(i int, _ runner.Outcome) { mu.Lock(); heard = append(heard, i); mu.Unlock() })

	want := []struct {
		redeliver bool
		failed    bool
	}{{false, false}, {true, true}, {true, true}, {false, true}, {true, true}, {false, false}, {false, true}}
	for i, w := range want {
		if out[i].Redeliver != w.redeliver || (out[i].Err != nil) != w.failed {
			t.Errorf("item %d: %+v, want redeliver %v, failed %v", i, out[i], w.redeliver, w.failed)
		}
	}
	if slices.Contains(target.seen, "g3@example.com") {
		t.Error("the group's item after a redelivered one ran")
	}
	if i := slices.Index(target.seen, "g1@example.com"); i < 0 || i > slices.Index(target.seen, "down@example.com") {
		t.Errorf("the group ran out of order: %v", target.seen)
	}
	slices.Sort(heard)
	if !slices.Equal(heard, []int{0, 1, 2, 3, 4, 5, 6}) {
		t.Errorf("onDone heard %v, want every item once", heard)
	}
}

// A message attribute's idempotency key is held to the body's rules: a
// bad one drops the message (it could never succeed) and runs nothing.
func TestMessageAttributeKeyIsValidated(t *testing.T) {
	cfg, err := core.ParseConfig([]byte("default_profile: a\nprofiles:\n  a:\n    stub: {}\n"), stubSchema)
	if err != nil {
		t.Fatal(err)
	}
	target := &byEmail{}
	e := &core.Engine{Config: cfg, Targets: []core.Target{target}}
	out := runner.HandleMessage(context.Background(), e, []byte(`{"email":"ada@example.com"}`),
		map[string]string{"idempotency_key": "a\x00b\nc"}, core.Meta{Trigger: "sqs", MessageID: "m1"})
	if out.Retry || out.Err == nil || core.AsError(out.Err).Field != "idempotency_key" || len(target.seen) != 0 {
		t.Fatalf("outcome %+v after %d target calls, want a dropped message naming idempotency_key", out, len(target.seen))
	}
	out = runner.HandleMessage(context.Background(), e, []byte(`{"email":"ada@example.com"}`),
		map[string]string{"idempotency_key": "  crm-7  "}, core.Meta{Trigger: "sqs", MessageID: "m2"})
	if out.Err != nil || len(target.seen) != 1 || out.Result.IdempotencyKey != "crm-7" {
		t.Fatalf("a good attribute key: %+v, key %q, %d calls", out.Err, out.Result.IdempotencyKey, len(target.seen))
	}
}
