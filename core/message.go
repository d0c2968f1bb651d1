package core

import (
	"net/http"
	"strings"
)

// DecodeMessage decodes one message body (the request schema, one
// object). attributes are the platform's message attributes; an
// "idempotency_key" attribute is used when the body carries none.
func DecodeMessage(body []byte, attributes map[string]string) (Request, error) {
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
