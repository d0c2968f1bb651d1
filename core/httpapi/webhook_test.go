package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/filestore"
)

func TestWebhookAuth(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"email":"ada@example.com"}`)
	const secret = "whsec-test-0123456789"
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	cases := []struct {
		name   string
		secret string
		header http.Header
		body   []byte
		ok     bool
	}{
		{"bearer", secret, hdr("Authorization", "Bearer "+secret), body, true},
		{"bearer lower-case scheme", secret, hdr("Authorization", "bearer "+secret), body, true},
		{"wrong bearer", secret, hdr("Authorization", "Bearer nope"), body, false},
		{"bearer prefix of secret", secret, hdr("Authorization", "Bearer "+secret[:10]), body, false},
		{"basic scheme", secret, hdr("Authorization", "Basic "+secret), body, false},
		{"nothing", secret, hdr(), body, false},
		{"signature", secret, hdr(SignatureHeader, Sign(secret, now, body)), body, true},
		{"signature among rotated", secret, hdr(SignatureHeader, Sign(secret, now, body)+",v1=00ff"), body, true},
		{"signature of other body", secret, hdr(SignatureHeader, Sign(secret, now, []byte("{}"))), body, false},
		{"signature by other secret", secret, hdr(SignatureHeader, Sign("other-secret", now, body)), body, false},
		{"stale signature", secret, hdr(SignatureHeader, Sign(secret, now.Add(-6*time.Minute), body)), body, false},
		{"future signature", secret, hdr(SignatureHeader, Sign(secret, now.Add(6*time.Minute), body)), body, false},
		{"signature at tolerance edge", secret, hdr(SignatureHeader, Sign(secret, now.Add(-4*time.Minute), body)), body, true},
		{"malformed signature", secret, hdr(SignatureHeader, "t=abc,v1=zz"), body, false},
		{"no secret configured", "", hdr("Authorization", "Bearer "), body, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := &WebhookAuth{Secret: staticSecret(tc.secret), Now: func() time.Time { return now }}
			err := a.Verify(context.Background(), tc.header, tc.body)
			if (err == nil) != tc.ok {
				t.Errorf("Verify = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestWebhookAuthRefusesReplay(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"email":"ada@example.com"}`)
	a := &WebhookAuth{Secret: staticSecret("s3cret-value"), Now: func() time.Time { return now }}
	h := http.Header{SignatureHeader: {Sign("s3cret-value", now, body)}}
	if err := a.Verify(context.Background(), h, body); err != nil {
		t.Fatalf("first delivery: %v", err)
	}
	if err := a.Verify(context.Background(), h, body); err == nil {
		t.Fatal("a replayed signature was accepted")
	}
	// Once past the tolerance it is refused as stale anyway, and forgotten.
	now = now.Add(SignatureTolerance + time.Second)
	if err := a.Verify(context.Background(), h, body); err == nil {
		t.Fatal("a stale signature was accepted")
	}
	if len(a.seen) != 0 {
		t.Errorf("expired signatures kept: %d", len(a.seen))
	}
}

func TestWebhookAuthInsecureOnlyWhenAsked(t *testing.T) {
	if err := (&WebhookAuth{}).Verify(context.Background(), http.Header{}, nil); err == nil {
		t.Error("no secret and not insecure must refuse")
	}
	if err := (&WebhookAuth{Insecure: true}).Verify(context.Background(), http.Header{}, nil); err != nil {
		t.Errorf("ONBOARD_INSECURE_NO_AUTH must allow: %v", err)
	}
}

// TestSignatureVector pins the algorithm so scripts/ and other senders can
// check their implementation against the same numbers.
func TestSignatureVector(t *testing.T) {
	got := Sign("test-secret", time.Unix(1700000000, 0), []byte(`{"email":"ada@example.com"}`))
	const want = "t=1700000000,v1=" + signatureVectorHex
	if got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

// signatureVectorHex was computed independently with
// printf '%s' '1700000000.{"email":"ada@example.com"}' | openssl dgst -sha256 -hmac test-secret
const signatureVectorHex = "218673b4fee630d3744eb7a41349b5a713d887445faf18f3e1475617feeb143e"

func staticSecret(v string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return v, nil }
}

// A signature is claimed in the shared store: a captured request replayed
// to another instance is refused there too.
func TestSignatureReplayIsRefusedOnEveryInstance(t *testing.T) {
	store, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	body := []byte(`{"email":"ada@example.com"}`)
	h := http.Header{SignatureHeader: {Sign("s3cret-value", time.Now(), body)}}
	first := &WebhookAuth{Secret: staticSecret("s3cret-value"), Replays: store}
	second := &WebhookAuth{Secret: staticSecret("s3cret-value"), Replays: store}
	if err := first.Verify(context.Background(), h, body); err != nil {
		t.Fatal(err)
	}
	if err := second.Verify(context.Background(), h, body); err == nil || !strings.Contains(err.Error(), "replayed") {
		t.Errorf("replay to another instance: %v", err)
	}
	// A fresh signature of the same body is a new request.
	h2 := http.Header{SignatureHeader: {Sign("s3cret-value", time.Now().Add(time.Second), body)}}
	if err := second.Verify(context.Background(), h2, body); err != nil {
		t.Errorf("a fresh signature: %v", err)
	}
	// A store that cannot be reached is not the caller's fault.
	down := &WebhookAuth{Secret: staticSecret("s3cret-value"), Replays: unreachableStore{store}}
	h3 := http.Header{SignatureHeader: {Sign("s3cret-value", time.Now().Add(2*time.Second), body)}}
	if err := down.Verify(context.Background(), h3, body); !errors.Is(err, ErrAuthUnavailable) {
		t.Errorf("with the store closed: %v, want ErrAuthUnavailable", err)
	}
}

type unreachableStore struct{ state.Store }

func (unreachableStore) Put(context.Context, string, []byte, int64, time.Duration) (int64, error) {
	return 0, errors.New("connection refused")
}
