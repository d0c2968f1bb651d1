package core

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/onboard-dev/onboard/core/state"
)

// auditor keeps one audit record per write a target makes during a
// request, and writes them all in one call when the request ends (flush).
type auditor struct {
	store state.Store
	log   *slog.Logger
	base  state.AuditRecord // request id, idempotency key, trigger, person

	mu   sync.Mutex
	recs []state.AuditRecord
}

type auditorKey struct{}

func withAuditor(ctx context.Context, a *auditor) context.Context {
	return context.WithValue(ctx, auditorKey{}, a)
}

// RecordWrite adds a write to the audit log: target clients call it after
// every request that can change something outside. The error's text is kept,
// so it must be secret-free like every error here. Without a store, or
// outside a request, it does nothing.
func RecordWrite(ctx context.Context, target, operation, resource string, err error) {
	a, _ := ctx.Value(auditorKey{}).(*auditor)
	if a == nil || a.store == nil {
		return
	}
	rec := a.base
	rec.Time = time.Now().UTC()
	rec.Target = target
	rec.Operation = operation
	rec.Resource = resource
	rec.Outcome = "ok"
	if err != nil {
		rec.Outcome = "error"
		rec.Error = err.Error()
	}
	a.mu.Lock()
	a.recs = append(a.recs, rec)
	a.mu.Unlock()
}

// flush writes the request's audit records in one call. A lost audit line
// must not undo or fail the writes it describes, so a failure is logged.
func (a *auditor) flush(ctx context.Context) {
	if a == nil || a.store == nil {
		return
	}
	a.mu.Lock()
	recs := a.recs
	a.recs = nil
	a.mu.Unlock()
	if len(recs) == 0 {
		return
	}
	if err := a.store.Append(context.WithoutCancel(ctx), recs...); err != nil {
		a.log.Error("appending to the audit log failed", "records", len(recs), "error", err.Error())
	}
}
