package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/looker"
	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/core/sendgrid"
	"github.com/onboard-dev/onboard/core/sendgrid/sendgridtest"
	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/filestore"
	"github.com/onboard-dev/onboard/core/targets"
)

// world is a Looker and a SendGrid that outlive the onboard instances
// (engines) that come and go in these tests, as instances do in a cloud.
type world struct {
	cfg      *core.Config
	looker   *lookertest.Server
	sendgrid *sendgridtest.Server
}

func newWorld(t testing.TB, lookerOpts lookertest.Options) *world {
	t.Helper()
	cfg, err := targets.LoadConfig(configPath(t))
	if err != nil {
		t.Fatal(err)
	}
	return newWorldFor(t, cfg, lookerOpts)
}

// newWorldFor is a world whose Looker knows the roles, groups and
// attributes cfg's profiles name.
func newWorldFor(t testing.TB, cfg *core.Config, lookerOpts lookertest.Options) *world {
	t.Helper()
	w := &world{cfg: cfg, looker: lookertest.NewTestServer(t, lookerOpts), sendgrid: sendgridtest.NewTestServer(t, sendgridtest.Options{APIKey: sendgridKey})}
	looker.SeedFake(w.looker, cfg)
	return w
}

// instance is one onboard instance: its own Looker client (token, caches)
// and engine, sharing the world and the store with every other instance.
func (w *world) instance(t testing.TB, store state.Store, transport http.RoundTripper) *core.Engine {
	t.Helper()
	quiet := logging.New(io.Discard, slog.LevelError, nil)
	client := looker.New(looker.Config{BaseURL: w.looker.URL, ClientID: lookertest.DefaultClientID, ClientSecret: lookertest.DefaultClientSecret,
		Timeout: 10 * time.Second, BaseDelay: time.Millisecond, MaxDelay: time.Second}, transport)
	sg, err := sendgrid.New(sendgrid.Config{APIKey: sendgridKey, BaseURL: w.sendgrid.URL, HTTPClient: &http.Client{Transport: transport}})
	if err != nil {
		t.Fatal(err)
	}
	welcomer, err := sendgrid.NewWelcomer(sg, w.cfg.Email.From)
	if err != nil {
		t.Fatal(err)
	}
	return &core.Engine{Config: w.cfg, Targets: []core.Target{looker.NewTarget(client, looker.WelcomeByOnboard, quiet)},
		Mailer: welcomer, Store: store, Log: quiet, Lease: 300 * time.Millisecond}
}

func (w *world) assertOneUserOneEmail(t *testing.T, email string) {
	t.Helper()
	n := 0
	for _, u := range w.looker.Users() {
		if strings.EqualFold(u.Email, email) || (u.CredentialsEmail != nil && strings.EqualFold(u.CredentialsEmail.Email, email)) {
			n++
		}
	}
	if total := len(w.looker.Users()); n != 1 || total != 1 {
		t.Errorf("%d Looker users for %s (%d in all), want exactly 1", n, email, total)
	}
	if u, ok := w.looker.UserByEmail(email); ok {
		if got := w.looker.UserRoleIDs(u.ID); len(got) == 0 {
			t.Errorf("user %s has no roles: not complete", u.ID)
		}
		if got := w.looker.UserGroupIDs(u.ID); len(got) == 0 {
			t.Errorf("user %s has no groups: not complete", u.ID)
		}
	}
	if msgs := w.sendgrid.Messages(); len(msgs) != 1 {
		t.Errorf("%d welcome emails, want exactly 1", len(msgs))
	} else if !strings.Contains(msgs[0].Text, "/account/setup/") {
		t.Errorf("welcome without a setup link: %q", msgs[0].Text)
	}
}

