package core

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode"
)

// The fuzz targets of the decoders core owns. `make fuzz` runs each for a
// bounded time; `go test` replays the seeds below and testdata/fuzz.

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
			if err.Status != http.StatusBadRequest && err.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("an unreadable body answers %d, want 400 or 413", err.Status)
			}
			if len(items) != 0 {
				t.Fatalf("an unreadable body still gave %d items", len(items))
			}
			return
		}
		for _, item := range items {
			if item.Err != nil {
				if item.Err.Status != http.StatusBadRequest || item.Err.Message == "" {
					t.Fatalf("a refused item answers %d %q, want 400 with a reason", item.Err.Status, item.Err.Message)
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
func checkAcceptedRequest(t *testing.T, req Request) {
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
	decoded, derr := DecodeRequest(wire)
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

func FuzzNormalizeEmail(f *testing.F) {
	for _, seed := range []string{
		"ada@example.com", " Ada.L@EXAMPLE.Com ", "jose@Bücher.example", "a@xn--.example.com", "a@xn--bcher-kva.example",
		"Ada <ada@example.com>", "ad\u200ba@example.com", "\u0430da@example.com", "иван@пример.рф", "a@b", "a@-b.com",
		`"a b"@example.com`, "a@example.com.", "a@@example.com",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		email, err := NormalizeEmail(raw)
		if err != nil {
			if err.Field != "email" {
				t.Fatalf("refusal names field %q, want email", err.Field)
			}
			return
		}
		again, err := NormalizeEmail(email)
		if err != nil || again != email {
			t.Fatalf("NormalizeEmail(%q) = %q, but normalising that gives %q, %v", raw, email, again, err)
		}
		if strings.Count(email, "@") != 1 {
			t.Fatalf("accepted %q has %d @", email, strings.Count(email, "@"))
		}
		domain := EmailDomain(email)
		if !validHostname(domain) || domain != strings.ToLower(domain) {
			t.Fatalf("accepted %q has domain %q, not a lower-case ASCII hostname", email, domain)
		}
	})
}
