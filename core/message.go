package core

import (
	"context"
	"net/http"
	"strings"
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

// DecodeMessage decodes one message body (the request schema, one
// object). attributes are the platform's message attributes; an
// "idempotency_key" attribute is used when the body carries none.
func DecodeMessage(body []byte, attributes map[string]string) (Request, *Error) {
	if len(body) > MaxBodyBytes {
		return Request{}, &Error{Status: http.StatusRequestEntityTooLarge, Message: "message larger than 1 MiB"}
	}
	req, err := DecodeRequest(body)
	if err != nil {
		return Request{}, err
	}
	if req.IdempotencyKey == "" && attributes["idempotency_key"] != "" {
		// Checked like a key in the body: trimmed, bounded, printable.
		req.IdempotencyKey = attributes["idempotency_key"]
		return req.Normalize()
	}
	return req, nil
}

// CleanMessageID is a platform's message id fit to be the fallback
// idempotency key: trimmed, and "" when it is not short printable text
// (the request's fingerprint keys it then).
func CleanMessageID(id string) string {
	id = strings.TrimSpace(id)
	if checkText("message_id", id) != nil {
		return ""
	}
	return id
}

// HandleMessage decodes and runs one message.
func (e *Engine) HandleMessage(ctx context.Context, body []byte, attributes map[string]string, meta Meta) MessageOutcome {
	if meta.RequestID == "" {
		meta.RequestID = NewRequestID()
	}
	req, err := DecodeMessage(body, attributes)
	o := e.RunBatch(ctx, []BatchItem{{Request: req, Err: err, Meta: meta}}, 1, nil)[0]
	return e.MessageOutcome(meta, o)
}

// MessageOutcome logs what becomes of a message that ran in a batch, and
// says whether to deliver it again.
func (e *Engine) MessageOutcome(meta Meta, o BatchOutcome) MessageOutcome {
	log := e.logger().With("request_id", meta.RequestID, "trigger", meta.Trigger, "message_id", meta.MessageID)
	switch {
	case o.Err == nil:
	case o.Redeliver:
		log.Warn("message will be redelivered", "status", o.Err.Status, "error", o.Err.Error())
	default:
		log.Error("message dropped: it cannot succeed as sent", "status", o.Err.Status, "field", o.Err.Field, "reason", o.Err.Error())
	}
	return MessageOutcome{Result: o.Result, Err: o.Err, Retry: o.Redeliver}
}