func request(t testing.TB, email string) core.Request {
	t.Helper()
	req, err := core.Request{Email: email, Name: "Ada Lovelace", IdempotencyKey: "zap-" + email}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// deliverUntilDone redelivers like a queue does: on a retryable answer, again.
func deliverUntilDone(t testing.TB, e *core.Engine, req core.Request) core.Result {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := e.Handle(context.Background(), req, core.Meta{Trigger: "test"})
		if err == nil {
			return res
		}
		if !core.AsError(err).Retryable() || time.Now().After(deadline) {
			t.Fatalf("delivery failed for good: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func openFileStore(t testing.TB, dir string) state.Store {
	t.Helper()
	s, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// concurrentDeliveries sends n copies of one request at once, over several
// instances sharing store, and checks that exactly one ran.
func concurrentDeliveries(t *testing.T, w *world, store state.Store, n int) {
	t.Helper()
	engines := []*core.Engine{w.instance(t, store, nil), w.instance(t, store, nil), w.instance(t, store, nil)}
	for _, e := range engines {
		// Nothing crashes here: a production-length lease, so no delivery
		// takes over from a slow but live one.
		e.Lease = core.DefaultLease
	}
	req := request(t, "conc@example.com")
	var ran, busy atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := engines[i%len(engines)].Handle(context.Background(), req, core.Meta{Trigger: "test"})
			switch {
			case err == nil:
				ran.Add(1)
			case core.AsError(err).Status == http.StatusConflict && core.AsError(err).RetryAfter > 0:
				busy.Add(1)
			default:
				t.Errorf("delivery: %v", err)
			}
		}()
	}
	wg.Wait()
	if ran.Load()+busy.Load() != int32(n) || ran.Load() < 1 {
		t.Errorf("%d ran, %d told to retry, of %d", ran.Load(), busy.Load(), n)
	}
	res := deliverUntilDone(t, engines[0], req)
	if res.Status != core.StatusCreated {
		t.Errorf("a later duplicate got %q, want the stored first answer", res.Status)
	}
	w.assertOneUserOneEmail(t, "conc@example.com")
}

func TestConcurrentDeliveriesFileStore(t *testing.T) {
	w := newWorld(t, lookertest.Options{Latency: 5 * time.Millisecond})
	concurrentDeliveries(t, w, openFileStore(t, t.TempDir()), 50)
}

// TestTwoProcessesShareFileStore runs the same 50 deliveries from two OS
// processes on one store directory, both against this process's fakes.
func TestTwoProcessesShareFileStore(t *testing.T) {
	w := newWorld(t, lookertest.Options{Latency: 5 * time.Millisecond})
	dir := t.TempDir()
	var wg sync.WaitGroup
	outs := make([]string, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestDeliveryProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), "ONBOARD_TEST_PROCESS=1", "ONBOARD_TEST_STORE_DIR="+dir,
				"ONBOARD_TEST_LOOKER="+w.looker.URL, "ONBOARD_TEST_SENDGRID="+w.sendgrid.URL, "ONBOARD_TEST_DELIVERIES=25")
			out, err := cmd.CombinedOutput()
			outs[i] = string(out)
			if err != nil {
				t.Errorf("process %d: %v\n%s", i, err, out)
			}
		}()
	}
	wg.Wait()
	for i, out := range outs {
		if !strings.Contains(out, "ok-deliveries") {
			t.Errorf("process %d did not report:\n%s", i, out)
		}
	}
	w.assertOneUserOneEmail(t, "conc@example.com")
}

// TestDeliveryProcess is the body of one process of the test above; it
// does nothing when run on its own.
func TestDeliveryProcess(t *testing.T) {
	if os.Getenv("ONBOARD_TEST_PROCESS") != "1" {
		return
	}
	cfg, err := targets.LoadConfig(configPath(t))
	if err != nil {
		t.Fatal(err)
	}
	w := &world{cfg: cfg, looker: &lookertest.Server{URL: os.Getenv("ONBOARD_TEST_LOOKER")}, sendgrid: &sendgridtest.Server{URL: os.Getenv("ONBOARD_TEST_SENDGRID")}}
	store := openFileStore(t, os.Getenv("ONBOARD_TEST_STORE_DIR"))
	n, _ := strconv.Atoi(os.Getenv("ONBOARD_TEST_DELIVERIES"))
	e := w.instance(t, store, nil)
	req := request(t, "conc@example.com")
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deliverUntilDone(t, e, req)
		}()
	}
	wg.Wait()
	fmt.Println("ok-deliveries")
}

