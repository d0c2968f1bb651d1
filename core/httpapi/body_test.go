package httpapi

import (
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/core"
)

func TestParseBodyRejectsBadInput(t *testing.T) {
	cases := []struct {
		name, contentType, body string
		status                  int
		field                   string
	}{
		{"empty body", "application/json", "", 400, ""},
		{"unreadable content type", "application/json; charset", `{"email":"a@example.com"}`, 400, ""},
		{"unsupported type", "application/xml", `<email/>`, 400, ""},
		{"a refused request", "application/json", `{"email":"a@example.com","roles":["Admin"]}`, 400, "roles"},
		{"form unknown field", "application/x-www-form-urlencoded", "email=a%40example.com&roles=Admin", 400, "roles"},
		{"form repeated field", "application/x-www-form-urlencoded", "email=a%40example.com&email=b%40example.com", 400, "email"},
		{"form bad email", "application/x-www-form-urlencoded", "email=ada", 400, "email"},
		{"empty bulk", "application/json", `[]`, 400, ""},
		{"malformed bulk", "application/json", `[{"email":"a@example.com"},]`, 400, ""},
		{"bulk with trailing data", "application/json", `[{"email":"a@example.com"}] []`, 400, ""},
		{"bulk too long", "application/json", "[" + strings.Repeat(`{"email":"a@example.com"},`, MaxBulkRequests) + `{"email":"a@example.com"}]`, 400, ""},
		{"too large", "application/json", `{"email":"` + strings.Repeat("a", core.MaxBodyBytes) + `"}`, 413, ""},
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
			if e := core.AsError(err); e.Status != tc.status || e.Field != tc.field {
				t.Errorf("got status %d field %q (%s), want %d %q", e.Status, e.Field, e.Message, tc.status, tc.field)
			}
		})
	}
}

func TestParseBodyJSON(t *testing.T) {
	items, bulk, err := ParseBody("application/json; charset=utf-8", []byte(`{"email":"  Ada.L@EXAMPLE.Com ","name":"Ada Lovelace"}`))
	if err != nil || bulk || len(items) != 1 || items[0].Err != nil {
		t.Fatalf("parse: %v bulk=%v %+v", err, bulk, items)
	}
	if r := items[0].Request; r.Email != "Ada.L@example.com" || r.FirstName != "Ada" {
		t.Errorf("decoded as %+v: want it normalised", r)
	}
}

func TestParseBodyForm(t *testing.T) {
	items, bulk, err := ParseBody("application/x-www-form-urlencoded",
		[]byte("email=ada%40example.com&name=Ada+Lovelace&attributes.region=EMEA&attributes%5Bteam%5D=core&action=deprovision"))
	if err != nil || bulk || items[0].Err != nil {
		t.Fatalf("parse: %v %v", err, items[0].Err)
	}
	r := items[0].Request
	if r.Email != "ada@example.com" || r.FirstName != "Ada" || r.Action != core.ActionDeprovision ||
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
	field := func(err error) string { return core.AsError(err).Field }
	if items[0].Err != nil || items[1].Err == nil || field(items[1].Err) != "email" || items[2].Err == nil || field(items[2].Err) != "x" {
		t.Errorf("per-item errors wrong: %v | %v | %v", items[0].Err, items[1].Err, items[2].Err)
	}
}
