package runner

import (
	"context"

	"github.com/onboard-dev/onboard/core"
)

// MessageOutcome is what an event trigger (Pub/Sub, SQS) should do with one
// message after it has been processed.
type MessageOutcome struct {
	Result core.Result
	Err    error
	// Retry is true when the platform should deliver the message again: a
	// target was rate limiting, down or timed out, or the same request is in
	// progress elsewhere. A request that can never succeed (malformed, refused
	// by policy, refused by a target for good) is not retried, so a poison
	// message cannot loop forever; it is logged at ERROR with the reason.
	Retry bool
}

// HandleMessage decodes and runs one message.
func HandleMessage(ctx context.Context, e *core.Engine, body []byte, attributes map[string]string, meta core.Meta) MessageOutcome {
	if meta.RequestID == "" {
		meta.RequestID = core.NewRequestID()
	}
	req, err := core.DecodeMessage(body, attributes)
	o := Run(ctx, e, []Item{{Request: req, Err: err, Meta: meta}}, 1, nil)[0]
	return ForMessage(e, meta, o)
}

// ForMessage logs what becomes of a message that ran in a batch, and says
// whether to deliver it again.
func ForMessage(e *core.Engine, meta core.Meta, o Outcome) MessageOutcome {
	log := e.Logger().With("request_id", meta.RequestID, "trigger", meta.Trigger, "message_id", meta.MessageID)
	failure := core.AsError(o.Err)
	switch {
	case o.Err == nil:
	case o.Redeliver:
		log.Warn("message will be redelivered", "status", failure.Status, "error", failure.Error())
	default:
		log.Error("message dropped: it cannot succeed as sent", "status", failure.Status, "field", failure.Field, "reason", failure.Error())
	}
	return MessageOutcome{Result: o.Result, Err: o.Err, Retry: o.Redeliver}
}
