package aac_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/aac"
	"github.com/onboard-dev/onboard/core/aac/aactest"
	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/internal/fakehttp"
	"github.com/onboard-dev/onboard/internal/leakcheck"
)

// coldStart: n instances with nothing cached, sharing one store, each
// invite a person at the same moment. Every invite succeeds, the token
// endpoint sees one refresh per rotation and never a reused token, and the
// stored refresh token is the one AAC will accept next.
func coldStart(t *testing.T, store state.Store, n int) {
	// An hour: the one rotation a cold start needs is the only one due.
	w := newWorld(t, aactest.Options{AccessTokenTTL: time.Hour}, store)
	g := w.seedSecret(workspace, w.wsID)
	instances := make([]*instance, n)
	for i := range instances {
		instances[i] = w.instance(t)
	}
	start := make(chan struct{})
	errs := make([]error, n)
	results := make([]core.TargetResult, n)
	var wg sync.WaitGroup
	for i, in := range instances {
		wg.Go(func() {
			<-start
			results[i], errs[i] = in.provision(emailN(i))
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()

	members := w.emails(w.wsID)
	for i := range n {
		if errs[i] != nil {
			t.Errorf("instance %d: %v", i, errs[i])
			continue
		}
		if results[i].Status != core.StatusCreated {
			t.Errorf("instance %d: status %s, want created", i, results[i].Status)
		}
		if _, ok := members[emailN(i)]; !ok {
			t.Errorf("%s was not invited", emailN(i))
		}
	}
	refreshes := w.fake.Refreshes()
	checkLinear(t, refreshes, g.RefreshToken)
	if len(refreshes) != 1 {
		t.Errorf("%d refreshes, want 1: the others should have used the stored access token", len(refreshes))
	}
	stored, _, _, _ := storedHead(t, w.store, aac.WorkspaceChainKey(w.fake.URL, workspace))
	if live := w.fake.LiveRefreshToken(g.Chain); stored != live {
		t.Errorf("the stored refresh token is not the chain's live one: the next refresh would fail")
	}
	t.Logf("%d instances, %d refresh(es), %d invite calls, %v", n, len(refreshes), len(w.fake.Requests(aactest.OpInvite)), time.Since(t0))
}

func TestColdInstancesShareOneRotationFileStore(t *testing.T) {
	coldStart(t, fileStore(t), 20)
}

// The window no client can close: the token endpoint took the old refresh
// token and the instance died before storing the new pair. The next
// instance's refresh is refused on a head nobody replaced: it must say so
// at CRITICAL with the fix, answer retryably, and leave the head for
// seed-token, which then repairs the chain.
func TestCrashAfterRefreshIsDetected(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	g := w.seedSecret(workspace, w.wsID)
	short := func(c *aac.Config) { c.Lease = 300 * time.Millisecond }

	dying := w.instance(t, short)
	var crashed atomic.Bool
	aac.SetExchangeHooks(dying.client, nil, func() bool { return crashed.CompareAndSwap(false, true) })
	if _, err := dying.provision("ada@example.com"); err == nil {
		t.Fatal("the crashing instance reported success")
	}
	if got := w.fake.Refreshes(); len(got) != 1 || got[0].Outcome != "ok" {
		t.Fatalf("token endpoint calls = %+v, want the one the dying instance spent", got)
	}
	_, _, beforeVersion, before := storedHead(t, w.store, aac.WorkspaceChainKey(w.fake.URL, workspace))

	next := w.instance(t, short)
	_, err := next.provision("ada@example.com")
	ce := asCoreError(t, err)
	if !ce.Retryable() || ce.Status != http.StatusServiceUnavailable || ce.RetryAfter <= 0 {
		t.Errorf("answer = %d retryable=%v retry_after=%v, want a retryable 503 with Retry-After", ce.Status, ce.Retryable(), ce.RetryAfter)
	}
	fix := "onboard aac seed-token --workspace 'Sales Analytics'"
	if !strings.Contains(ce.Error(), fix) {
		t.Errorf("answer %q does not name the fix %q", ce.Error(), fix)
	}
	logs := next.logs.String()
	if !strings.Contains(logs, `"severity":"CRITICAL"`) || !strings.Contains(logs, fix) {
		t.Errorf("no CRITICAL log naming the fix:\n%s", logs)
	}
	if strings.Contains(logs, g.RefreshToken) || strings.Contains(ce.Error(), g.RefreshToken) {
		t.Error("the refresh token appears in a log or an answer")
	}
	refreshes := w.fake.Refreshes()
	if len(refreshes) != 2 || refreshes[1].Outcome != "invalid_grant" {
		t.Fatalf("token endpoint calls = %+v, want the spent token refused", refreshes)
	}
	_, _, afterVersion, after := storedHead(t, w.store, aac.WorkspaceChainKey(w.fake.URL, workspace))
	if afterVersion != beforeVersion || !bytes.Equal(after, before) {
		t.Error("the stored chain was changed; it must be left for seed-token")
	}

	// Known broken: no more calls spent on the dead token.
	if _, err := next.provision("ada@example.com"); err == nil || !asCoreError(t, err).Retryable() {
		t.Errorf("second attempt: %v, want the same retryable answer", err)
	}
	if n := len(w.fake.Refreshes()); n != 2 {
		t.Errorf("token endpoint called again (%d calls) for a chain known to be broken", n)
	}

	// The fix: a new token from AAC, stored with seed-token's code.
	fresh := w.fake.NewWorkspaceGrant(w.wsID)
	if _, err := aac.Seed(context.Background(), w.store, aac.WorkspaceChainKey(w.fake.URL, workspace),
		aac.Credentials{RefreshToken: fresh.RefreshToken, AccessToken: fresh.AccessToken}, "test"); err != nil {
		t.Fatal(err)
	}
	res, err := next.provision("ada@example.com")
	if err != nil || res.Status != core.StatusCreated {
		t.Fatalf("after seed-token: %+v, %v; want created", res, err)
	}
}

// An instance that stalls past its lease loses the chain to another, which
// rotates it; when the stalled one finally presents the spent token, the
// invalid_grant is no broken chain: it re-reads and uses the winner's pair.
func TestStalledInstanceUsesTheWinnersToken(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	g := w.seedSecret(workspace, w.wsID)
	short := func(c *aac.Config) { c.Lease = 200 * time.Millisecond }
	stalled := w.instance(t, short)
	blocked, proceed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	aac.SetExchangeHooks(stalled.client, func() {
		once.Do(func() {
			close(blocked)
			<-proceed
		})
	}, nil)
	done := make(chan error, 1)
	go func() {
		_, err := stalled.provision("ada@example.com")
		done <- err
	}()
	<-blocked

	if _, err := w.instance(t, short).provision("bob@example.com"); err != nil {
		t.Fatalf("the instance taking over: %v", err)
	}
	close(proceed)
	if err := <-done; err != nil {
		t.Fatalf("the stalled instance: %v", err)
	}
	refreshes := w.fake.Refreshes()
	if len(refreshes) != 2 || refreshes[0].Outcome != "ok" || refreshes[1].Outcome != "invalid_grant" {
		t.Fatalf("token endpoint calls = %+v, want the takeover's rotation, then the stalled one's refused", refreshes)
	}
	if strings.Contains(stalled.logs.String(), "CRITICAL") {
		t.Error("a lost race was reported as a broken chain")
	}
	if stored, _, _, _ := storedHead(t, w.store, aac.WorkspaceChainKey(w.fake.URL, workspace)); stored != w.fake.LiveRefreshToken(g.Chain) {
		t.Error("the stored refresh token is not the live one")
	}
}

// Losing the compare-and-swap after a successful refresh (an admin ran
// seed-token meanwhile) means the stored head wins: the instance uses it.
func TestLostSwapUsesTheStoredHead(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	w.seedSecret(workspace, w.wsID)
	in := w.instance(t)
	var admin aactest.Grant
	aac.SetExchangeHooks(in.client, nil, func() bool {
		admin = w.fake.NewWorkspaceGrant(w.wsID)
		if _, err := aac.Seed(context.Background(), w.store, aac.WorkspaceChainKey(w.fake.URL, workspace),
			aac.Credentials{RefreshToken: admin.RefreshToken, AccessToken: admin.AccessToken}, "admin"); err != nil {
			t.Error(err)
		}
		return false
	})
	if _, err := in.provision("ada@example.com"); err != nil {
		t.Fatal(err)
	}
	stored, access, _, _ := storedHead(t, w.store, aac.WorkspaceChainKey(w.fake.URL, workspace))
	if stored != admin.RefreshToken || access != admin.AccessToken {
		t.Error("the instance overwrote the head an admin stored")
	}
	invites := w.fake.Requests(aactest.OpInvite)
	if len(invites) != 1 || invites[0].Header.Get("Authorization") != "Bearer "+admin.AccessToken {
		t.Error("the invite did not use the stored head's access token")
	}
}

// The access token dies while a batch is under way (AAC answers 401 to the
// invite): the instance refreshes once, stores the pair, and the batch
// goes through as one call.
func TestAccessTokenExpiryMidBatch(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	g := w.seedSecret(workspace, w.wsID)
	in := w.instance(t, func(c *aac.Config) { c.BatchWindow = 50 * time.Millisecond })
	var once sync.Once
	w.fake.OnRequest(aactest.OpInvite, func() { once.Do(w.fake.ExpireAccessTokens) })

	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { _, errs[i] = in.provision(emailN(i)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("person %d: %v", i, err)
		}
	}
	invites := w.fake.Requests(aactest.OpInvite)
	if len(invites) != 2 || invites[0].Status != http.StatusUnauthorized || invites[1].Status != http.StatusCreated {
		t.Fatalf("invite calls = %d, want a 401 then one successful retry", len(invites))
	}
	if n := strings.Count(string(invites[1].Body), "@example.com"); n != 3 {
		t.Errorf("the retried batch carried %d emails, want 3", n)
	}
	refreshes := w.fake.Refreshes()
	checkLinear(t, refreshes, g.RefreshToken)
	if len(refreshes) != 2 {
		t.Errorf("%d refreshes, want 2 (cold start, then after the 401)", len(refreshes))
	}
	stored, _, _, _ := storedHead(t, w.store, aac.WorkspaceChainKey(w.fake.URL, workspace))
	if stored != w.fake.LiveRefreshToken(g.Chain) {
		t.Error("the stored refresh token is not the live one")
	}
}

// With no AAC_TOKEN_URL or AAC_CLIENT_ID, a chain seeded with both tokens
// refreshes where the access token's claims say, and without expires_in
// the lifetime comes from the exp claim.
func TestEndpointAndLifetimeFromClaims(t *testing.T) {
	w := newWorld(t, aactest.Options{OmitExpiresIn: true, AccessTokenTTL: time.Hour}, nil)
	g := w.fake.NewWorkspaceGrant(w.wsID)
	if _, err := aac.Seed(context.Background(), w.store, aac.WorkspaceChainKey(w.fake.URL, workspace),
		aac.Credentials{RefreshToken: g.RefreshToken, AccessToken: g.AccessToken}, "test"); err != nil {
		t.Fatal(err)
	}
	in := w.instance(t, func(c *aac.Config) { c.TokenURL, c.ClientID = "", "" })
	if _, err := in.provision("ada@example.com"); err != nil {
		t.Fatal(err)
	}
	if n := len(w.fake.Refreshes()); n != 0 {
		t.Fatalf("%d refreshes, want none while the seeded access token is fresh", n)
	}
	w.fake.ExpireAccessTokens()
	if _, err := in.provision("bob@example.com"); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	refreshes := w.fake.Refreshes()
	checkLinear(t, refreshes, g.RefreshToken)

	reports, err := in.target.Status(context.Background(), []string{workspace})
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(refreshes[0].AccessExpiry.Unix(), 0); !reports[0].AccessExpiry.Equal(want) {
		t.Errorf("stored expiry %v, want the exp claim %v", reports[0].AccessExpiry, want)
	}
}

// A bare refresh token cannot be refreshed without knowing where: the
// answer says which settings (or which seed) would fix it, and nothing is
// sent anywhere.
func TestUnknownTokenEndpoint(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	w.seedSecret(workspace, w.wsID)
	in := w.instance(t, func(c *aac.Config) { c.TokenURL, c.ClientID = "", "" })
	_, err := in.provision("ada@example.com")
	ce := asCoreError(t, err)
	if !ce.Retryable() || !strings.Contains(ce.Error(), "AAC_TOKEN_URL") || !strings.Contains(ce.Error(), "AAC_CLIENT_ID") {
		t.Errorf("answer %q (retryable %v), want a retryable one naming AAC_TOKEN_URL and AAC_CLIENT_ID", ce.Error(), ce.Retryable())
	}
	if n := len(w.fake.Refreshes()); n != 0 {
		t.Errorf("%d token endpoint calls, want none", n)
	}
}

// forgedAccessToken is a JWT-shaped token with the claims an attacker
// chooses; nothing checks its signature before the claims are read.
func forgedAccessToken(iss, clientID string, exp time.Time) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." +
		enc(map[string]any{"iss": iss, "client_id": clientID, "exp": exp.Unix(), "iat": time.Now().Unix()}) + ".c2ln"
}

// A token whose claims name a foreign issuer never gets the refresh token
// sent there, whether the claims come with a fresh access token or were
// learned into the stored head earlier: without AAC_TOKEN_URL the answer
// names that setting, and with it set the chain refreshes where it says.
func TestForeignIssuerNeverGetsTheRefreshToken(t *testing.T) {
	var evilCalls atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		evilCalls.Add(1)
		http.Error(w, "thanks", http.StatusBadRequest)
	}))
	t.Cleanup(evil.Close)

	for name, access := range map[string]string{
		"fresh access token": forgedAccessToken(evil.URL+"/as", "evil-client", time.Now().Add(time.Hour)),
		"learned endpoint":   forgedAccessToken(evil.URL+"/as", "evil-client", time.Now().Add(-time.Minute)),
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, aactest.Options{}, nil)
			g := w.fake.NewWorkspaceGrant(w.wsID)
			if _, err := aac.Seed(context.Background(), w.store, aac.WorkspaceChainKey(w.fake.URL, workspace),
				aac.Credentials{RefreshToken: g.RefreshToken, AccessToken: access}, "test"); err != nil {
				t.Fatal(err)
			}
			in := w.instance(t, func(c *aac.Config) { c.TokenURL = "" })
			_, err := in.provision("ada@example.com")
			ce := asCoreError(t, err)
			if !ce.Retryable() || !strings.Contains(ce.Error(), "AAC_TOKEN_URL") {
				t.Errorf("answer %q (retryable %v), want a retryable one naming AAC_TOKEN_URL", ce.Error(), ce.Retryable())
			}
			if n := evilCalls.Load(); n != 0 {
				t.Fatalf("the foreign issuer received %d requests", n)
			}
			if strings.Contains(in.logs.String(), g.RefreshToken) {
				t.Error("the refresh token reached the log")
			}
			if live := w.fake.LiveRefreshToken(g.Chain); live != g.RefreshToken {
				t.Error("the seed was spent")
			}

			// The admin confirms the real endpoint: the same head refreshes there.
			fixed := w.instance(t, func(c *aac.Config) { c.TokenURL = w.fake.TokenURL() })
			if _, err := fixed.provision("ada@example.com"); err != nil {
				t.Fatalf("with AAC_TOKEN_URL set: %v", err)
			}
			checkLinear(t, w.fake.Refreshes(), g.RefreshToken)
			if n := evilCalls.Load(); n != 0 {
				t.Fatalf("the foreign issuer received %d requests", n)
			}
		})
	}
}

