package targets

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/plugin"
	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/filestore"
)

// Every registered target honours the contract the engine relies on: a
// plan (dry run) sends its fake no write, and every write of a real run is
// in the audit log.
func TestTargetsConform(t *testing.T) {
	for _, target := range All {
		t.Run(target.Name, func(t *testing.T) {
			for _, problem := range conformance(t, target, func(cfg *core.Config) (*plugin.Fake, error) { return plugin.StartFake(target.Name, cfg, "") }) {
				t.Error(problem)
			}
		})
	}
}

// The check can fail: a target that writes without asking whether this is
// a plan, and without recording its write, is caught on both counts.
func TestConformanceCatchesAWriteHappyTarget(t *testing.T) {
	problems := conformance(t, writeHappy, writeHappyFake)
	joined := strings.Join(problems, "\n")
	if !strings.Contains(joined, "plan sent") || !strings.Contains(joined, "audit log has") {
		t.Fatalf("the write-happy target passed: %q", problems)
	}
}

// conformance runs target, against its fake, through a plan and a real run
// of a new person's provision and of their deprovision, and lists breaches.
func conformance(t *testing.T, target plugin.Target, startFake func(*core.Config) (*plugin.Fake, error)) []string {
	t.Helper()
	policy := "default_profile: p\nprofiles:\n  p:\n    " + target.Name + ": " + target.Example + "\n"
	if target.ExamplePolicy != "" {
		policy += target.Name + ": " + target.ExamplePolicy + "\n"
	}
	cfg, err := core.ParseConfig([]byte(policy), plugin.Schema([]plugin.Target{target}, nil, nil))
	if err != nil {
		t.Fatalf("the example policy: %v", err)
	}
	fake, err := startFake(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	store, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	built, err := target.New(context.Background(), plugin.Env{
		Config: cfg, Get: func(k string) string { return fake.Settings[k] },
		Secret: func(_ context.Context, k string) (string, error) { return fake.Settings[k], nil },
		Store:  store, Log: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	engine := &core.Engine{Config: cfg, Targets: built.Targets, Store: store, Log: quiet}

	var problems []string
	run := func(step string, action core.Action, plan *core.Plan) {
		ctx := context.Background()
		if plan != nil {
			ctx = core.WithPlan(ctx, plan)
		}
		req, _ := core.Request{Action: action, Email: "ada@example.com", Name: "Ada Lovelace", IdempotencyKey: step}.Normalize()
		before := len(fake.Writes())
		if _, err := engine.Handle(ctx, req, core.Meta{Trigger: "test", Operator: true}); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", step, err))
			return
		}
		sent := fake.Writes()[before:]
		switch {
		case plan != nil && len(sent) > 0:
			problems = append(problems, fmt.Sprintf("%s: the plan sent %d writes: %v", step, len(sent), sent))
		case plan != nil && len(plan.Writes()) == 0:
			problems = append(problems, step+": the plan lists no write")
		case plan == nil:
			audited := auditedWrites(t, store, target.Name)
			if len(audited) < len(fake.Writes()) {
				problems = append(problems, fmt.Sprintf("%s: %d writes reached the fake, the audit log has %d: %v", step, len(fake.Writes()), len(audited), fake.Writes()))
			}
			for _, r := range audited {
				if r.Resource == "" {
					problems = append(problems, fmt.Sprintf("%s: the audit record of %s names no resource (the ids an admin looks up)", step, r.Operation))
				}
			}
		}
	}
	run("plan provision", core.ActionProvision, &core.Plan{})
	run("provision", core.ActionProvision, nil)
	run("plan deprovision", core.ActionDeprovision, &core.Plan{})
	run("deprovision", core.ActionDeprovision, nil)
	return problems
}

func auditedWrites(t *testing.T, store state.Store, target string) []state.AuditRecord {
	t.Helper()
	records, err := store.Audit(context.Background(), state.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var mine []state.AuditRecord
	for _, r := range records {
		if r.Target == target || strings.HasPrefix(r.Target, target+":") {
			mine = append(mine, r)
		}
	}
	return mine
}

// writeHappy is the target the contract exists to stop: it sends its
// writes straight to its server, plan or not, and records none.
var writeHappy = plugin.Target{
	Name:    "writehappy",
	Example: "{}",
	Profile: func(*yaml.Node, *core.Profile) (any, error) { return struct{}{}, nil },
	New: func(_ context.Context, env plugin.Env) (*plugin.Built, error) {
		return &plugin.Built{Targets: []core.Target{writeHappyTarget{url: env.Get("WRITEHAPPY_URL")}}}, nil
	},
}

type writeHappyTarget struct{ url string }

func (writeHappyTarget) Name() string                 { return "writehappy" }
func (writeHappyTarget) Handles(p *core.Profile) bool { return p.Section("writehappy") != nil }
func (w writeHappyTarget) Provision(ctx context.Context, p core.Person, _ *core.Profile) (core.TargetResult, error) {
	return w.post(ctx, "/users/"+p.Email, core.StatusCreated)
}
func (w writeHappyTarget) Deprovision(ctx context.Context, p core.Person, _ *core.Profile) (core.TargetResult, error) {
	return w.post(ctx, "/users/"+p.Email+"/disable", core.StatusDisabled)
}

func (w writeHappyTarget) post(ctx context.Context, path string, status core.Status) (core.TargetResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url+path, nil)
	if err != nil {
		return core.TargetResult{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return core.TargetResult{}, err
	}
	_ = resp.Body.Close()
	return core.TargetResult{Status: status, ID: path}, nil
}

// writeHappyFake is writeHappy's server, which records every write.
func writeHappyFake(*core.Config) (*plugin.Fake, error) {
	var mu sync.Mutex
	var writes []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		writes = append(writes, r.Method+" "+r.URL.Path)
	}))
	return &plugin.Fake{Settings: map[string]string{"WRITEHAPPY_URL": srv.URL}, Close: srv.Close, Writes: func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), writes...)
	}}, nil
}
