package core

import (
	"encoding/json"
	"strings"
	"testing"
)

// A request that breaks a rule is refused naming the field at fault.
func TestDecodeRequestRejectsBadInput(t *testing.T) {
	cases := []struct {
		name, body string
		status     int
		field      string
	}{
		{"not json", "{email:", 400, ""},
		{"trailing data", `{"email":"a@example.com"} {}`, 400, ""},
		{"unknown field", `{"email":"a@example.com","roles":["Admin"]}`, 400, "roles"},
		{"email missing", `{"name":"Ada"}`, 400, "email"},
		{"email with display name", `{"email":"Ada <ada@example.com>"}`, 400, "email"},
		{"email in angle brackets", `{"email":"<ada@example.com>"}`, 400, "email"},
		{"two emails", `{"email":"ada@example.com, eve@example.com"}`, 400, "email"},
		{"email with CRLF", `{"email":"ada@example.com\r\nBcc: eve@example.com"}`, 400, "email"},
		{"email without domain dot", `{"email":"ada@localhost"}`, 400, "email"},
		{"email is a number", `{"email":42}`, 400, "email"},
		{"bad action", `{"email":"a@example.com","action":"nuke"}`, 400, "action"},
		{"attribute object", `{"email":"a@example.com","attributes":{"region":{"x":1}}}`, 400, "attributes.region"},
		{"attributes not object", `{"email":"a@example.com","attributes":["x"]}`, 400, "attributes"},
		{"control char in name", `{"email":"a@example.com","name":"Ada\u0007"}`, 400, "name"},
		{"overlong name", `{"email":"a@example.com","name":"` + strings.Repeat("x", 300) + `"}`, 400, "name"},
		{"key in another case", `{"email":"a@example.com","Profile":"admin"}`, 400, "Profile"},
		{"key in upper case only", `{"EMAIL":"a@example.com"}`, 400, "EMAIL"},
		{"duplicate key", `{"email":"a@example.com","profile":"analyst","profile":"admin"}`, 400, "profile"},
		{"duplicate attribute", `{"email":"a@example.com","attributes":{"region":"EMEA","region":"US"}}`, 400, "attributes.region"},
		{"zero-width space in name", `{"email":"a@example.com","name":"Ada\u200b Lovelace"}`, 400, "name"},
		{"bidi override in last name", `{"email":"a@example.com","last_name":"\u202egnp.exe"}`, 400, "last_name"},
		{"BOM in profile", `{"email":"a@example.com","profile":"\ufeffanalyst"}`, 400, "profile"},
		{"line separator in name", `{"email":"a@example.com","name":"Ada\u2028Lovelace"}`, 400, "name"},
		{"joiner between Latin letters", `{"email":"a@example.com","name":"Ad\u200da"}`, 400, "name"},
		{"URL in name", `{"email":"a@example.com","name":"Ada https://evil.example/reset"}`, 400, "name"},
		{"www in first name", `{"email":"a@example.com","first_name":"www.evil"}`, 400, "first_name"},
		{"domain in name", `{"email":"a@example.com","name":"Visit evil.com now"}`, 400, "name"},
		{"address in name", `{"email":"a@example.com","name":"ada@evil.io"}`, 400, "name"},
		{"zero-width in local part", `{"email":"ad\u200ba@example.com"}`, 400, "email"},
		{"bidi in local part", `{"email":"ada\u202e@example.com"}`, 400, "email"},
		{"Cyrillic a in Latin local part", `{"email":"\u0430da@example.com"}`, 400, "email"},
		{"empty punycode label", `{"email":"a@xn--.example.com"}`, 400, "email"},
		{"invalid punycode label", `{"email":"a@xn--zz.example.com"}`, 400, "email"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRequest([]byte(tc.body))
			if err == nil {
				t.Fatalf("accepted %q", tc.body)
			}
			if e := AsError(err); e.Status != tc.status || e.Field != tc.field {
				t.Errorf("got status %d field %q (%s), want %d %q", e.Status, e.Field, e.Message, tc.status, tc.field)
			}
		})
	}
}

func TestDecodeRequestNormalises(t *testing.T) {
	r, err := DecodeRequest([]byte(`{"email":"  Ada.L@EXAMPLE.Com ","name":"Ada King Lovelace","attributes":{"region":"EMEA","level":3,"beta":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Email != "Ada.L@example.com" {
		t.Errorf("email = %q: want trimmed with the domain lower-cased", r.Email)
	}
	if r.FirstName != "Ada" || r.LastName != "King Lovelace" {
		t.Errorf("name split = %q/%q", r.FirstName, r.LastName)
	}
	if r.Action != ActionProvision {
		t.Errorf("action = %q, want provision by default", r.Action)
	}
	want := map[string]string{"region": "EMEA", "level": "3", "beta": "true"}
	for k, v := range want {
		if r.Attributes[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, r.Attributes[k], v)
		}
	}
}

// Real names that the checks against hidden text and links must let through.
func TestDecodeRequestAcceptsRealNames(t *testing.T) {
	for _, name := range []string{
		"J.R.R. Tolkien", "St.John Smith", "Mary-Jane O'Neil", "Zoë Ångström", "José María",
		"Ph.D. Candidate", "Ngũgĩ wa Thiong'o", "محمد\u200cرضا", "Ланселот Озёрный", "山田 太郎",
	} {
		body, _ := json.Marshal(map[string]string{"email": "a@example.com", "name": name})
		if _, err := DecodeRequest(body); err != nil {
			t.Errorf("name %q refused: %v", name, err)
		}
	}
	for _, email := range []string{"ada.lovelace+looker@example.com", "иван@пример.рф", "jan.de.vries@example.nl", "o'neil@example.com"} {
		if _, err := NormalizeEmail(email); err != nil {
			t.Errorf("email %q refused: %v", email, err)
		}
	}
}

func TestDecodeRequestKeepsExplicitNames(t *testing.T) {
	r, err := DecodeRequest([]byte(`{"email":"a@example.com","name":"X Y","first_name":"Ada","last_name":"Lovelace"}`))
	if err != nil || r.FirstName != "Ada" || r.LastName != "Lovelace" {
		t.Errorf("got %q %q (%v): first_name/last_name must win over name", r.FirstName, r.LastName, err)
	}
}

func TestDecodeRequestIDNADomain(t *testing.T) {
	r, err := DecodeRequest([]byte(`{"email":"jose@Bücher.example"}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Email != "jose@xn--bcher-kva.example" {
		t.Errorf("email = %q, want the IDNA ASCII domain", r.Email)
	}
}

func TestFingerprintIgnoresKeyAndEmailCase(t *testing.T) {
	a, _ := Request{Email: "Ada@example.com", Name: "Ada L", IdempotencyKey: "k1"}.Normalize()
	b, _ := Request{Email: "ada@EXAMPLE.com", FirstName: "Ada", LastName: "L", IdempotencyKey: "k2"}.Normalize()
	c, _ := Request{Email: "ada@example.com", FirstName: "Ada", LastName: "M"}.Normalize()
	if a.Fingerprint() != b.Fingerprint() {
		t.Error("same person and meaning must fingerprint alike")
	}
	if a.Fingerprint() == c.Fingerprint() {
		t.Error("different names must fingerprint differently")
	}
}
