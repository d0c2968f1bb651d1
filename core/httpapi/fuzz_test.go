package httpapi

import (
	"context"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzVerifySignature feeds the Onboard-Signature header parser anything.
// Forging is out of reach of a fuzzer, so what it checks is the parser's
// word: an accepted header carries the HMAC of this body at one of its own
// timestamps, and the same header is never accepted twice.
func FuzzVerifySignature(f *testing.F) {
	const secret = "fuzz-secret"
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"email":"ada@example.com"}`)
	f.Add(Sign(secret, now, body), body)
	f.Add(Sign(secret, now, body)+",v1=00", body)
	f.Add("v1=zz, t=1800000000 ,v1=", body)
	f.Add("t=1800000000,t=1,v1="+strings.Repeat("ab", 32), []byte("x"))
	f.Add(Sign(secret, now.Add(-10*time.Minute), body), body)
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		auth := &WebhookAuth{Secret: func(context.Context) (string, error) { return secret, nil }, Now: func() time.Time { return now }}
		h := http.Header{SignatureHeader: {header}}
		if err := auth.Verify(context.Background(), h, body); err != nil {
			return
		}
		signed := false
		for _, part := range strings.Split(header, ",") {
			if k, ts, _ := strings.Cut(strings.TrimSpace(part), "="); k == "t" {
				signed = signed || strings.Contains(strings.ToLower(header), hex.EncodeToString(signature(secret, ts, body)))
			}
		}
		if !signed {
			t.Fatalf("accepted %q, which holds no signature of this body", header)
		}
		if auth.Verify(context.Background(), h, body) == nil {
			t.Fatalf("accepted %q twice", header)
		}
	})
}