// deadSwitch simulates a process dying: once flipped, every call to Looker,
// SendGrid and the store fails, so nothing (not even a rollback or a lease
// release) gets out.
type deadSwitch struct {
	after int64 // outside calls allowed before death; <0 never dies
	calls atomic.Int64
}

var errDead = errors.New("process killed")

func (d *deadSwitch) dead() bool { return d.after >= 0 && d.calls.Load() >= d.after }

func (d *deadSwitch) RoundTrip(r *http.Request) (*http.Response, error) {
	if d.dead() {
		return nil, errDead
	}
	if r.URL.Path != "/api/4.0/login" {
		d.calls.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// deadStore fails every call once its switch is flipped.
type deadStore struct {
	state.Store
	sw *deadSwitch
}

func (s deadStore) Claim(ctx context.Context, key, fp, owner string, lease, ttl time.Duration) (state.ClaimOutcome, state.Record, error) {
	if s.sw.dead() {
		return 0, state.Record{}, errDead
	}
	return s.Store.Claim(ctx, key, fp, owner, lease, ttl)
}
func (s deadStore) Complete(ctx context.Context, key, owner string, result []byte, ttl time.Duration) error {
	if s.sw.dead() {
		return errDead
	}
	return s.Store.Complete(ctx, key, owner, result, ttl)
}
func (s deadStore) Renew(ctx context.Context, key, owner string, lease time.Duration) error {
	if s.sw.dead() {
		return errDead
	}
	return s.Store.Renew(ctx, key, owner, lease)
}
func (s deadStore) Release(ctx context.Context, key, owner string) error {
	if s.sw.dead() {
		return errDead
	}
	return s.Store.Release(ctx, key, owner)
}
func (s deadStore) Get(ctx context.Context, key string) (state.Value, error) {
	if s.sw.dead() {
		return state.Value{}, errDead
	}
	return s.Store.Get(ctx, key)
}
func (s deadStore) Put(ctx context.Context, key string, data []byte, v int64, ttl time.Duration) (int64, error) {
	if s.sw.dead() {
		return 0, errDead
	}
	return s.Store.Put(ctx, key, data, v, ttl)
}
func (s deadStore) Append(ctx context.Context, recs ...state.AuditRecord) error {
	if s.sw.dead() {
		return errDead
	}
	return s.Store.Append(ctx, recs...)
}

// TestCrashBetweenEverySteps kills an instance after each outside call of
// a new user's flow in turn (lookup, create, credential, each grant, setup
// link, email), then lets a fresh instance redeliver once the dead one's
// lease has run out: every time, one complete user and exactly one email.
func TestCrashBetweenEverySteps(t *testing.T) {
	// Count the outside calls of an uninterrupted run first.
	w := newWorld(t, lookertest.Options{})
	counter := &deadSwitch{after: -1}
	deliverUntilDone(t, w.instance(t, openFileStore(t, t.TempDir()), counter), request(t, "count@example.com"))
	steps := int(counter.calls.Load())
	if steps < 6 {
		t.Fatalf("only %d outside calls in a full run", steps)
	}
	for after := 1; after < steps; after++ {
		t.Run(fmt.Sprintf("killed after %d of %d calls", after, steps), func(t *testing.T) {
			w := newWorld(t, lookertest.Options{})
			store := openFileStore(t, t.TempDir())
			sw := &deadSwitch{after: int64(after)}
			req := request(t, "crash@example.com")
			if _, err := w.instance(t, deadStore{store, sw}, sw).Handle(context.Background(), req, core.Meta{Trigger: "test"}); err == nil {
				t.Fatal("the killed instance reported success")
			}
			res := deliverUntilDone(t, w.instance(t, store, nil), req)
			if res.Status != core.StatusCreated && res.Status != core.StatusUpdated && res.Status != core.StatusUnchanged {
				t.Errorf("redelivery: %+v", res)
			}
			w.assertOneUserOneEmail(t, "crash@example.com")
		})
	}
}

// callsBeforeCreate counts the outside calls a new user's flow makes
// before POST /users (login aside, as deadSwitch counts them).
func callsBeforeCreate(t *testing.T, req core.Request) int64 {
	t.Helper()
	w := newWorld(t, lookertest.Options{})
	deliverUntilDone(t, w.instance(t, openFileStore(t, t.TempDir()), nil), req)
	n := int64(0)
	for _, r := range w.looker.Requests() {
		if r.Method == http.MethodPost && r.Path == "/users" {
			return n
		}
		if r.Path != "/login" {
			n++
		}
	}
	t.Fatal("the flow made no POST /users")
	return 0
}

// A process that dies right after POST /users, before anything else is
// written, leaves a user only its mark identifies: with names or without,
// the redelivery finishes that user instead of making a second.
func TestCrashRightAfterCreateIsResumed(t *testing.T) {
	named := request(t, "resume@example.com")
	nameless, err := core.Request{Email: "resume@example.com", IdempotencyKey: "zap-nameless"}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	for name, req := range map[string]core.Request{"named": named, "nameless": nameless} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, lookertest.Options{})
			store := openFileStore(t, t.TempDir())
			sw := &deadSwitch{after: callsBeforeCreate(t, req) + 1}
			if _, err := w.instance(t, deadStore{store, sw}, sw).Handle(context.Background(), req, core.Meta{Trigger: "test"}); err == nil {
				t.Fatal("the killed instance reported success")
			}
			if n := w.looker.Count("POST", "/users"); n != 1 {
				t.Fatalf("POST /users reached Looker %d times before the crash", n)
			}
			deliverUntilDone(t, w.instance(t, store, nil), req)
			if n := w.looker.Count("POST", "/users"); n != 1 {
				t.Errorf("the redelivery created again (%d POST /users)", n)
			}
			w.assertOneUserOneEmail(t, "resume@example.com")
		})
	}
}

