package core

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
const SignatureHeader = "Onboard-Signature"

// SignatureTolerance is how far a signature's timestamp may be from now.
const SignatureTolerance = 5 * time.Minute

// WebhookAuth checks HTTP callers. With no secret it refuses everyone unless
// Insecure is set, which only a local run may do.
type WebhookAuth struct {
	// Secret is read on every request, so a rotated secret is honoured as
	// soon as the secret cache re-reads it.
	Secret   func(context.Context) (string, error)
	Insecure bool
	Now      func() time.Time

	mu   sync.Mutex
	seen map[string]time.Time // signature → when it stops being acceptable anyway
}

// Sign computes the Onboard-Signature header value for a body at time t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(signature(secret, ts, body))
}

func signature(secret, ts string, body []byte) []byte {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}

// Verify returns nil when the request carries the secret as a bearer token or
// a fresh, unreplayed signature of this exact body. The reason for a refusal is
// returned for logging only: callers answer a bare 401 whatever it is, so a
// caller learns nothing about which check failed.
func (a *WebhookAuth) Verify(ctx context.Context, h http.Header, body []byte) error {
	secret, err := a.secret(ctx)
	if err != nil {
		return fmt.Errorf("reading the webhook secret: %w", err)
	}
	if secret == "" {
		if a.Insecure {
			return nil
		}
		return errors.New("no webhook secret configured (ONBOARD_WEBHOOK_SECRET); refusing every request")
	}
	if sig := h.Get(SignatureHeader); sig != "" {
		return a.verifySignature(secret, sig, body)
	}
	auth := h.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return errors.New("no bearer token or signature")
	}
	// Hashing first makes the comparison constant-time in the length too.
	want := sha256.Sum256([]byte(secret))
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return errors.New("wrong bearer token")
	}
	return nil
}

func (a *WebhookAuth) verifySignature(secret, header string, body []byte) error {
	var ts string
	var candidates [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			// Several v1 values let a sender sign with old and new secrets during rotation.
			if b, err := hex.DecodeString(v); err == nil {
				candidates = append(candidates, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(candidates) == 0 {
		return errors.New("malformed signature header")
	}
	now := a.now()
	a.forgetExpired(now)
	signedAt := time.Unix(sec, 0)
	if d := now.Sub(signedAt); d > SignatureTolerance || d < -SignatureTolerance {
		return errors.New("signature timestamp outside the 5-minute tolerance")
	}
	want := signature(secret, ts, body)
	for _, c := range candidates {
		if hmac.Equal(want, c) {
			return a.rememberSignature(hex.EncodeToString(c), signedAt.Add(SignatureTolerance), now)
		}
	}
	return errors.New("signature does not match")
}

// rememberSignature refuses a signature seen before within its validity
// window: a captured request cannot be replayed. The memory is per instance;
// the idempotency store makes a replay that lands elsewhere harmless anyway.
func (a *WebhookAuth) rememberSignature(sig string, expires, now time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen == nil {
		a.seen = map[string]time.Time{}
	}
	if _, dup := a.seen[sig]; dup {
		return errors.New("replayed signature")
	}
	a.seen[sig] = expires
	return nil
}

func (a *WebhookAuth) secret(ctx context.Context) (string, error) {
	if a.Secret == nil {
		return "", nil
	}
	return a.Secret(ctx)
}

func (a *WebhookAuth) forgetExpired(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for s, exp := range a.seen {
		if now.After(exp) {
			delete(a.seen, s)
		}
	}
}

func (a *WebhookAuth) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}
