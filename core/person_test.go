package core

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/filestore"
)

const twoProfiles = `default_profile: analyst
protected: [boss@example.com]
profiles:
  analyst:
    stub: {roles: [Viewer]}
  admin-lite:
    stub: {roles: [Developer]}
`

// grantingTarget keeps, per person, the roles it granted the way Looker
// does: read the current set, add the profile's, write the union back.
// It records the profile every deprovision acted by.
type grantingTarget struct {
	mu            sync.Mutex
	roles         map[string][]string
	deprovisioned []string // profile names
	pause         time.Duration
	running       atomic.Int32
	overlapped    atomic.Bool
}

func (*grantingTarget) Name() string          { return "granting" }
func (*grantingTarget) Handles(*Profile) bool { return true }

func (g *grantingTarget) Provision(ctx context.Context, p Person, prof *Profile) (TargetResult, error) {
	if g.running.Add(1) > 1 {
		g.overlapped.Store(true)
	}
	defer g.running.Add(-1)
	g.mu.Lock()
	current := slices.Clone(g.roles[p.Email])
	g.mu.Unlock()
	time.Sleep(g.pause) // the round trip between Looker's GET and PUT
	var added []string
	for _, r := range stubRoles(prof) {
		if !slices.Contains(current, r) {
			current = append(current, r)
			added = append(added, "role:"+r)
		}
	}
	g.mu.Lock()
	g.roles[p.Email] = current
	g.mu.Unlock()
	return TargetResult{Status: StatusUpdated, ID: "user-" + p.Email, Granted: added}, nil
}

// stubRoles reads the roles of a profile's stub section.
func stubRoles(prof *Profile) []string {
	var roles []string
	section, _ := prof.Section("stub").(map[string]any)
	list, _ := section["roles"].([]any)
	for _, r := range list {
		roles = append(roles, r.(string))
	}
	return roles
}

func (g *grantingTarget) Deprovision(_ context.Context, p Person, prof *Profile) (TargetResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.deprovisioned = append(g.deprovisioned, prof.Name)
	return TargetResult{Status: StatusDisabled, ID: p.Given["granting"].ID}, nil
}