// A create whose connection was reset before Looker acted leaves its
// outcome unknown, and the journal says a create was under way. A user
// with the person's names and no login that does exist is someone else's:
// neither this delivery nor the redelivery may take it.
func TestUnknownCreateNeverAdoptsSameNamedStranger(t *testing.T) {
	w := newWorld(t, lookertest.Options{})
	stranger := w.looker.AddUser(lookertest.SeedUser{FirstName: "Ada", LastName: "Lovelace"})
	w.looker.InjectFault(lookertest.Fault{Method: "POST", Path: "/users", DropConnection: true, Times: 1})
	res := deliverUntilDone(t, w.instance(t, openFileStore(t, t.TempDir()), nil), request(t, "ada@example.com"))
	if res.Targets["looker"].ID == stranger {
		t.Fatalf("the stranger %s was adopted", stranger)
	}
	for _, u := range w.looker.Users() {
		if u.ID == stranger && (u.CredentialsEmail != nil || len(u.GroupIDs) != 0 || len(u.RoleIDs) != 0) {
			t.Errorf("the stranger was changed: %+v", u)
		}
	}
	if n := len(w.looker.Users()); n != 2 {
		t.Errorf("%d users, want the stranger and Ada's own", n)
	}
	if n := len(w.sendgrid.Messages()); n != 1 {
		t.Errorf("%d welcome emails", n)
	}
}

// A create Looker refused (429 beyond what the client waits) made nobody,
// so the retry has no one to look for and creates straight away.
func TestRefusedCreateLeavesNothingToLookFor(t *testing.T) {
	w := newWorld(t, lookertest.Options{})
	// Longer than the client sleeps (MaxDelay 1s), so the refusal reaches
	// the engine; the client then pauses its calls to Looker for it.
	w.looker.InjectFault(lookertest.Fault{Method: "POST", Path: "/users", Status: http.StatusTooManyRequests, RetryAfter: "2", Times: 1})
	deliverUntilDone(t, w.instance(t, openFileStore(t, t.TempDir()), nil), request(t, "ada@example.com"))
	if n := w.looker.Count("GET", "/users/search"); n != 0 {
		t.Errorf("%d searches for the user of a create Looker refused", n)
	}
	w.assertOneUserOneEmail(t, "ada@example.com")
}

