package core

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseBodyRejectsBadInput(t *testing.T) {
	cases := []struct {
		name, contentType, body string
		status                  int
		field                   string
	}{
		{"empty body", "application/json", "", 400, ""},
		{"not json", "application/json", "{email:", 400, ""},
		{"trailing data", "application/json", `{"email":"a@example.com"} {}`, 400, ""},
		{"unknown field", "application/json", `{"email":"a@example.com","roles":["Admin"]}`, 400, "roles"},
		{"email missing", "application/json", `{"name":"Ada"}`, 400, "email"},
		{"email with display name", "application/json", `{"email":"Ada <ada@example.com>"}`, 400, "email"},
		{"email in angle brackets", "application/json", `{"email":"<ada@example.com>"}`, 400, "email"},
		{"two emails", "application/json", `{"email":"ada@example.com, eve@example.com"}`, 400, "email"},
		{"email with CRLF", "application/json", `{"email":"ada@example.com\r\nBcc: eve@example.com"}`, 400, "email"},
		{"email without domain dot", "application/json", `{"email":"ada@localhost"}`, 400, "email"},
		{"email is a number", "application/json", `{"email":42}`, 400, "email"},
		{"bad action", "application/json", `{"email":"a@example.com","action":"nuke"}`, 400, "action"},
		{"attribute object", "application/json", `{"email":"a@example.com","attributes":{"region":{"x":1}}}`, 400, "attributes.region"},
		{"attributes not object", "application/json", `{"email":"a@example.com","attributes":["x"]}`, 400, "attributes"},
		{"control char in name", "application/json", `{"email":"a@example.com","name":"Ada\u0007"}`, 400, "name"},
		{"overlong name", "application/json", `{"email":"a@example.com","name":"` + strings.Repeat("x", 300) + `"}`, 400, "name"},
		{"key in another case", "application/json", `{"email":"a@example.com","Profile":"admin"}`, 400, "Profile"},
		{"key in upper case only", "application/json", `{"EMAIL":"a@example.com"}`, 400, "EMAIL"},
		{"duplicate key", "application/json", `{"email":"a@example.com","profile":"analyst","profile":"admin"}`, 400, "profile"},
		{"duplicate attribute", "application/json", `{"email":"a@example.com","attributes":{"region":"EMEA","region":"US"}}`, 400, "attributes.region"},
		{"zero-width space in name", "application/json", `{"email":"a@example.com","name":"Ada\u200b Lovelace"}`, 400, "name"},
		{"bidi override in last name", "application/json", `{"email":"a@example.com","last_name":"\u202egnp.exe"}`, 400, "last_name"},
		{"BOM in profile", "application/json", `{"email":"a@example.com","profile":"\ufeffanalyst"}`, 400, "profile"},
		{"line separator in name", "application/json", `{"email":"a@example.com","name":"Ada\u2028Lovelace"}`, 400, "name"},
		{"joiner between Latin letters", "application/json", `{"email":"a@example.com","name":"Ad\u200da"}`, 400, "name"},
		{"URL in name", "application/json", `{"email":"a@example.com","name":"Ada https://evil.example/reset"}`, 400, "name"},
		{"www in first name", "application/json", `{"email":"a@example.com","first_name":"www.evil"}`, 400, "first_name"},
		{"domain in name", "application/json", `{"email":"a@example.com","name":"Visit evil.com now"}`, 400, "name"},
		{"address in name", "application/json", `{"email":"a@example.com","name":"ada@evil.io"}`, 400, "name"},
		{"zero-width in local part", "application/json", `{"email":"ad\u200ba@example.com"}`, 400, "email"},
		{"bidi in local part", "application/json", `{"email":"ada\u202e@example.com"}`, 400, "email"},
		{"Cyrillic a in Latin local part", "application/json", `{"email":"\u0430da@example.com"}`, 400, "email"},
		{"empty punycode label", "application/json", `{"email":"a@xn--.example.com"}`, 400, "email"},
		{"invalid punycode label", "application/json", `{"email":"a@xn--zz.example.com"}`, 400, "email"},
		{"unsupported type", "application/xml", `<email/>`, 400, ""},
		{"form unknown field", "application/x-www-form-urlencoded", "email=a%40example.com&roles=Admin", 400, "roles"},
		{"form repeated field", "application/x-www-form-urlencoded", "email=a%40example.com&email=b%40example.com", 400, "email"},
		{"empty bulk", "application/json", `[]`, 400, ""},
		{"too large", "application/json", `{"email":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, 413, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			items, _, err := ParseBody(tc.contentType, []byte(tc.body))
			if err == nil && len(items) == 1 {
				err = items[0].Err
			}
			if err == nil {
				t.Fatalf("accepted %q", tc.body)
			}
			if err.Status != tc.status || err.Field != tc.field {
				t.Errorf("got status %d field %q (%s), want %d %q", err.Status, err.Field, err.Message, tc.status, tc.field)
			}
		})
	}
}

func TestParseBodyNormalises(t *testing.T) {
	items, bulk, err := ParseBody("application/json; charset=utf-8",
		[]byte(`{"email":"  Ada.L@EXAMPLE.Com ","name":"Ada King Lovelace","attributes":{"region":"EMEA","level":3,"beta":true}}`))
	if err != nil || bulk || items[0].Err != nil {
		t.Fatalf("parse: %v %v %v", err, bulk, items[0].Err)
	}
	r := items[0].Request
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
func TestParseBodyAcceptsRealNames(t *testing.T) {
	for _, name := range []string{
		"J.R.R. Tolkien", "St.John Smith", "Mary-Jane O'Neil", "Zoë Ångström", "José María",
		"Ph.D. Candidate", "Ngũgĩ wa Thiong'o", "محمد\u200cرضا", "Ланселот Озёрный", "山田 太郎",
	} {
		body, _ := json.Marshal(map[string]string{"email": "a@example.com", "name": name})
		items, _, err := ParseBody("application/json", body)
		if err != nil || items[0].Err != nil {
			t.Errorf("name %q refused: %v %v", name, err, items[0].Err)
		}
	}
	for _, email := range []string{"ada.lovelace+looker@example.com", "иван@пример.рф", "jan.de.vries@example.nl", "o'neil@example.com"} {
		if _, err := NormalizeEmail(email); err != nil {
			t.Errorf("email %q refused: %v", email, err)
		}
	}
}

func TestParseBodyKeepsExplicitNames(t *testing.T) {
	items, _, _ := ParseBody("", []byte(`{"email":"a@example.com","name":"X Y","first_name":"Ada","last_name":"Lovelace"}`))
	if r := items[0].Request; r.FirstName != "Ada" || r.LastName != "Lovelace" {
		t.Errorf("got %q %q: first_name/last_name must win over name", r.FirstName, r.LastName)
	}
}

func TestParseBodyIDNADomain(t *testing.T) {
	items, _, _ := ParseBody("", []byte(`{"email":"jose@Bücher.example"}`))
	if items[0].Err != nil {
		t.Fatal(items[0].Err)
	}
	if got := items[0].Request.Email; got != "jose@xn--bcher-kva.example" {
		t.Errorf("email = %q, want the IDNA ASCII domain", got)
	}
}

func TestParseBodyForm(t *testing.T) {
	items, bulk, err := ParseBody("application/x-www-form-urlencoded",
		[]byte("email=ada%40example.com&name=Ada+Lovelace&attributes.region=EMEA&attributes%5Bteam%5D=core&action=deprovision"))
	if err != nil || bulk || items[0].Err != nil {
		t.Fatalf("parse: %v %v", err, items[0].Err)
	}
	r := items[0].Request
	if r.Email != "ada@example.com" || r.FirstName != "Ada" || r.Action != ActionDeprovision ||
		r.Attributes["region"] != "EMEA" || r.Attributes["team"] != "core" {
		t.Errorf("form parsed as %+v", r)
	}
}

func TestParseBodyJSONSentAsForm(t *testing.T) {
	items, _, err := ParseBody("application/x-www-form-urlencoded", []byte(`{"email":"ada@example.com"}`))
	if err != nil || items[0].Err != nil || items[0].Request.Email != "ada@example.com" {
		t.Fatalf("curl -d style JSON: %v %v", err, items[0].Err)
	}
}

func TestParseBodyBulkIsPerItem(t *testing.T) {
	items, bulk, err := ParseBody("application/json", []byte(`[{"email":"a@example.com"},{"email":"bad"},{"email":"c@example.com","x":1}]`))
	if err != nil || !bulk || len(items) != 3 {
		t.Fatalf("bulk parse: %v bulk=%v n=%d", err, bulk, len(items))
	}
	if items[0].Err != nil || items[1].Err == nil || items[1].Err.Field != "email" || items[2].Err == nil || items[2].Err.Field != "x" {
		t.Errorf("per-item errors wrong: %v | %v | %v", items[0].Err, items[1].Err, items[2].Err)
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