// A wrong client id is a setting to fix, not a broken chain: the token is
// not spent, the chain is left alone, and the answer names the setting.
func TestWrongClientID(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	g := w.seedSecret(workspace, w.wsID)
	in := w.instance(t, func(c *aac.Config) { c.ClientID = "not-the-client" })
	_, err := in.provision("ada@example.com")
	ce := asCoreError(t, err)
	if !ce.Retryable() || !strings.Contains(ce.Error(), "AAC_CLIENT_ID") {
		t.Errorf("answer %q, want a retryable one naming AAC_CLIENT_ID", ce.Error())
	}
	if strings.Contains(in.logs.String(), "CRITICAL") {
		t.Error("a refused client id was reported as a broken chain")
	}
	if live := w.fake.LiveRefreshToken(g.Chain); live != g.RefreshToken {
		t.Error("the seed was spent")
	}
}

func TestParseCredentials(t *testing.T) {
	for _, tc := range []struct {
		in, refresh, access, err string
	}{
		{in: "  rt-123\n", refresh: "rt-123"},
		{in: `{"access_token":"a.b.c","refresh_token":"rt-9","expires_in":300,"token_type":"Bearer"}`, refresh: "rt-9", access: "a.b.c"},
		{in: `{"access_token":`, err: "not a JSON object"},
		{in: `{"access_token":"a.b.c","refresh_token":"rt-9"}`, refresh: "rt-9", access: "a.b.c"},
		{in: "", err: "no refresh token"},
		{in: `{"access_token":"a.b.c"}`, err: "no refresh token"},
		{in: "rt-1 rt-2", err: "spaces"},
	} {
		c, err := aac.ParseCredentials(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
		case err != nil || c.RefreshToken != tc.refresh || c.AccessToken != tc.access:
			t.Errorf("%q: %+v, %v", tc.in, c, err)
		}
	}
}

