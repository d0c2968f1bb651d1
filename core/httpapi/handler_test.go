package httpapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/httpapi"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/filestore"
	"github.com/onboard-dev/onboard/core/targets"
	"github.com/onboard-dev/onboard/internal/logbuf"
)

// createsAnyone is a target that provisions everyone it is asked to.
type createsAnyone struct{}

func (createsAnyone) Name() string               { return "stub" }
func (createsAnyone) Handles(*core.Profile) bool { return true }
func (createsAnyone) Provision(context.Context, core.Person, *core.Profile) (core.TargetResult, error) {
	return core.TargetResult{Status: core.StatusCreated}, nil
}
func (createsAnyone) Deprovision(context.Context, core.Person, *core.Profile) (core.TargetResult, error) {
	return core.TargetResult{Status: core.StatusDeleted}, nil
}

// panicsOnBoom is a store with a bug that only the request keyed "boom"
// reaches: a panic in the engine, outside any target's recover.
type panicsOnBoom struct{ state.Store }

func (s panicsOnBoom) Claim(ctx context.Context, key, fingerprint, owner string, lease, ttl time.Duration) (state.ClaimOutcome, state.Record, error) {
	if strings.HasSuffix(key, "/boom") {
		panic("store bug")
	}
	return s.Store.Claim(ctx, key, fingerprint, owner, lease, ttl)
}

// A bulk body's items run in goroutines of their own: a panic in one must
// fail only that item (a retryable 500 "internal error", the stack in the
// log), while the others are answered and the process lives.
func TestPanickingBulkItemFailsAlone(t *testing.T) {
	cfg, err := targets.ParseConfig([]byte("default_profile: a\nprofiles:\n  a:\n    looker: {roles: [Viewer]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	log := logging.New(logs, slog.LevelDebug, nil) // one log, as the app gives both
	h := &httpapi.Handler{
		Engine: &core.Engine{Config: cfg, Targets: []core.Target{createsAnyone{}}, Store: panicsOnBoom{store}, Log: log},
		Auth:   &httpapi.WebhookAuth{Secret: func(context.Context) (string, error) { return "secret", nil }},
		Log:    log,
	}
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(
		`[{"email":"a@example.com"},{"email":"b@example.com","idempotency_key":"boom"},{"email":"c@example.com"}]`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer secret")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	var items []struct {
		HTTPStatus int    `json:"http_status"`
		Status     string `json:"status"`
		Error      string `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &items); rec.Code != http.StatusMultiStatus || err != nil || len(items) != 3 {
		t.Fatalf("%d %s (%v): want 207 with three items", rec.Code, rec.Body, err)
	}
	if items[0].HTTPStatus != 200 || items[0].Status != "created" || items[2].HTTPStatus != 200 || items[2].Status != "created" {
		t.Errorf("the other items: %s", rec.Body)
	}
	if items[1].HTTPStatus != 500 || items[1].Error != "internal error" {
		t.Errorf("the panicking item: %+v, want 500 internal error", items[1])
	}
	if strings.Contains(rec.Body.String(), "store bug") {
		t.Errorf("the answer shows the panic: %s", rec.Body)
	}
	if l := logs.String(); !strings.Contains(l, "store bug") || !strings.Contains(l, "handler_test.go") {
		t.Errorf("want the panic and its stack in the log:\n%s", l)
	}
}

// /scim/v2 and below go to the SCIM server, with its own credential;
// everything else stays the webhook's.
func TestSCIMIsMounted(t *testing.T) {
	scim := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := &httpapi.Handler{SCIM: scim}
	for path, want := range map[string]int{"/scim/v2": http.StatusTeapot, "/scim/v2/Users/1": http.StatusTeapot, "/scim/v2x": http.StatusNotFound, "/scim": http.StatusNotFound} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want {
			t.Errorf("GET %s = %d, want %d", path, rec.Code, want)
		}
	}
}