// TestCancelledBetweenSteps cancels the request's context after each call:
// the instance lives on, rolls back what it half made and releases its
// claim, and the redelivery completes the job.
func TestCancelledBetweenSteps(t *testing.T) {
	for after := 1; after <= 8; after++ {
		t.Run(fmt.Sprintf("cancelled after %d calls", after), func(t *testing.T) {
			w := newWorld(t, lookertest.Options{})
			store := openFileStore(t, t.TempDir())
			ctx, cancel := context.WithCancel(context.Background())
			var calls atomic.Int64
			tr := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				resp, err := http.DefaultTransport.RoundTrip(r)
				if r.URL.Path != "/api/4.0/login" && calls.Add(1) == int64(after) {
					cancel()
				}
				return resp, err
			})
			req := request(t, "cancel@example.com")
			e := w.instance(t, store, tr)
			_, _ = e.Handle(ctx, req, core.Meta{Trigger: "test"})
			deliverUntilDone(t, e, req)
			w.assertOneUserOneEmail(t, "cancel@example.com")
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestIdempotencyKeyReusedForAnotherRequest(t *testing.T) {
	w := newWorld(t, lookertest.Options{})
	e := w.instance(t, openFileStore(t, t.TempDir()), nil)
	first, _ := core.Request{Email: "a@example.com", IdempotencyKey: "k-1"}.Normalize()
	second, _ := core.Request{Email: "b@example.com", IdempotencyKey: "k-1"}.Normalize()
	deliverUntilDone(t, e, first)
	before := len(w.looker.Requests())
	_, err := e.Handle(context.Background(), second, core.Meta{})
	if err == nil || core.AsError(err).Status != http.StatusUnprocessableEntity || core.AsError(err).Field != "idempotency_key" {
		t.Fatalf("got %v, want 422", err)
	}
	if n := len(w.looker.Requests()) - before; n != 0 {
		t.Errorf("a refused request made %d Looker calls", n)
	}
}

func TestAuditRecordsEveryWrite(t *testing.T) {
	w := newWorld(t, lookertest.Options{})
	store := openFileStore(t, t.TempDir())
	e := w.instance(t, store, nil)
	res := deliverUntilDone(t, e, request(t, "audit@example.com"))
	recs, err := store.Audit(context.Background(), state.AuditQuery{Person: "audit@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	writes := 0
	for _, r := range w.looker.Requests() {
		if r.Method != http.MethodGet && r.Path != "/login" {
			writes++
		}
	}
	writes += len(w.sendgrid.Messages())
	if len(recs) != writes {
		t.Errorf("%d audit records for %d writes", len(recs), writes)
	}
	ops := map[string]bool{}
	for _, r := range recs {
		ops[r.Target+" "+r.Operation] = true
		if r.RequestID != res.RequestID || r.IdempotencyKey != "zap-audit@example.com" || r.Trigger != "test" || r.Outcome != "ok" {
			t.Errorf("record %+v", r)
		}
		for _, secret := range []string{lookertest.DefaultClientSecret, sendgridKey} {
			if strings.Contains(fmt.Sprintf("%+v", r), secret) {
				t.Errorf("audit record carries a secret: %+v", r)
			}
		}
	}
	for _, want := range []string{"looker POST /users", "looker POST /users/{user_id}/credentials_email", "looker PUT /users/{user_id}/roles", "sendgrid send welcome email"} {
		if !ops[want] {
			t.Errorf("no audit record for %q (have %v)", want, ops)
		}
	}
}

// TestDryRunIsTheRealRunWithoutWrites: a dry run reads Looker for real,
// reports what the real run then does, and changes nothing anywhere.
func TestDryRunIsTheRealRunWithoutWrites(t *testing.T) {
	w := newWorld(t, lookertest.Options{})
	store := openFileStore(t, t.TempDir())
	e := w.instance(t, store, nil)
	req := request(t, "plan@example.com")
	plan := &core.Plan{}
	planned, err := e.Handle(core.WithPlan(context.Background(), plan), req, core.Meta{Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range w.looker.Requests() {
		if r.Method != http.MethodGet && r.Path != "/login" {
			t.Errorf("dry run wrote %s %s", r.Method, r.Path)
		}
	}
	if len(w.sendgrid.Messages()) != 0 {
		t.Error("dry run sent an email")
	}
	ops := map[string]bool{}
	for _, pw := range plan.Writes() {
		ops[pw.Target+" "+pw.Operation] = true
	}
	for _, want := range []string{"looker POST /users", "looker POST /users/{user_id}/credentials_email",
		"looker PUT /users/{user_id}/roles", "looker POST /groups/{group_id}/users", "sendgrid send welcome email"} {
		if !ops[want] {
			t.Errorf("plan lacks %q: %v", want, plan.Writes())
		}
	}
	if recs, _ := store.Audit(context.Background(), state.AuditQuery{}); len(recs) != 0 {
		t.Errorf("dry run left %d audit records", len(recs))
	}
	// The real run does what the plan said: not a stored answer, the work.
	real := deliverUntilDone(t, e, req)
	if real.Status != planned.Status || real.Targets["looker"].Status != planned.Targets["looker"].Status ||
		strings.Join(real.Targets["looker"].Changes, ",") != strings.Join(planned.Targets["looker"].Changes, ",") {
		t.Errorf("plan %+v, real run %+v", planned, real)
	}
	w.assertOneUserOneEmail(t, "plan@example.com")
	// Planning again for the existing user: nothing to change.
	again := &core.Plan{}
	res, err := e.Handle(core.WithPlan(context.Background(), again), mustNormalize(t, core.Request{Email: "plan@example.com", Name: "Ada Lovelace", IdempotencyKey: "k2"}), core.Meta{})
	if err != nil || res.Status != core.StatusUnchanged || len(again.Writes()) != 0 {
		t.Errorf("plan for a provisioned user: %+v %v %v", res, err, again.Writes())
	}
}

func mustNormalize(t *testing.T, r core.Request) core.Request {
	t.Helper()
	n, err := r.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A crash note and welcome ledger written before the journal moved into
// the person record are still honoured: the redelivery resumes the user
// that crash left half made, instead of making a second one, and sends
// the welcome that was owed, once.
func TestJournalOfThePreviousLayoutIsRead(t *testing.T) {
	w := newWorld(t, lookertest.Options{})
	store := openFileStore(t, t.TempDir())
	ctx := context.Background()
	req := request(t, "legacy@example.com")
	const mark = "legacy-mark"
	client := looker.New(looker.Config{BaseURL: w.looker.URL, ClientID: lookertest.DefaultClientID, ClientSecret: lookertest.DefaultClientSecret}, nil)
	halfMade, err := client.CreateUser(ctx, req.FirstName, req.LastName, map[string]string{"onboard_create": mark})
	if err != nil {
		t.Fatal(err)
	}
	// What the previous release left: its person record (no journal in
	// it), and the journal beside it.
	for key, value := range map[string]string{
		"person/legacy@example.com":                      `{"active":false,"updated_at":"2026-11-30T10:00:00Z"}`,
		"journal/legacy@example.com/looker/pending_user": "creating:" + mark,
		"journal/legacy@example.com/welcome":             `{"state":"due","request_id":"old","at":"2026-11-30T10:00:00Z"}`,
	} {
		if _, err := store.Put(ctx, key, []byte(value), 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	res := deliverUntilDone(t, w.instance(t, store, nil), req)
	if got := res.Targets["looker"].ID; got != string(halfMade.ID) {
		t.Errorf("provisioned Looker user %s, want the half-made %s resumed", got, halfMade.ID)
	}
	w.assertOneUserOneEmail(t, "legacy@example.com")
	record, _, err := core.ReadPerson(ctx, store, "legacy@example.com")
	if err != nil || !record.JournalKept || len(record.Notes) != 0 || record.Welcome.State != "sent" {
		t.Errorf("record %+v (%v): want the journal moved in, the note done with and the welcome sent", record, err)
	}
}
