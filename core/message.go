package core

import (
	"context"
	"log/slog"
	"net/http"
)

// MessageOutcome is what an event trigger (Pub/Sub, SQS) should do with one
// message after it has been processed.
type MessageOutcome struct {
	Result Result
	Err    *Error
	// Retry is true when the platform should deliver the message again: a
	// target was rate limiting, down or timed out, or the same request is in
	// progress elsewhere. A request that can never succeed (malformed, refused
	// by policy, refused by a target for good) is not retried, so a poison
	// message cannot loop forever; it is logged at ERROR with the reason.
	Retry bool
}

// HandleMessage decodes one message body (the request schema, one object)
// and runs it. attributes are the platform's message attributes; an
// "idempotency_key" attribute is used when the body carries none.
func (e *Engine) HandleMessage(ctx context.Context, body []byte, attributes map[string]string, meta Meta) MessageOutcome {
	if meta.RequestID == "" {
		meta.RequestID = NewRequestID()
	}
	log := e.logger().With("request_id", meta.RequestID, "trigger", meta.Trigger, "message_id", meta.MessageID)
	if len(body) > MaxBodyBytes {
		return e.dropped(log, &Error{Status: http.StatusRequestEntityTooLarge, Message: "message larger than 1 MiB"})
	}
	req, derr := DecodeRequest(body)
	if derr != nil {
		return e.dropped(log, derr)
	}
	if req.IdempotencyKey == "" && attributes["idempotency_key"] != "" {
		// Checked like a key in the body: trimmed, bounded, printable.
		req.IdempotencyKey = attributes["idempotency_key"]
		if req, derr = req.Normalize(); derr != nil {
			return e.dropped(log, derr)
		}
	}
	res, err := e.Handle(ctx, req, meta)
	if err == nil {
		return MessageOutcome{Result: res}
	}
	if !err.Retryable() {
		return e.dropped(log, err)
	}
	log.Warn("message will be redelivered", "status", err.Status, "error", err.Error())
	return MessageOutcome{Result: res, Err: err, Retry: true}
}

func (e *Engine) dropped(log *slog.Logger, err *Error) MessageOutcome {
	log.Error("message dropped: it cannot succeed as sent", "status", err.Status, "field", err.Field, "reason", err.Error())
	return MessageOutcome{Err: err}
}
