package core

import (
	"context"
	"sync"
)

// Plan collects the writes a dry run would have made. A dry run is the real
// run (same engine, same target code, real reads of current state) with
// every write recorded here instead of sent, so the plan cannot drift from
// what a real run does.
type Plan struct {
	mu     sync.Mutex
	writes []PlannedWrite
}

// PlannedWrite is one write a dry run skipped.
type PlannedWrite struct {
	Target    string `json:"target"`
	Operation string `json:"operation"`        // e.g. "POST /users/{user_id}/credentials_email"
	Detail    string `json:"detail,omitempty"` // the body that would have been sent (never a secret)
}

type planKey struct{}

// WithPlan makes ctx a dry run that records into p.
func WithPlan(ctx context.Context, p *Plan) context.Context {
	return context.WithValue(ctx, planKey{}, p)
}

// PlanFrom returns the dry run's plan, or nil for a real run. Target
// clients check it before every write.
func PlanFrom(ctx context.Context) *Plan {
	p, _ := ctx.Value(planKey{}).(*Plan)
	return p
}

// Add records a skipped write.
func (p *Plan) Add(target, operation, detail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writes = append(p.writes, PlannedWrite{Target: target, Operation: operation, Detail: detail})
}

// Writes returns the recorded writes in the order they were planned.
func (p *Plan) Writes() []PlannedWrite {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]PlannedWrite(nil), p.writes...)
}
