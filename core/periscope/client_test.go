package periscope

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

func TestParseSites(t *testing.T) {
	good, err := ParseSites(`{"acme":"k-1234","beta":"k-5678"}`)
	if err != nil || good["acme"] != "k-1234" || good["beta"] != "k-5678" || len(good) != 2 {
		t.Fatalf("%v %v", good, err)
	}
	const secret = "SECRET-VALUE-77aa"
	for name, raw := range map[string]string{
		"not json":       `{"acme":` + secret,
		"a list":         `["` + secret + `"]`,
		"a number value": `{"acme":` + "12345678" + `}`,
		"null":           `null`,
		"empty":          `{}`,
		"colon in site":  `{"ac:me":"` + secret + `"}`,
		"blank key":      `{"acme":"  "}`,
		"newline in key": `{"acme":"` + secret + `\n"}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseSites(raw)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), SettingName) || strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "12345678") {
				t.Errorf("error %q must name %s and never a value", err, SettingName)
			}
		})
	}
}

func TestSiteKeysFollowRotation(t *testing.T) {
	value := `{"acme":"key-one-aaaa"}`
	var learned []string
	keys := NewSiteKeys(func(context.Context) (string, error) { return value, nil }, func(v ...string) { learned = append(learned, v...) })
	ctx := context.Background()
	if k, err := keys.Key(ctx, "acme"); err != nil || k != "key-one-aaaa" {
		t.Fatalf("%q %v", k, err)
	}
	if _, err := keys.Key(ctx, "beta"); err == nil || !strings.Contains(err.Error(), `"beta"`) {
		t.Errorf("missing site: %v", err)
	}
	value = `{"acme":"key-two-bbbb","beta":"key-three-cccc"}`
	if k, _ := keys.Key(ctx, "acme"); k != "key-two-bbbb" {
		t.Errorf("after rotation: %q", k)
	}
	if sites, _ := keys.Sites(ctx); !slices.Equal(sites, []string{"acme", "beta"}) {
		t.Errorf("sites %v", sites)
	}
	slices.Sort(learned)
	if !slices.Equal(learned, []string{"key-one-aaaa", "key-three-cccc", "key-two-bbbb"}) {
		t.Errorf("the redactor learned %v", learned)
	}
	printed := fmt.Sprintf("%v %+v %#v %s", keys, keys, keys, keys)
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "keys", keys)
	if strings.Contains(printed+logged.String(), "key-") {
		t.Errorf("keys printed: %s %s", printed, logged.String())
	}

	failing := NewSiteKeys(func(context.Context) (string, error) { return "", errors.New("secret store down") }, nil)
	if _, err := failing.Key(ctx, "acme"); err == nil || !strings.Contains(err.Error(), "reading "+SettingName) {
		t.Errorf("read failure: %v", err)
	}
}

func TestNormalizeBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                                      DefaultBaseURL,
		"https://api.periscopedata.com":         "https://api.periscopedata.com",
		"https://api.periscopedata.com/":        "https://api.periscopedata.com",
		"https://app.periscopedata.com/api/v1/": "https://app.periscopedata.com",
		" http://127.0.0.1:8080/proxy/api/v1 ":  "http://127.0.0.1:8080/proxy",
	} {
		if got, err := NormalizeBaseURL(in); err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"app.periscopedata.com", "ftp://x", "https://user:pw-secret@x.com", "https://x.com/?k=v"} {
		if _, err := NormalizeBaseURL(bad); err == nil || strings.Contains(err.Error(), "pw-secret") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestPickUserReadsEveryPlausibleShape(t *testing.T) {
	const email = "ada@example.com"
	for name, body := range map[string]string{
		"object":             `{"id":7,"email":"Ada@Example.com","first_name":"Ada","groups":["A","B"]}`,
		"list":               `[{"id":1,"email":"bob@example.com"},{"id":7,"email":"ada@example.com","groups":["A","B"]}]`,
		"wrapped":            `{"user":{"id":"7","email":"ada@example.com","groups":[{"id":1,"name":"A"},{"name":"B"}]}}`,
		"wrapped list":       `{"users":[{"id":7,"email":"ada@example.com","groups":["A","B"]}]}`,
		"data list, padding": "\n {\"data\":[{\"id\":7,\"email\":\"ada@example.com\",\"groups\":[\"A\",\"B\"]}]}",
	} {
		u, readable := pickUser([]byte(body), email)
		if !readable || u == nil || u.ID != "7" || !slices.Equal(u.Groups, []string{"A", "B"}) || !u.GroupsKnown {
			t.Errorf("%s: %+v", name, u)
		}
	}
	for name, tc := range map[string]struct {
		body     string
		readable bool
	}{
		"not in list":   {`[{"id":1,"email":"bob@example.com"}]`, true},
		"empty list":    {`{"users":[]}`, true},
		"someone else":  {`{"id":1,"email":"bob@example.com"}`, false},
		"empty":         {``, false},
		"not json":      {`ok`, false},
		"unknown shape": {`{"result":"ok"}`, false},
	} {
		if u, readable := pickUser([]byte(tc.body), email); u != nil || readable != tc.readable {
			t.Errorf("%s: found %+v, readable %v; want nobody, readable %v", name, u, readable, tc.readable)
		}
	}
	if u, _ := pickUser([]byte(`{"id":7,"email":"ada@example.com"}`), email); u == nil || u.GroupsKnown {
		t.Errorf("a user without groups in the answer: %+v, want GroupsKnown false", u)
	}
}

func TestMayAlreadyExist(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&APIError{StatusCode: 409}, true},
		{&APIError{StatusCode: 400, Message: "Email has already been taken"}, true},
		{&APIError{StatusCode: 422, Message: "user exists"}, true},
		{&APIError{StatusCode: 400, Message: "Email is invalid"}, false},
		{&APIError{StatusCode: 500, Message: "already broken"}, false},
		{errors.New("already"), false},
	} {
		if got := MayAlreadyExist(tc.err); got != tc.want {
			t.Errorf("%v: %v", tc.err, got)
		}
	}
}
