package aac_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/aac"
	"github.com/onboard-dev/onboard/core/aac/aactest"
	"github.com/onboard-dev/onboard/core/internal/httpretry"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/plugin"
	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/filestore"
	"github.com/onboard-dev/onboard/internal/logbuf"
)

const workspace = "Sales Analytics"

// world is one fake AAC and what the instances under test share.
type world struct {
	fake  *aactest.Server
	store state.Store
	wsID  int64
	// seeds is AAC_REFRESH_TOKENS; account is AAC_ACCOUNT_REFRESH_TOKEN.
	mu      sync.Mutex
	seeds   map[string]string
	account string
}

func newWorld(t testing.TB, opts aactest.Options, store state.Store) *world {
	t.Helper()
	if store == nil {
		store = fileStore(t)
	}
	w := &world{fake: aactest.NewTestServer(t, opts), store: store, seeds: map[string]string{}}
	w.wsID = w.fake.AddWorkspace(workspace, "Auto Insights Creator", "Auto Insights Viewer")
	return w
}

func fileStore(t testing.TB) state.Store {
	t.Helper()
	s, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seedSecret puts a fresh chain of the workspace into AAC_REFRESH_TOKENS.
func (w *world) seedSecret(name string, wsID int64) aactest.Grant {
	g := w.fake.NewWorkspaceGrant(wsID)
	w.mu.Lock()
	w.seeds[name] = g.RefreshToken
	w.mu.Unlock()
	return g
}

// instance is one function instance: its own client, chains and batches.
type instance struct {
	client *aac.Client
	target *aac.Target
	logs   *logbuf.Buffer
}

// config is an instance's settings; tweak adjusts them per test.
func (w *world) config(tweak ...func(*aac.Config)) aac.Config {
	cfg := aac.Config{
		BaseURL:   w.fake.URL,
		AccountID: w.fake.AccountID(),
		TokenURL:  w.fake.TokenURL(),
		ClientID:  w.fake.ClientID(),
		Seeds: func(context.Context) (map[string]string, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			m := map[string]string{}
			for k, v := range w.seeds {
				m[k] = v
			}
			return m, nil
		},
		AccountSeed: func(context.Context) (string, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			return w.account, nil
		},
		Poll:  50 * time.Millisecond,
		Retry: httpretry.Policy{BaseDelay: 5 * time.Millisecond},
	}
	for _, f := range tweak {
		f(&cfg)
	}
	return cfg
}

func (w *world) instance(t testing.TB, tweak ...func(*aac.Config)) *instance {
	t.Helper()
	logs := &logbuf.Buffer{}
	log := logging.New(logs, slog.LevelDebug, nil)
	c, err := aac.New(w.config(tweak...), w.store, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &instance{client: c, target: aac.NewTarget(c, log), logs: logs}
}

func profile(ws string, roles ...string) *core.Profile {
	if len(roles) == 0 {
		roles = []string{"Auto Insights Creator"}
	}
	section, _ := json.Marshal(map[string]any{"workspace": ws, "roles": roles}) // JSON is YAML
	cfg, err := core.ParseConfig([]byte("profiles:\n  p:\n    aac: "+string(section)+"\n"), plugin.Schema([]plugin.Target{aac.Plugin}, nil, nil))
	if err != nil {
		panic(err)
	}
	return cfg.Profiles["p"]
}

func person(email string) core.Person { return core.Person{Email: email} }

func (in *instance) provision(email string) (core.TargetResult, error) {
	return in.target.Provision(context.Background(), person(email), profile(workspace))
}

// storedHead reads a chain's head as the store holds it.
func storedHead(t *testing.T, store state.Store, key string) (refresh, access string, version int64, raw []byte) {
	t.Helper()
	v, err := store.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	var head struct {
		RefreshToken string `json:"refresh_token"`
		AccessToken  string `json:"access_token"`
	}
	if err := json.Unmarshal(v.Data, &head); err != nil {
		t.Fatal(err)
	}
	return head.RefreshToken, head.AccessToken, v.Version, v.Data
}

// checkLinear asserts the token endpoint saw one refresh per rotation: each
// presented the token the previous one issued (the first, first), and none
// was refused.
func checkLinear(t *testing.T, refreshes []aactest.Refresh, first string) {
	t.Helper()
	if len(refreshes) == 0 {
		t.Fatal("no refresh at all")
	}
	want := first
	for i, r := range refreshes {
		if r.Outcome != "ok" {
			t.Fatalf("refresh %d: %s (a token was presented twice, or a stale one)", i, r.Outcome)
		}
		if r.Presented != want {
			t.Fatalf("refresh %d presented a token other than the live one", i)
		}
		want = r.Issued
	}
}

// asCoreError asserts err is a *core.Error and returns it.
func asCoreError(t *testing.T, err error) *core.Error {
	t.Helper()
	var ce *core.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *core.Error", err, err)
	}
	return ce
}

// emails lists a fake workspace's member emails, lower-cased.
func (w *world) emails(wsID int64) map[string]aactest.Member {
	m := map[string]aactest.Member{}
	for _, mem := range w.fake.Members(wsID) {
		m[strings.ToLower(mem.Email)] = mem
	}
	return m
}

func emailN(i int) string { return fmt.Sprintf("person%02d@example.com", i) }
