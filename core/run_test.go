package core

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
)

// byEmail answers per person: refusals and outages as listed, else created.
type byEmail struct {
	mu   sync.Mutex
	seen []string
	fail map[string]error
}

func (*byEmail) Name() string          { return "stub" }
func (*byEmail) Handles(*Profile) bool { return true }
func (b *byEmail) Provision(_ context.Context, p Person, _ *Profile) (TargetResult, error) {
	b.mu.Lock()
	b.seen = append(b.seen, p.Email)
	b.mu.Unlock()
	if p.Email == "panic@example.com" {
		panic("a bug for one person")
	}
	if err := b.fail[p.Email]; err != nil {
		return TargetResult{}, err
	}
	return TargetResult{Status: StatusCreated}, nil
}
func (b *byEmail) Deprovision(ctx context.Context, p Person, prof *Profile) (TargetResult, error) {
	return b.Provision(ctx, p, prof)
}

// One runner for every source: each item's outcome is its own; a group
// runs in order and stops at the first item to redeliver, the rest of it
// redelivered unrun; an undecodable item is answered, never run or
// redelivered; a panic fails only its item.
func TestRunBatch(t *testing.T) {
	cfg, err := ParseConfig([]byte("default_profile: a\nprofiles:\n  a:\n    stub: {}\n"), stubSchema)
	if err != nil {
		t.Fatal(err)
	}
	target := &byEmail{fail: map[string]error{
		"down@example.com":    Unavailable("stub", 0, errors.New("503")),
		"refused@example.com": Refused("stub", "no such group", errors.New("400")),
	}}
	e := &Engine{Config: cfg, Targets: []Target{target}}
	item := func(email, group string) BatchItem {
		req, _ := Request{Email: email}.Normalize()
		return BatchItem{Request: req, Group: group, Meta: Meta{Trigger: "test"}}
	}
	items := []BatchItem{
		item("g1@example.com", "g"), item("down@example.com", "g"), item("g3@example.com", "g"),
		item("refused@example.com", ""), item("panic@example.com", ""), item("ok@example.com", ""),
		{Err: Invalid("email", "required")},
	}
	var heard []int
	var mu sync.Mutex
	out := e.RunBatch(context.Background(), items, 2, func(i int, _ BatchOutcome) { mu.Lock(); heard = append(heard, i); mu.Unlock() })

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