// failingPuts is a store whose writes to one key fail while failing is set.
type failingPuts struct {
	state.Store
	key     string
	failing atomic.Bool
}

func (s *failingPuts) Put(ctx context.Context, key string, data []byte, expect int64, ttl time.Duration) (int64, error) {
	if key == s.key && s.failing.Load() {
		return 0, errors.New("store unavailable")
	}
	return s.Store.Put(ctx, key, data, expect, ttl)
}

// A rotated pair the store would not take lives only in the rotating
// instance's memory. It keeps the chain's lease meanwhile, so no other
// instance spends the old token (which would look like a broken chain);
// its next use stores the pair, and everyone goes on.
func TestRotatedPairKeptWhenTheStoreFails(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	g := w.seedSecret(workspace, w.wsID)
	store := &failingPuts{Store: w.store, key: aac.WorkspaceChainKey(w.fake.URL, workspace)}
	w.store = store
	lease := func(c *aac.Config) { c.Lease = 2 * time.Second }
	first := w.instance(t, lease)
	if _, err := first.provision("zed@example.com"); err != nil {
		t.Fatal(err) // starts the chain while the store works
	}
	w.fake.ExpireAccessTokens()
	store.failing.Store(true)
	if _, err := first.provision("ada@example.com"); err == nil {
		t.Fatal("a rotation the store refused reported success")
	}
	if logs := first.logs.String(); !strings.Contains(logs, `"severity":"CRITICAL"`) || strings.Contains(logs, w.fake.LiveRefreshToken(g.Chain)) {
		t.Errorf("want a CRITICAL line without the token:\n%s", logs)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	other := w.instance(t, lease)
	if _, err := other.target.Provision(ctx, person("bob@example.com"), profile(workspace)); err == nil {
		t.Fatal("another instance got a token while the live pair was only in memory")
	}
	for _, r := range w.fake.Refreshes() {
		if r.Outcome != "ok" {
			t.Fatalf("refreshes %+v: another instance spent the old token", w.fake.Refreshes())
		}
	}

	store.failing.Store(false)
	if _, err := first.provision("ada@example.com"); err != nil {
		t.Fatalf("after the store came back: %v", err)
	}
	if _, err := other.provision("bob@example.com"); err != nil {
		t.Fatalf("the other instance after the pair was stored: %v", err)
	}
	checkLinear(t, w.fake.Refreshes(), g.RefreshToken)
	if stored, _, _, _ := storedHead(t, w.store, aac.WorkspaceChainKey(w.fake.URL, workspace)); stored != w.fake.LiveRefreshToken(g.Chain) {
		t.Error("the stored refresh token is not the live one")
	}
}

// Whatever answers at the token endpoint may be a proxy that echoes the
// form it was sent, refresh token included: a refusal's answer and log name
// the settings to check and carry no word of that answer, at any status.
func TestRefusedRefreshEchoesNothing(t *testing.T) {
	for _, status := range []int{400, 401, 503} {
		w := newWorld(t, aactest.Options{}, nil)
		g := w.seedSecret(workspace, w.wsID)
		tokenPath := aactest.TokenPath
		proxy := fakehttp.EchoingProxy(t, w.fake.URL, func(r *http.Request) int {
			if r.URL.Path == tokenPath {
				return status
			}
			return 0
		})
		in := w.instance(t, func(c *aac.Config) { c.TokenURL = proxy + tokenPath })
		_, err := in.provision("ada@example.com")
		ce := asCoreError(t, err)
		shown := ce.Error() + "\n" + ce.Err.Error() + "\n" + in.logs.String()
		if found := leakcheck.Find(shown, map[string]string{"refresh token": g.RefreshToken}); found != nil || strings.Contains(shown, fakehttp.EchoMarker) {
			t.Errorf("%d: the token endpoint's answer was echoed (%v):\n%s", status, found, shown)
		}
		if status < 500 && !strings.Contains(ce.Error(), "AAC_CLIENT_ID") {
			t.Errorf("%d: answer %q names no setting to check", status, ce.Error())
		}
	}
}
