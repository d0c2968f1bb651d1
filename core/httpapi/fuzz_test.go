package httpapi

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/onboard-dev/onboard/core"
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

func FuzzParseBody(f *testing.F) {
	for _, seed := range []struct{ contentType, body string }{
		{"application/json", `{"email":"ada@example.com","name":"Ada Lovelace","profile":"analyst","attributes":{"region":"EMEA","level":3,"beta":true}}`},
		{"application/json", `[{"email":"a@example.com"},{"email":"bad"},{"email":"c@example.com","action":"deprovision"}]`},
		{"text/plain; charset=utf-8", `{"email":" Ada@Bücher.example ","first_name":"Ada","idempotency_key":"zap-1"}`},
		{"application/x-www-form-urlencoded", "email=ada%40example.com&name=Ada+Lovelace&attributes%5Bregion%5D=EMEA"},
		{"application/x-www-form-urlencoded", `{"email":"ada@example.com"}`},
		{"application/json", `{"email":"a@example.com","profile":"x","profile":"y"}`},
		{"application/json", `{"EMAIL":"a@example.com","attributes":{"a":{"b":1}}}`},
		{"", `{"email":"محمد@example.com","name":"محمد\u200cرضا"}`},
	} {
		f.Add(seed.contentType, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		items, _, err := ParseBody(contentType, body)
		if err != nil {
			if e := core.AsError(err); e.Status != http.StatusBadRequest && e.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("an unreadable body answers %d, want 400 or 413", e.Status)
			}
			if len(items) != 0 {
				t.Fatalf("an unreadable body still gave %d items", len(items))
			}
			return
		}
		for _, item := range items {
			if item.Err != nil {
				if e := core.AsError(item.Err); e.Status != http.StatusBadRequest || e.Message == "" {
					t.Fatalf("a refused item answers %d %q, want 400 with a reason", e.Status, e.Message)
				}
				continue
			}
			checkAcceptedRequest(t, item.Request)
		}
	})
}

// checkAcceptedRequest holds what the engine relies on for every request a
// decoder lets through: it is already canonical, survives a JSON round trip
// unchanged, and carries no hidden text.
func checkAcceptedRequest(t *testing.T, req core.Request) {
	t.Helper()
	again, err := req.Normalize()
	if err != nil {
		t.Fatalf("an accepted request fails normalising again: %v (%+v)", err, req)
	}
	if !reflect.DeepEqual(again, req) {
		t.Fatalf("normalising is not stable:\n first %+v\nsecond %+v", req, again)
	}
	wire, merr := json.Marshal(req)
	if merr != nil {
		t.Fatal(merr)
	}
	decoded, derr := core.DecodeRequest(wire)
	if derr != nil {
		t.Fatalf("an accepted request, encoded as JSON, is refused: %v (%s)", derr, wire)
	}
	if !reflect.DeepEqual(decoded, req) {
		t.Fatalf("JSON round trip changes the request:\n before %+v\n  after %+v", req, decoded)
	}
	fields := []string{req.Email, req.Name, req.FirstName, req.LastName, req.Profile, req.ExternalUserID, req.IdempotencyKey}
	for k, v := range req.Attributes {
		fields = append(fields, k, v)
	}
	for _, v := range fields {
		if strings.IndexFunc(v, unicode.IsControl) >= 0 {
			t.Fatalf("accepted text %q holds a control character", v)
		}
	}
	if strings.ContainsAny(req.Email, "\u200b\u200c\u200d\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff") {
		t.Fatalf("accepted email %q holds a format character", req.Email)
	}
}
