package core

import (
	"context"
	"log/slog"
	"time"

	"github.com/onboard-dev/onboard/core/state"
)

// auditor appends one audit record per write a target makes during a request.
type auditor struct {
	store state.Store
	log   *slog.Logger
	base  state.AuditRecord // request id, idempotency key, trigger, person
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
	// A lost audit line must not undo or fail the write it describes.
	if aerr := a.store.Append(context.WithoutCancel(ctx), rec); aerr != nil {
		a.log.Error("appending to the audit log failed", "target", target, "operation", operation, "error", aerr.Error())
	}
}
