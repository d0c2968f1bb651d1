package looker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core/internal/httpretry"
	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/internal/fakehttp"
	"github.com/onboard-dev/onboard/internal/leakcheck"
)

// newTestClient returns a client for a spec-validating fake with fast retries.
func newTestClient(t *testing.T, opts lookertest.Options) (*Client, *lookertest.Server) {
	t.Helper()
	srv := lookertest.NewTestServer(t, opts)
	return New(Config{
		BaseURL: srv.URL, ClientID: lookertest.DefaultClientID, ClientSecret: lookertest.DefaultClientSecret,
		VerifySSL: true, Timeout: 5 * time.Second, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Second,
	}, nil), srv
}

func TestLoginUsesFormBodyOnce(t *testing.T) {
	c, srv := newTestClient(t, lookertest.Options{})
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Roles(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := srv.Count("POST", "/login"); n != 1 {
		t.Errorf("%d logins for 10 concurrent calls, want 1", n)
	}
	for _, r := range srv.Requests() {
		if r.Path == "/login" && (r.Query.Has("client_secret") || !strings.Contains(string(r.Body), "client_secret=")) {
			t.Errorf("credentials must travel in the form body, not the query: %+v", r)
		}
	}
}

func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	// Looker says the token lives 90 s; the client must treat it as stale
	// after 30 s (60 s early), so a call at +45 s logs in again.
	c, srv := newTestClient(t, lookertest.Options{TokenTTL: 90 * time.Second, Now: clock})
	if _, err := c.Roles(context.Background()); err != nil {
		t.Fatal(err)
	}
	// oauth2 measures expiry on the real clock; move the token's expiry instead of waiting.
	c.mu.Lock()
	tok, _ := c.tokens.Token()
	tok.Expiry = time.Now().Add(45 * time.Second)
	c.mu.Unlock()
	if _, err := c.Roles(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := srv.Count("POST", "/login"); n != 2 {
		t.Errorf("%d logins, want 2: a token within 60 s of expiry must be refreshed", n)
	}
}

func TestReloginOnceOn401(t *testing.T) {
	c, srv := newTestClient(t, lookertest.Options{})
	ctx := context.Background()
	if _, err := c.Roles(ctx); err != nil {
		t.Fatal(err)
	}
	srv.RevokeTokens()
	if _, err := c.Roles(ctx); err != nil {
		t.Fatalf("after revocation: %v", err)
	}
	if n := srv.Count("POST", "/login"); n != 2 {
		t.Errorf("%d logins, want 2", n)
	}
	// A 401 that persists after re-login is returned, not looped on.
	srv.InjectFault(lookertest.Fault{Method: "GET", Path: "/roles", Status: 401, Body: `{"message":"Requires authentication.","documentation_url":"x"}`})
	_, err := c.Roles(ctx)
	if !IsUnauthorized(err) {
		t.Fatalf("got %v, want a 401", err)
	}
	if n := srv.Count("GET", "/roles"); n != 5 {
		t.Errorf("%d GET /roles, want 5 (ok, revoked, ok after re-login, injected 401, one more after re-login)", n)
	}
}

func TestRetriesHonourRetryAfter(t *testing.T) {
	c, srv := newTestClient(t, lookertest.Options{})
	srv.InjectFault(lookertest.Fault{Method: "GET", Path: "/roles", Status: 429, RetryAfter: "1", Times: 1, Body: `{"message":"slow down","documentation_url":"x"}`})
	srv.InjectFault(lookertest.Fault{Method: "GET", Path: "/roles", Status: 503, Times: 1, Body: `{"message":"restarting","documentation_url":"x"}`})
	if _, err := c.Roles(context.Background()); err != nil {
		t.Fatal(err)
	}
	var times []time.Time
	for _, r := range srv.Requests() {
		if r.Method == "GET" && r.Path == "/roles" {
			times = append(times, r.Time)
		}
	}
	if len(times) != 3 {
		t.Fatalf("%d attempts, want 3", len(times))
	}
	if gap := times[1].Sub(times[0]); gap < time.Second {
		t.Errorf("retried after %s, Retry-After said 1s", gap)
	}
}

func TestRetryAfterBeyondCapIsReturned(t *testing.T) {
	c, srv := newTestClient(t, lookertest.Options{})
	srv.InjectFault(lookertest.Fault{Method: "GET", Path: "/roles", Status: 429, RetryAfter: "120"})
	_, err := c.Roles(context.Background())
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.RetryAfter != 120*time.Second {
		t.Fatalf("got %v, want the 429 with its Retry-After", err)
	}
	if n := srv.Count("GET", "/roles"); n != 1 {
		t.Errorf("%d attempts: a wait longer than the cap must not be slept", n)
	}
}

func TestCreateIsNotRetriedWhenLookerMayHaveActed(t *testing.T) {
	c, srv := newTestClient(t, lookertest.Options{})
	srv.InjectFault(lookertest.Fault{Method: "POST", Path: "/users", Status: 503, Times: 1, Body: `{"message":"x","documentation_url":"x"}`})
	if _, err := c.CreateUser(context.Background(), "Ada", "L", nil); err == nil {
		t.Fatal("want the 503")
	}
	if n := srv.Count("POST", "/users"); n != 1 {
		t.Errorf("POST /users sent %d times after a 503; it may have created a user", n)
	}
	// 429 means Looker did not act, so that one is retried.
	srv.InjectFault(lookertest.Fault{Method: "POST", Path: "/users", Status: 429, Times: 1, Body: `{"message":"x","documentation_url":"x"}`})
	if _, err := c.CreateUser(context.Background(), "Ada", "L", nil); err != nil {
		t.Fatal(err)
	}
}

// UserWithMark decides by the mark alone, pages past the first answer, and
// never returns a user someone can log in as.
func TestUserWithMark(t *testing.T) {
	c, srv := newTestClient(t, lookertest.Options{})
	ctx := context.Background()
	mark := func(v string) map[string]string { return map[string]string{"k": v} }
	if _, err := c.CreateUser(ctx, "Ada", "Lovelace", nil); err != nil { // same names, no mark
		t.Fatal(err)
	}
	ada, err := c.CreateUser(ctx, "Ada", "Lovelace", mark("ada"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range markedPage + 20 { // nameless users, enough for two pages
		if _, err := c.CreateUser(ctx, "", "", mark(fmt.Sprint("n-", i))); err != nil {
			t.Fatal(err)
		}
	}
	last := fmt.Sprint("n-", markedPage+19)
	lastUser, err := c.UserWithMark(ctx, "", "", "k", last)
	if err != nil || lastUser == nil || lastUser.UIState["k"] != last {
		t.Fatalf("nameless, on the second page: %+v, %v", lastUser, err)
	}
	if n := srv.Count("GET", "/users/search"); n != 2 {
		t.Errorf("%d searches for a user on the second page", n)
	}
	for _, tc := range []struct {
		first, last, mark string
		want              ID
	}{
		{"Ada", "Lovelace", "ada", ada.ID},
		{"Ada", "Lovelace", "someone else's", ""},
		{"Ada", "Lovelace", "", ""},
		{"", "", "ada", ada.ID},
	} {
		u, err := c.UserWithMark(ctx, tc.first, tc.last, "k", tc.mark)
		if err != nil {
			t.Fatal(err)
		}
		if (u == nil) != (tc.want == "") || (u != nil && u.ID != tc.want) {
			t.Errorf("%q %q mark %q: got %+v, want %q", tc.first, tc.last, tc.mark, u, tc.want)
		}
	}
	if err := c.CreateEmailCredentials(ctx, ada.ID, "ada@example.com"); err != nil {
		t.Fatal(err)
	}
	if u, err := c.UserWithMark(ctx, "Ada", "Lovelace", "k", "ada"); err != nil || u != nil {
		t.Errorf("a user with a login was returned: %+v, %v", u, err)
	}
}

func TestConnectionRefusedIsRetriedForCreate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := New(Config{BaseURL: "http://" + addr, ClientID: "a", ClientSecret: "b", Timeout: time.Second, BaseDelay: time.Millisecond, MaxAttempts: 3}, nil)
	_, err = c.CreateUser(context.Background(), "Ada", "L", nil)
	var te *httpretry.TransportError
	if !errors.As(err, &te) {
		t.Fatalf("got %v, want a TransportError", err)
	}
}

func TestTimeoutBoundsLogin(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	t.Cleanup(func() { close(block); srv.Close() })
	c := New(Config{BaseURL: srv.URL, ClientID: "a", ClientSecret: "b", Timeout: 50 * time.Millisecond, MaxAttempts: 1}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Login(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("login got %v (ctx %v): LOOKERSDK_TIMEOUT must end it before the caller's deadline", err, ctx.Err())
	}
}

func TestCallerContextEndsWait(t *testing.T) {
	c, srv := newTestClient(t, lookertest.Options{Latency: 2 * time.Second})
	_ = srv
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Roles(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestWrongCredentials(t *testing.T) {
	srv := lookertest.NewTestServer(t, lookertest.Options{})
	c := New(Config{BaseURL: srv.URL, ClientID: "nope", ClientSecret: "very-secret-value-123", Timeout: time.Second}, nil)
	err := c.Login(context.Background())
	if err == nil || !strings.Contains(err.Error(), "LOOKERSDK_CLIENT_ID") || strings.Contains(err.Error(), "very-secret-value-123") {
		t.Fatalf("got %v: want a clear credentials error without the secret", err)
	}
}

func TestIDsDecodeFromNumbers(t *testing.T) {
	c, srv := newTestClient(t, lookertest.Options{NumericIDs: true})
	srv.AddRole("Viewer")
	roles, err := c.Roles(context.Background())
	if err != nil || len(roles) == 0 || roles[0].ID == "" {
		t.Fatalf("roles %+v, %v", roles, err)
	}
}

func TestAPIErrorCarriesValidationDetails(t *testing.T) {
	c, srv := newTestClient(t, lookertest.Options{})
	u, err := c.CreateUser(context.Background(), "A", "B", nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.CreateEmailCredentials(context.Background(), u.ID, "not-an-email")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 422 || len(apiErr.Errors) == 0 || apiErr.Errors[0].Field != "email" {
		t.Fatalf("got %#v", err)
	}
	if !MayBeEmailTaken(err) {
		t.Error("422 on email must be treated as possibly taken, to be confirmed by lookup")
	}
	if strings.Contains(apiErr.Error(), string(u.ID)+"/") {
		t.Errorf("error text carries the concrete path: %s", apiErr)
	}
	_ = srv
}

func TestConfigFromEnv(t *testing.T) {
	base := map[string]string{"LOOKERSDK_BASE_URL": "https://acme.cloud.looker.com/api/4.0/", "LOOKERSDK_CLIENT_ID": "id", "LOOKERSDK_CLIENT_SECRET": "s"}
	get := func(over map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := over[k]; ok {
				return v
			}
			return base[k]
		}
	}
	cfg, err := ConfigFromEnv(get(nil))
	if err != nil || cfg.BaseURL != "https://acme.cloud.looker.com" || !cfg.VerifySSL || cfg.Timeout != 120*time.Second {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	cfg, err = ConfigFromEnv(get(map[string]string{"LOOKERSDK_VERIFY_SSL": "False", "LOOKERSDK_TIMEOUT": "30"}))
	if err != nil || cfg.VerifySSL || cfg.Timeout != 30*time.Second {
		t.Fatalf("explicit: %+v %v", cfg, err)
	}
	for k, v := range map[string]string{
		"LOOKERSDK_VERIFY_SSL": "nope", "LOOKERSDK_TIMEOUT": "soon", "LOOKERSDK_BASE_URL": "acme.looker.com",
		"LOOKERSDK_CLIENT_SECRET": "",
	} {
		if _, err := ConfigFromEnv(get(map[string]string{k: v})); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%q: got %v, want an error naming the variable", k, v, err)
		}
	}
	if s := (Config{ClientSecret: "hunter2-secret"}).String(); strings.Contains(s, "hunter2") {
		t.Errorf("Config.String leaks the secret: %s", s)
	}
}

// echoSecret has the characters that URL and JSON escaping change, so a
// leak in any encoding shows.
const echoSecret = `LEAK/s3cr+t&"k=y`

// A login refused by whatever answers at LOOKERSDK_BASE_URL (here a proxy
// that echoes the request, form and all) gives a fixed message naming the
// settings to check, never a word of the answer, at any status.
func TestRefusedLoginEchoesNothing(t *testing.T) {
	for _, status := range []int{400, 401, 403, 404, 422, 429, 502, 503} {
		srv := lookertest.NewTestServer(t, lookertest.Options{ClientSecret: echoSecret})
		proxy := fakehttp.EchoingProxy(t, srv.URL, func(r *http.Request) int {
			if strings.HasSuffix(r.URL.Path, "/login") {
				return status
			}
			return 0
		})
		c := New(Config{BaseURL: proxy, ClientID: lookertest.DefaultClientID, ClientSecret: echoSecret,
			Timeout: 5 * time.Second, MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}, nil)
		err := c.Login(context.Background())
		if err == nil {
			t.Fatalf("%d: login succeeded", status)
		}
		msg := err.Error()
		if found := leakcheck.Find(msg, map[string]string{"client secret": echoSecret}); found != nil || strings.Contains(msg, fakehttp.EchoMarker) {
			t.Errorf("%d: the error echoes the answer (%v): %s", status, found, msg)
		}
		if !strings.Contains(msg, "LOOKERSDK_") || httpretry.StatusOf(err) != status {
			t.Errorf("%d: %q (status %d): want the status kept and the setting to check named", status, msg, httpretry.StatusOf(err))
		}
	}
}

// Each access token is handed to Config.LoggedIn as soon as Looker issues
// it, before any call carries it, so the redactor knows it first.
func TestLoggedInLearnsEveryToken(t *testing.T) {
	srv := lookertest.NewTestServer(t, lookertest.Options{})
	sentWith := func(tok string) bool {
		for _, r := range srv.Requests() {
			if r.Header.Get("Authorization") == "Bearer "+tok {
				return true
			}
		}
		return false
	}
	var learned []string
	c := New(Config{
		BaseURL: srv.URL, ClientID: lookertest.DefaultClientID, ClientSecret: lookertest.DefaultClientSecret, Timeout: 5 * time.Second,
		LoggedIn: func(tok string) {
			if sentWith(tok) {
				t.Errorf("token %q was used before it was learned", tok)
			}
			learned = append(learned, tok)
		},
	}, nil)
	for range 2 {
		if _, err := c.Roles(context.Background()); err != nil {
			t.Fatal(err)
		}
		srv.RevokeTokens() // the next call is refused and logs in again
	}
	if len(learned) != 2 || learned[0] == learned[1] || !sentWith(learned[0]) || !sentWith(learned[1]) {
		t.Fatalf("learned %q: want both tokens the calls used", learned)
	}
}
