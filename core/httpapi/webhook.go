package httpapi

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

	"github.com/onboard-dev/onboard/core/state"
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
	// Replays is the shared store where a signature is claimed on first use,
	// so a captured request replayed to another instance is refused too.
	// Without one (tests of a single instance) the claim is kept in memory.
	Replays state.Store

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
// caller learns nothing about which check failed, except ErrAuthUnavailable
// (a secret or the replay store could not be read), which is a 503.
func (a *WebhookAuth) Verify(ctx context.Context, h http.Header, body []byte) error {
	secret, err := a.secret(ctx)
	if err != nil {
		return fmt.Errorf("%w: reading the webhook secret: %w", ErrAuthUnavailable, err)
	}
	if secret == "" {
		if a.Insecure {
			return nil
		}
		return errors.New("no webhook secret configured (ONBOARD_WEBHOOK_SECRET); refusing every request")
	}
	if sig := h.Get(SignatureHeader); sig != "" {
		return a.verifySignature(ctx, secret, sig, body)
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

func (a *WebhookAuth) verifySignature(ctx context.Context, secret, header string, body []byte) error {
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
			return a.claimSignature(ctx, c, signedAt.Add(SignatureTolerance), now)
		}
	}
	return errors.New("signature does not match")
}

// claimSignature refuses a signature used before within its validity
// window: a captured request cannot be replayed, on this instance or any
// other. (The idempotency record alone does not stop a replay: after the
// person was deprovisioned, a replayed provision is a new intent.)
func (a *WebhookAuth) claimSignature(ctx context.Context, sig []byte, expires, now time.Time) error {
	if a.Replays == nil {
		return a.rememberSignature(hex.EncodeToString(sig), expires, now)
	}
	// The key is a hash, so the store never holds a usable signature; the
	// mark outlives the window in which the timestamp would be accepted.
	sum := sha256.Sum256(sig)
	_, err := a.Replays.Put(ctx, "signature/"+hex.EncodeToString(sum[:]), nil, 0, expires.Sub(now)+time.Minute)
	switch {
	case errors.Is(err, state.ErrConflict):
		return errors.New("replayed signature")
	case err != nil:
		return fmt.Errorf("%w: claiming the signature: %w", ErrAuthUnavailable, err)
	}
	return nil
}

// ErrAuthUnavailable marks a refusal that is not the caller's fault (the
// store could not be reached): the answer is 503, so the sender retries.
var ErrAuthUnavailable = errors.New("authentication could not be checked")

// rememberSignature is claimSignature for one instance without a store.
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