func newGrantingEngine(t *testing.T, store state.Store) (*Engine, *grantingTarget) {
	t.Helper()
	cfg, err := ParseConfig([]byte(twoProfiles), stubSchema)
	if err != nil {
		t.Fatal(err)
	}
	if store == nil {
		if store, err = filestore.Open(t.TempDir()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
	}
	g := &grantingTarget{roles: map[string][]string{}}
	return &Engine{Config: cfg, Targets: []Target{g}, Store: store}, g
}

func handle(t *testing.T, e *Engine, r Request, meta Meta) (Result, error) {
	t.Helper()
	req, verr := r.Normalize()
	if verr != nil {
		t.Fatal(verr)
	}
	return e.Handle(context.Background(), req, meta)
}

// A deprovision acts by the profile the person was given, not the one the
// request names: an analyst (disable) sent a deprovision naming admin-lite
// (delete) is disabled. What onboard made is on record.
func TestDeprovisionActsByTheGivenProfile(t *testing.T) {
	e, g := newGrantingEngine(t, nil)
	if _, err := handle(t, e, Request{Email: "ada@example.com"}, Meta{Trigger: "http"}); err != nil {
		t.Fatal(err)
	}
	rec, _, err := ReadPerson(context.Background(), e.Store, "ADA@example.com")
	if err != nil || rec.Profile != "analyst" || !rec.Active || rec.Targets["granting"].ID != "user-ada@example.com" ||
		!slices.Equal(rec.Targets["granting"].Granted, []string{"role:Viewer"}) {
		t.Fatalf("person record after provisioning: %+v, %v", rec, err)
	}
	res, herr := handle(t, e, Request{Email: "ada@example.com", Action: ActionDeprovision, Profile: "admin-lite"}, Meta{Trigger: "http", Operator: false})
	if herr != nil {
		t.Fatal(herr)
	}
	if !slices.Equal(g.deprovisioned, []string{"analyst"}) || res.Targets["granting"].ID != "user-ada@example.com" {
		t.Errorf("deprovisioned by %v acting on %q, want the given analyst profile and the recorded user", g.deprovisioned, res.Targets["granting"].ID)
	}
	if rec, _, _ := ReadPerson(context.Background(), e.Store, "ada@example.com"); rec.Active || rec.Profile != "analyst" {
		t.Errorf("record after deprovisioning: %+v", rec)
	}
}

// Someone onboard never provisioned is not deprovisioned by a request, nor
// by an operator without --adopt; with it, by the profile they name.
func TestDeprovisionNeedsARecordOrAnOperatorsAdopt(t *testing.T) {
	e, g := newGrantingEngine(t, nil)
	stranger := Request{Email: "root@example.com", Action: ActionDeprovision}
	for _, meta := range []Meta{{Trigger: "http"}, {Trigger: "sqs", Adopt: true}, {Trigger: "cli", Operator: true}} {
		_, herr := handle(t, e, stranger, meta)
		if herr == nil || AsError(herr).Status != http.StatusForbidden || AsError(herr).Retryable() {
			t.Errorf("%+v: %v, want a permanent 403", meta, herr)
		}
	}
	if len(g.deprovisioned) != 0 {
		t.Fatalf("refused deprovisions reached the target: %v", g.deprovisioned)
	}
	if _, err := e.Store.Get(context.Background(), breakerKey); err == nil {
		t.Error("a refused deprovision was counted by the breaker")
	}
	adopt := stranger
	adopt.Profile = "admin-lite"
	if _, herr := handle(t, e, adopt, Meta{Trigger: "cli", Operator: true, Adopt: true}); herr != nil {
		t.Fatal(herr)
	}
	if !slices.Equal(g.deprovisioned, []string{"admin-lite"}) {
		t.Errorf("adopted deprovision acted by %v", g.deprovisioned)
	}
}

// A protected person is never deprovisioned, whoever asks.
func TestProtectedPeopleAreNeverDeprovisioned(t *testing.T) {
	e, g := newGrantingEngine(t, nil)
	if _, err := handle(t, e, Request{Email: "Boss@Example.com"}, Meta{Trigger: "http"}); err != nil {
		t.Fatal(err)
	}
	for _, meta := range []Meta{{Trigger: "http"}, {Trigger: "cli", Operator: true, Adopt: true, Force: true}} {
		_, herr := handle(t, e, Request{Email: "boss@example.com", Action: ActionDeprovision}, meta)
		if herr == nil || AsError(herr).Status != http.StatusForbidden || AsError(herr).Field != "email" {
			t.Errorf("%+v: %v, want 403 on email", meta, herr)
		}
	}
	if len(g.deprovisioned) != 0 {
		t.Errorf("a protected person was deprovisioned: %v", g.deprovisioned)
	}
}

// Two requests for one person at once are serialised by the person lease:
// Looker's roles are read, unioned and replaced, and without the lease the
// second write drops the first one's role while both answer "updated".
// The engines share a store, as two instances do.
func TestConcurrentRequestsForOnePersonKeepEveryGrant(t *testing.T) {
	first, g := newGrantingEngine(t, nil)
	second := &Engine{Config: first.Config, Targets: first.Targets, Store: first.Store}
	g.pause = 100 * time.Millisecond
	var wg sync.WaitGroup
	for _, run := range []struct {
		e       *Engine
		profile string
	}{{first, "analyst"}, {second, "admin-lite"}} {
		wg.Go(func() {
			if _, herr := handle(t, run.e, Request{Email: "ada@example.com", Profile: run.profile}, Meta{Trigger: "cli", Operator: true}); herr != nil {
				t.Error(herr)
			}
		})
	}
	wg.Wait()
	slices.Sort(g.roles["ada@example.com"])
	if got := g.roles["ada@example.com"]; !slices.Equal(got, []string{"Developer", "Viewer"}) || g.overlapped.Load() {
		t.Errorf("roles %v (overlapped: %v), want both profiles' roles", got, g.overlapped.Load())
	}
	rec, _, _ := ReadPerson(context.Background(), first.Store, "ada@example.com")
	if granted := rec.Targets["granting"].Granted; len(granted) != 2 || rec.LeaseOwner != "" {
		t.Errorf("record: %+v", rec)
	}
}

// A 409 tells the caller to come back soon, not after the whole lease.
func TestInProgressAnswerHasAShortRetryAfter(t *testing.T) {
	e, _ := newGrantingEngine(t, nil)
	e.Lease = time.Hour
	req, _ := Request{Email: "ada@example.com", IdempotencyKey: "k1"}.Normalize()
	if _, _, err := e.Store.Claim(context.Background(), "idempotency/k1", req.Fingerprint(), "someone", time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	_, herr := e.Handle(context.Background(), req, Meta{Trigger: "http"})
	if herr == nil || AsError(herr).Status != http.StatusConflict || AsError(herr).RetryAfter > 5*time.Second || AsError(herr).RetryAfter < time.Second {
		t.Errorf("in progress: %+v", herr)
	}
}

// Both leases are renewed while a request runs. A second request arriving
// after the first lease would have run out (the first takes 600 ms, its
// leases 150 ms) must not take over: for the same person under another key
// it waits for the person, then runs; for the same key (a redelivery) it
// answers 409, and the work is done once.
func TestLeasesAreRenewedWhileTheRequestRuns(t *testing.T) {
	for name, tc := range map[string]struct {
		key    string
		status int // of the second request; 0 for success
		runs   int32
	}{
		"person lease, another request":     {key: "other", runs: 2},
		"idempotency lease, the same again": {key: "form-7", status: http.StatusConflict, runs: 1},
	} {
		t.Run(name, func(t *testing.T) {
			first, g := newGrantingEngine(t, nil)
			first.Lease = 150 * time.Millisecond
			g.pause = 600 * time.Millisecond
			var runs atomic.Int32
			first.Targets = []Target{&countingTarget{Target: g, calls: &runs}}
			second := &Engine{Config: first.Config, Targets: first.Targets, Store: first.Store, Lease: first.Lease}
			var wg sync.WaitGroup
			wg.Go(func() {
				_, _ = handle(t, first, Request{Email: "ada@example.com", IdempotencyKey: "form-7"}, Meta{Trigger: "http"})
			})
			time.Sleep(300 * time.Millisecond)
			_, herr := handle(t, second, Request{Email: "ada@example.com", IdempotencyKey: tc.key}, Meta{Trigger: "http"})
			wg.Wait()
			if status := statusOf(herr); status != tc.status || runs.Load() != tc.runs || g.overlapped.Load() {
				t.Errorf("second request: %v; %d runs (overlapped: %v); want status %d and %d runs, one at a time",
					herr, runs.Load(), g.overlapped.Load(), tc.status, tc.runs)
			}
		})
	}
}

func statusOf(err error) int {
	if err == nil {
		return 0
	}
	return AsError(err).Status
}

type countingTarget struct {
	Target
	calls *atomic.Int32
}

func (c *countingTarget) Provision(ctx context.Context, p Person, prof *Profile) (TargetResult, error) {
	c.calls.Add(1)
	return c.Target.Provision(ctx, p, prof)
}

func openLeaseStore(t *testing.T) state.Store {
	t.Helper()
	store, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// The claim's winner takes over only a hold a duplicate of its key took
// a moment ago, never one a request has held for long (it may be running
// with a lapsed claim, or have crashed after creating), and never drops
// another request's mark.
func TestOnlyADuplicatesFreshHoldIsTakenOver(t *testing.T) {
	ctx := context.Background()
	const lease = 30 * time.Second
	for _, c := range []struct {
		name     string
		heldFor  time.Duration
		key      string
		takeOver bool
	}{
		{"a duplicate's fresh hold of the same key", time.Second, "k", true},
		{"an old hold of the same key", lease / 2, "k", false},
		{"a fresh hold of another key", time.Second, "other", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			store := openLeaseStore(t)
			holder := personHold{email: "p@example.com", owner: "dup", key: c.key, mark: true, lease: lease}
			if _, _, err := acquirePerson(ctx, store, holder, PersonRecord{}, 0); err != nil {
				t.Fatal(err)
			}
			rec, v, _ := ReadPerson(ctx, store, "p@example.com")
			rec.LeaseTaken = time.Now().Add(-c.heldFor)
			if v, _ = putPerson(ctx, store, "p@example.com", rec, v); v == 0 {
				t.Fatal("backdating the hold failed")
			}
			winner := personHold{email: "p@example.com", owner: "winner", key: "k", claimed: true, mark: true, lease: lease}
			held, _, err := acquirePerson(ctx, store, winner, rec, v)
			if c.takeOver != (err == nil) {
				t.Fatalf("took over: %v (err %v), want %v", err == nil, err, c.takeOver)
			}
			if err == nil && !slices.Equal(held.record().Unfinished, []string{"dup", "winner"}) {
				t.Errorf("unfinished %v: the holder's mark must stay", held.record().Unfinished)
			}
		})
	}
}

// A request settling its welcome after its release writes into a record
// another request may hold by then: the holder's renewals and release
// still succeed, and keep the settled welcome.
func TestSettledWelcomeDoesNotCostTheHolderItsLease(t *testing.T) {
	ctx := context.Background()
	store := openLeaseStore(t)
	first, _, err := acquirePerson(ctx, store, personHold{email: "p@example.com", owner: "a", key: "ka", mark: true, lease: time.Minute}, PersonRecord{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	first.stage(func(r *PersonRecord) { r.Welcome = welcomeRecord{State: welcomeSending, RequestID: "a"} })
	if _, err := first.release(ctx, true, func(*PersonRecord) {}); err != nil {
		t.Fatal(err)
	}
	rec, v, _ := ReadPerson(ctx, store, "p@example.com")
	second, _, err := acquirePerson(ctx, store, personHold{email: "p@example.com", owner: "b", key: "kb", mark: true, lease: time.Minute}, rec, v)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.settleWelcome(ctx, "a", welcomeRecord{State: welcomeSent, RequestID: "a", MessageID: "m1"}); err != nil {
		t.Fatal(err)
	}
	if err := second.write(ctx, func(r *PersonRecord) { r.setNote("x/y", "z") }); err != nil {
		t.Fatalf("the holder's write after the settle: %v", err)
	}
	if written, err := second.release(ctx, true, func(*PersonRecord) {}); !written || err != nil {
		t.Fatalf("the holder's release: written %v, %v", written, err)
	}
	if rec, _, _ := ReadPerson(ctx, store, "p@example.com"); rec.Welcome.State != welcomeSent || rec.Welcome.MessageID != "m1" || rec.Notes["x/y"] != "z" || rec.LeaseOwner != "" {
		t.Errorf("record %+v", rec)
	}
}

// A mover whose old grants are in a target this instance has no
// credentials for (a Periscope site no profile names any more) is moved:
// those grants stay recorded, for an instance that can take them back, and
// a warning names the target.
func TestMoverKeepsTheGrantsOfATargetNotConfiguredHere(t *testing.T) {
	e, _ := newGrantingEngine(t, nil)
	var logs strings.Builder
	e.Log = slog.New(slog.NewTextHandler(&logs, nil))
	retired := TargetRecord{ID: "7", Granted: []string{"group:Old"}}
	if _, err := putPerson(context.Background(), e.Store, "ada@example.com",
		PersonRecord{Profile: "admin-lite", Active: true, Targets: map[string]TargetRecord{"periscope:retired": retired}}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := handle(t, e, Request{Email: "ada@example.com", Profile: "analyst"}, Meta{}); err != nil {
		t.Fatal(err)
	}
	rec, _, err := ReadPerson(context.Background(), e.Store, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Profile != "analyst" || rec.MoveUnfinished || !slices.Equal(rec.Targets["periscope:retired"].Granted, retired.Granted) {
		t.Errorf("record %+v", rec)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "target=periscope:retired") {
		t.Errorf("no warning naming the target:\n%s", logs.String())
	}
}
