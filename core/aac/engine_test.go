package aac_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/aac"
	"github.com/onboard-dev/onboard/core/aac/aactest"
	"github.com/onboard-dev/onboard/core/httpapi"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/runner"
	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/targets"
	"github.com/onboard-dev/onboard/internal/logbuf"
)

const aacOnlyConfig = `
default_profile: analyst
profiles:
  analyst:
    aac:
      workspace: Sales Analytics
      roles: [Auto Insights Creator]
`

// engineFor runs the AAC target and, for every profile, a target that
// takes as long as Looker does to provision someone: longer than AAC's
// micro-batch window, so only the event batch can gather the invites.
func engineFor(t testing.TB, w *world, tweak ...func(*aac.Config)) *core.Engine {
	t.Helper()
	cfg, err := targets.ParseConfig([]byte(aacOnlyConfig))
	if err != nil {
		t.Fatal(err)
	}
	in := w.instance(t, tweak...)
	return &core.Engine{Config: cfg, Targets: []core.Target{in.target, slowTarget{300 * time.Millisecond}}, Store: w.store,
		Log: logging.New(&logbuf.Buffer{}, slog.LevelDebug, nil)}
}

type slowTarget struct{ took time.Duration }

func (slowTarget) Name() string               { return "slow" }
func (slowTarget) Handles(*core.Profile) bool { return true }
func (s slowTarget) Provision(context.Context, core.Person, *core.Profile) (core.TargetResult, error) {
	time.Sleep(s.took)
	return core.TargetResult{Status: core.StatusUnchanged}, nil
}
func (s slowTarget) Deprovision(ctx context.Context, p core.Person, prof *core.Profile) (core.TargetResult, error) {
	return s.Provision(ctx, p, prof)
}

// A bulk HTTP body is answered item by item, but its invites reach AAC as
// one batch call, and each person's audit record names their own request.
func TestBulkBodyMakesOneBatchCall(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	w.seedSecret(workspace, w.wsID)
	h := &httpapi.Handler{Engine: engineFor(t, w), Auth: &httpapi.WebhookAuth{Insecure: true}}

	// Twenty: five times what the HTTP handler runs at once from one body.
	const n = 20
	var items []string
	for i := range n {
		items = append(items, fmt.Sprintf(`{"email":%q}`, emailN(i)))
	}
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("["+strings.Join(items, ",")+"]"))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMultiStatus {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var answers []struct {
		HTTPStatus int                          `json:"http_status"`
		Targets    map[string]core.TargetResult `json:"targets"`
		RequestID  string                       `json:"request_id"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &answers); err != nil {
		t.Fatal(err)
	}
	for i, a := range answers {
		if a.HTTPStatus != http.StatusOK || a.Targets["aac"].Status != core.StatusCreated {
			t.Errorf("item %d: %d %+v, want 200 created", i, a.HTTPStatus, a.Targets)
		}
	}
	calls := invites(t, w)
	if len(calls) != 1 || len(calls[0].Emails) != n {
		t.Fatalf("invite calls = %v, want one carrying all %d", calls, n)
	}

	recs, err := w.store.Audit(context.Background(), state.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	byPerson := map[string]state.AuditRecord{}
	for _, r := range recs {
		if r.Target == "aac" && r.Operation == "POST /v4/workspaces/{id}/people/batch" && r.Outcome == "ok" {
			byPerson[r.Person] = r
		}
	}
	for i, a := range answers {
		r, ok := byPerson[emailN(i)]
		if !ok || r.RequestID != a.RequestID {
			t.Errorf("%s: audit record %+v, want one under request %s", emailN(i), r, a.RequestID)
		}
	}
}

// Separate requests that arrive together (Pub/Sub pushes, concurrent
// single requests, each outside any event batch) share one call through
// the micro-batch window.
func TestConcurrentRequestsShareOneBatchCall(t *testing.T) {
	w := newWorld(t, aactest.Options{}, nil)
	w.seedSecret(workspace, w.wsID)
	// A window wider than the default: eight idempotency claims and person
	// leases, written one after another to the file store (each an fsync),
	// must not outlast it on a loaded machine.
	e := engineFor(t, w, func(c *aac.Config) { c.BatchWindow, c.BatchMaxWait = 600*time.Millisecond, 3*time.Second })
	out := make([]runner.MessageOutcome, 8)
	var wg sync.WaitGroup
	for i := range out {
		wg.Go(func() {
			out[i] = runner.HandleMessage(context.Background(), e, []byte(fmt.Sprintf(`{"email":%q}`, emailN(i))), nil,
				core.Meta{Trigger: "sqs", MessageID: fmt.Sprintf("msg-%d", i)})
		})
	}
	wg.Wait()
	for i, o := range out {
		if o.Err != nil || o.Retry || o.Result.Targets["aac"].Status != core.StatusCreated {
			t.Errorf("record %d: %+v", i, o)
		}
	}
	if calls := invites(t, w); len(calls) != 1 || len(calls[0].Emails) != 8 {
		t.Fatalf("invite calls = %v, want one carrying all 8", calls)
	}
}
