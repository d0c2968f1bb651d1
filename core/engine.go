package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/state"
)

// Status is the outcome of a request for one target, or overall.
type Status string

const (
	StatusCreated   Status = "created"
	StatusUpdated   Status = "updated"
	StatusUnchanged Status = "unchanged"
	StatusDisabled  Status = "disabled"
	StatusDeleted   Status = "deleted"
)

// weight orders statuses by how much happened, to summarise several targets in one word.
var weight = map[Status]int{StatusUnchanged: 0, StatusUpdated: 1, StatusDisabled: 2, StatusDeleted: 3, StatusCreated: 4}

// TargetResult is what one target did for one request.
type TargetResult struct {
	Status  Status   `json:"status"`
	ID      string   `json:"id,omitempty"`
	Changes []string `json:"changes,omitempty"`
	// Welcome is set when this request gave the person access they did not
	// have (created or re-enabled), which is when a welcome email is due.
	Welcome bool `json:"-"`
	// SetupURL is a one-time password link: it goes into the email and nowhere else.
	SetupURL string `json:"-"`
	// Granted lists the grants this request added, in the target's own
	// terms ("role:7"), for the person record.
	Granted []string `json:"-"`
	// Revoked lists the recorded grants (TargetRecord.Granted) this request
	// took back, or found already gone: the record stops listing them.
	Revoked []string `json:"-"`
	// Profile is the profile this request provisioned the target by, for
	// the person record; the engine sets it, and leaves it empty where a
	// mover only took back grants (the target is still the old profile's).
	Profile string `json:"-"`
}

// Target is one outside system people are provisioned into.
type Target interface {
	Name() string
	// Handles says whether the profile configures this target.
	Handles(*Profile) bool
	Provision(context.Context, Person, *Profile) (TargetResult, error)
	// Deprovision acts by the profile's rule on what Person.Given records.
	// The profile is nil for a target the person moved away from when
	// their record does not say which profile provisioned them there:
	// the target then acts by the record alone, with its safest rule.
	Deprovision(context.Context, Person, *Profile) (TargetResult, error)
}

// Welcome is a rendered welcome email, ready for a Mailer.
type Welcome struct {
	To           Person
	Subject      string
	Text         string         // set for plain-text emails
	TemplateID   string         // set for provider templates
	TemplateData map[string]any // the template's variables
	RequestID    string
}

// Mailer delivers welcome emails and returns the provider's message id.
// A failure it wraps ErrNotDelivered is certain the provider did not take
// the email; any other may have been delivered, and is never sent again.
type Mailer interface {
	SendWelcome(context.Context, Welcome) (string, error)
}

// ErrNotDelivered marks a welcome the provider refused or was never
// reached with, so a retry may send it: at most one welcome per person.
var ErrNotDelivered = errors.New("the welcome email was not delivered")

// Meta is what the trigger knows about a request beyond its body.
type Meta struct {
	RequestID string // unique per delivery; generated when empty
	MessageID string // the platform's message id (Pub/Sub, SQS), the fallback idempotency key
	Trigger   string // http, pubsub, sqs, cli
	// Operator marks a request an operator runs on the CLI against the
	// store directly. It may choose a profile that is not requestable, and
	// only it can Adopt or Force. No webhook, queue or body can set it.
	Operator bool
	// ProfileByPolicy marks a request whose profile the policy chose, not
	// its sender (the SCIM group mapping): it may be one that is not
	// requestable, since no form or IdP picked it.
	ProfileByPolicy bool
	// Adopt lets a deprovision reach someone onboard has no record of.
	Adopt bool
	// Force lets a deprovision through an open breaker (it still counts).
	Force bool
}

// Result is the answer to one request.
type Result struct {
	Status         Status                  `json:"status"`
	Targets        map[string]TargetResult `json:"targets"`
	Email          string                  `json:"email,omitempty"` // "sent" when a welcome email went out
	RequestID      string                  `json:"request_id"`
	IdempotencyKey string                  `json:"-"`
	// Partial is what targets that failed had made before failing (a
	// user, grants), for the person record alone: the answer does not
	// count them as done, but a later move or leaver must find what they
	// made to take it back.
	Partial map[string]TargetResult `json:"-"`
}

// made is every target result the person record keeps.
func (r Result) made() map[string]TargetResult {
	made := make(map[string]TargetResult, len(r.Targets)+len(r.Partial))
	maps.Copy(made, r.Targets)
	maps.Copy(made, r.Partial)
	return made
}

// Engine runs requests against the configured targets. It holds no
// per-request state, so one Engine serves every concurrent request of an instance.
type Engine struct {
	Config  *Config
	Targets []Target
	Mailer  Mailer // sends the welcome when email.provider names a mailer
	Log     *slog.Logger
	// Store makes redeliveries exactly-once: idempotency records, the
	// welcome-email ledger and crash notes. Nil runs without them (tests of
	// single flows), where lookups alone keep retries from duplicating users.
	Store state.Store
	// Lease is how long a claimed request is someone's before a redelivery
	// may take it over (0: DefaultLease).
	Lease time.Duration
}

// DefaultLease is Engine.Lease's default; DefaultRecordTTL is how long a
// finished request's answer is kept for its duplicates.
const (
	DefaultLease     = 2 * time.Minute
	DefaultRecordTTL = 7 * 24 * time.Hour
)

// Mover is a target that can follow a person to another profile. Provision
// alone only adds: what the old profile granted would stay forever.
type Mover interface {
	// Move takes back the grants of given (what onboard granted here
	// before) that prof does not grant, leaving anything else, and when
	// prof configures this target also provisions as Provision does, in
	// the same sequence: the two would otherwise race over one
	// read-modify-write (Looker's roles, Periscope's membership). Taking
	// back something already gone succeeds, so a retry after a crash is
	// harmless. The result's Revoked lists what the record may drop.
	Move(ctx context.Context, p Person, prof *Profile, given TargetRecord) (TargetResult, error)
}

// SetupLinker is a target that can make a fresh setup link for someone who
// already exists, so a welcome resumed after a crash still carries one.
type SetupLinker interface {
	SetupLink(context.Context, Person, *Profile) (string, error)
}

// NewRequestID returns a random id for correlating logs, answers and emails.
func NewRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// IdempotencyKey picks the key a request is deduplicated on: the caller's,
// else the platform's message id, else the request's fingerprint.
func IdempotencyKey(req Request, meta Meta) string {
	switch {
	case req.IdempotencyKey != "":
		return req.IdempotencyKey
	case meta.MessageID != "":
		return meta.MessageID
	}
	return req.Fingerprint()
}

// Handle authorises a normalised request and applies it to every target its
// profile configures, at most once per idempotency key. On failure the
// returned Result still lists what each target that succeeded did.
func (e *Engine) Handle(ctx context.Context, req Request, meta Meta) (Result, error) {
	if meta.RequestID == "" {
		meta.RequestID = NewRequestID()
	}
	res := Result{Targets: map[string]TargetResult{}, RequestID: meta.RequestID, IdempotencyKey: IdempotencyKey(req, meta)}
	log := e.Logger().With("request_id", meta.RequestID, "idempotency_key", res.IdempotencyKey, "trigger", meta.Trigger, "action", string(req.Action))
	person, profile, perr := e.Config.Authorize(req, meta.Operator || meta.ProfileByPolicy)
	if perr == nil && req.Action == ActionDeprovision && e.Config.IsProtected(person.Email) {
		perr = Forbidden("email", "this person is on the policy's protected list and is never deprovisioned")
	}
	if perr != nil {
		refusal := AsError(perr)
		log.Warn("request refused by policy", "status", refusal.Status, "field", refusal.Field, "reason", refusal.Message)
		return res, perr
	}
	if e.Store == nil {
		if !e.Config.DomainAllowed(person.Email) {
			return res, errDomainNotAllowed()
		}
		return e.run(ctx, nil, req.Action, meta.Trigger, person, profile, res, log)
	}
	// A provision keyed by its caller (a key in the body, a message id)
	// has a key that does not depend on the person's record: it is
	// claimed while the record is read, one round trip instead of two.
	key := "idempotency/" + res.IdempotencyKey
	keyedByCaller := req.IdempotencyKey != "" || meta.MessageID != ""
	var early <-chan claimAnswer
	if keyedByCaller && req.Action == ActionProvision && PlanFrom(ctx) == nil {
		early = e.claimAsync(ctx, key, req.Fingerprint(), meta.RequestID)
	}
	record, version, err := ReadPerson(ctx, e.Store, person.Email)
	if err == nil && version > 0 && !record.JournalKept {
		err = readLegacyJournal(ctx, e.Store, person.Email, &record)
	}
	if err != nil {
		e.abandonClaim(ctx, early, key, meta.RequestID, log)
		return res, Unavailable("state", 0, err)
	}
	if req.Action == ActionDeprovision {
		if !record.Provisioned() && !e.Config.DomainAllowed(person.Email) {
			refusal := errDomainNotAllowed()
			log.Warn("request refused by policy", "status", refusal.Status, "field", refusal.Field, "reason", refusal.Message)
			return res, refusal
		}
		if profile, perr = e.givenProfile(record, profile, req.Profile, meta, log); perr != nil {
			return res, perr
		}
		person.Given = record.Targets
	}
	log = log.With("profile", profile.Name)
	if req.Action == ActionProvision && record.moves(profile.Name) {
		log.Info("moving the person from the profile they were given", "given_profile", record.Profile)
		person.Given = record.Targets
	}
	if PlanFrom(ctx) != nil {
		// A dry run leaves no trace: no claim, no journal, no audit record.
		return e.run(ctx, nil, req.Action, meta.Trigger, person, profile, res, log)
	}

	if !keyedByCaller {
		// Keyed by its content alone, and content can be a new intent:
		// someone hired, let go and hired again sends the first request
		// again word for word. So the key also carries how often the
		// opposite action has completed; a duplicate delivery in between
		// still finds the first answer.
		key += fmt.Sprintf("/%s-%d", opposite(req.Action), record.Actions[opposite(req.Action)])
	}
	if early == nil {
		early = e.claimAsync(ctx, key, req.Fingerprint(), meta.RequestID)
	}
	// A provision takes the person while its key is claimed, one round
	// trip for both, when nobody holds it; a duplicate gives the person
	// back at once. (A deprovision passes the breaker first, which may
	// refuse it.)
	hold := personHold{email: person.Email, owner: meta.RequestID, key: key, mark: req.Action == ActionProvision, lease: e.lease()}
	var personHeld <-chan leaseAnswer
	if req.Action == ActionProvision && (record.LeaseOwner == "" || !time.Now().Before(record.LeaseUntil)) {
		personHeld = e.tryAcquireAsync(ctx, hold, record, version)
		defer func() { e.giveBack(ctx, personHeld, log) }()
	}
	answer := <-early
	claim, rec, err := answer.outcome, answer.record, answer.err
	if _, panicked := errors.AsType[*Error](err); panicked {
		return res, err
	}
	if err != nil {
		return res, Unavailable("state", 0, err)
	}
	switch claim {
	case state.InProgress:
		wait := conflictRetryAfter(time.Until(rec.LeaseUntil))
		log.Info("same request in progress elsewhere", "retry_after", wait.String())
		return res, errInProgress(wait)
	case state.Mismatch:
		log.Warn("idempotency key reused for a different request")
		return res, &Error{Status: http.StatusUnprocessableEntity, Field: "idempotency_key",
			Message: "this idempotency key was already used with a different request"}
	case state.Completed:
		var stored Result
		if err := json.Unmarshal(rec.Result, &stored); err != nil {
			return res, &Error{Status: http.StatusInternalServerError, Message: "stored result unreadable", Err: err}
		}
		log.Info("duplicate delivery: answering with the stored result", "first_request_id", stored.RequestID)
		stored.IdempotencyKey = res.IdempotencyKey
		return stored, nil
	}
	// Renewed while the request runs: a slow run must not be taken over by
	// a redelivery, which would do the work a second time.
	stopRenewing := state.KeepLease(ctx, e.Store, key, meta.RequestID, e.lease(), func(err error) {
		log.Warn("the idempotency lease could not be kept; a redelivery may run this request again", "error", err.Error())
	})
	defer stopRenewing()
	// The record outlives a cancelled request: recording the outcome is what
	// keeps the next delivery from redoing or blocking on the work.
	bg := context.WithoutCancel(ctx)
	release := func(cerr error) (Result, error) {
		stopRenewing()
		if err := e.Store.Release(bg, key, meta.RequestID); err != nil {
			log.Warn("releasing the idempotency record failed; a retry waits for the lease", "error", err.Error())
		}
		return res, cerr
	}
	if req.Action == ActionDeprovision {
		opened, berr := admitDeprovision(ctx, e.Store, *e.Config.MaxDeprovision, key, meta.RequestID, meta.Operator && meta.Force)
		if opened {
			log.Log(ctx, logging.LevelCritical, "deprovision breaker opened: more than max_deprovision deprovisions within an hour; "+
				"every deprovision now waits until an operator runs onboard breaker release", "max_deprovision", *e.Config.MaxDeprovision)
		}
		if berr != nil {
			log.Warn("deprovision refused by the breaker", "status", AsError(berr).Status)
			return release(berr)
		}
	}
	var (
		held *personLease
		wait time.Duration
	)
	tried := personHeld != nil
	if tried {
		a := <-personHeld
		personHeld = nil // taken: not given back on the way out
		held, err = a.held, a.err
	}
	if !tried || errors.Is(err, errPersonBusy) {
		// Waiting for another request's hold on the person is for the
		// claim's winner alone.
		hold.claimed, hold.wait = true, personWait
		held, wait, err = acquirePerson(ctx, e.Store, hold, record, version)
	}
	if errors.Is(err, errPersonBusy) {
		wait = conflictRetryAfter(wait)
		log.Info("another request is changing this person", "retry_after", wait.String())
		return release(errInProgress(wait))
	}
	if err != nil {
		return release(Unavailable("state", 0, err))
	}
	stopKeeping := held.keep(ctx)
	defer stopKeeping() // also on a panic: a renewal left running would hold the person forever
	res, cerr := e.run(ctx, held, req.Action, meta.Trigger, person, profile, res, log)
	// The welcome's hand-over ("sending") rides on the record's write that
	// ends the lease, so it is durable before the mailer sees the email and
	// costs no write of its own.
	owed := cerr == nil && req.Action == ActionProvision && e.claimWelcome(held, res, log)
	stopKeeping()
	written, err := held.release(bg, cerr == nil, func(r *PersonRecord) { r.applied(req.Action, profile.Name, res.made(), cerr == nil) })
	if err != nil {
		// Every step is idempotent, so the next request redoes lookups at worst.
		log.Warn("recording what was done for the person failed", "error", err.Error())
	}
	if owed && !written {
		// Not handed over: the retry finds it owed again.
		owed, cerr = false, Unavailable("state", 0, err)
	}
	if cerr != nil {
		return release(cerr)
	}
	var after []func(context.Context)
	if owed {
		sent, last, err := e.handOverWelcome(ctx, held, meta.Trigger, person, profile, res, log)
		after = append(after, last)
		if sent {
			res.Email = "sent"
		}
		if err != nil {
			// The ledger first: a retry let in by the release must find
			// the welcome owed again when it certainly was not sent.
			parallelTasks(bg, after)
			return release(err)
		}
	}
	stopRenewing()
	after = append(after, func(ctx context.Context) {
		data, err := json.Marshal(res)
		if err == nil {
			err = e.Store.Complete(ctx, key, meta.RequestID, data, DefaultRecordTTL)
		}
		if err != nil {
			// The work is done and every step is idempotent, so a duplicate
			// would only redo lookups; not worth failing the request over.
			log.Warn("recording the result failed", "error", err.Error())
		}
	})
	parallelTasks(bg, after)
	log.Info("request done", "outcome", string(res.Status))
	return res, nil
}

// parallelTasks runs fns at once and waits for them all: independent
// store writes, one round trip together.
func parallelTasks(ctx context.Context, fns []func(context.Context)) {
	parallel(ctx, len(fns), func(i int) { fns[i](ctx) })
}

type claimAnswer struct {
	outcome state.ClaimOutcome
	record  state.Record
	err     error
}

// claimAsync claims key in a goroutine of its own and answers on the channel.
func (e *Engine) claimAsync(ctx context.Context, key, fingerprint, owner string) <-chan claimAnswer {
	answer := make(chan claimAnswer, 1)
	go func() {
		var a claimAnswer
		if panicked := Safely(func() error {
			a.outcome, a.record, a.err = e.Store.Claim(ctx, key, fingerprint, owner, e.lease(), DefaultRecordTTL)
			return nil
		}); panicked != nil {
			// Answered as what it is, a bug (500), not as the store being down.
			e.Logger().Error("panic while claiming an idempotency key; the request fails alone", "request_id", owner, "error", errors.Unwrap(panicked).Error())
			a.err = panicked
		}
		answer <- a
	}()
	return answer
}

type leaseAnswer struct {
	held *personLease
	err  error
}

// tryAcquireAsync takes the person's lease for a provision in a goroutine
// of its own, if no other request holds it: waiting for one is for a
// request that has won its claim (a duplicate's is given back at once).
func (e *Engine) tryAcquireAsync(ctx context.Context, h personHold, record PersonRecord, version int64) <-chan leaseAnswer {
	answer := make(chan leaseAnswer, 1)
	go func() {
		var a leaseAnswer
		if panicked := Safely(func() error {
			a.held, _, a.err = acquirePerson(ctx, e.Store, h, record, version)
			return nil
		}); panicked != nil {
			e.Logger().Error("panic while taking the person lease; the request fails alone", "request_id", h.owner, "error", errors.Unwrap(panicked).Error())
			a.err = panicked
		}
		answer <- a
	}()
	return answer
}

// giveBack releases, unchanged, a person lease taken for a request that
// goes no further (a duplicate, a key in use).
func (e *Engine) giveBack(ctx context.Context, acquired <-chan leaseAnswer, log *slog.Logger) {
	if acquired == nil {
		return
	}
	if a := <-acquired; a.err == nil {
		// Taken over by the key's owner is what a duplicate's hold is for.
		if _, err := a.held.release(context.WithoutCancel(ctx), false, func(*PersonRecord) {}); err != nil && !errors.Is(err, errLeaseTakenOver) {
			log.Warn("giving back the person lease failed; the next request for this person waits for it", "error", err.Error())
		}
	}
}

// abandonClaim gives back a claim taken early for a request that goes no
// further, so its retry need not wait for the lease.
func (e *Engine) abandonClaim(ctx context.Context, early <-chan claimAnswer, key, owner string, log *slog.Logger) {
	if early == nil {
		return
	}
	if a := <-early; a.err == nil && a.outcome == state.Claimed {
		if err := e.Store.Release(context.WithoutCancel(ctx), key, owner); err != nil {
			log.Warn("releasing the idempotency record failed; a retry waits for the lease", "error", err.Error())
		}
	}
}

// personWait is how long a request waits for another one changing the
// same person before answering 409: most requests take well under this.
const personWait = 5 * time.Second

// conflictRetryAfter is the Retry-After of a 409: the other request
// usually ends long before its lease would, so a short hint gets the
// first one's result sooner; never more than the lease has left.
func conflictRetryAfter(leaseLeft time.Duration) time.Duration {
	return max(min(leaseLeft, 5*time.Second), time.Second).Round(time.Second)
}

func errInProgress(wait time.Duration) *Error {
	return &Error{Status: http.StatusConflict, RetryAfter: wait,
		Message: "the same request is being processed right now; resend later to get its result"}
}

// givenProfile is the profile a deprovision acts by: the one the person
// was given, from their record, whatever the request names. Only an
// operator on the CLI with --adopt may deprovision someone onboard has no
// record of, by the profile they name.
func (e *Engine) givenProfile(record PersonRecord, requested *Profile, named string, meta Meta, log *slog.Logger) (*Profile, error) {
	if !record.Provisioned() {
		if meta.Operator && meta.Adopt {
			log.Warn("deprovisioning someone onboard has no record of, as an operator asked (--adopt)", "profile", requested.Name)
			return requested, nil
		}
		log.Warn("deprovision refused: onboard never provisioned this person")
		return nil, Forbidden("email", "onboard has no record of provisioning this person, so it will not deprovision them; "+
			"an operator can, with onboard provision --deprovision --adopt")
	}
	given := e.Config.Profiles[record.Profile]
	if given == nil {
		return nil, Forbidden("profile", "the profile this person was given (%s) is no longer in the policy; "+
			"an operator can deprovision them with onboard provision --deprovision --adopt --profile NAME", record.Profile)
	}
	if named != "" && named != given.Name {
		log.Warn("deprovision names another profile than the one the person was given; acting by the given one",
			"requested_profile", requested.Name, "given_profile", given.Name)
	}
	return given, nil
}

// applied records what a request did: which targets acted (kept even when
// another failed, so a later deprovision reaches them) and, when it
// completed, the action and the profile now given.
func (r *PersonRecord) applied(action Action, profile string, results map[string]TargetResult, completed bool) {
	if action == ActionProvision && len(results) > 0 {
		r.MoveUnfinished = !completed && r.moves(profile)
		r.Profile = profile
		r.Active = true
		r.merge(results)
	}
	if !completed {
		return
	}
	if action == ActionDeprovision {
		r.Active = false
	}
	if r.Actions == nil {
		r.Actions = map[Action]int64{}
	}
	r.Actions[action]++
}

func opposite(a Action) Action {
	if a == ActionDeprovision {
		return ActionProvision
	}
	return ActionDeprovision
}

// run applies the request to the profile's targets, then sends a welcome if due.
// held is the person lease, nil without a store or in a plan: then nothing
// is journaled or audited.
func (e *Engine) run(ctx context.Context, held *personLease, action Action, trigger string, person Person, profile *Profile, res Result, log *slog.Logger) (Result, error) {
	targets := e.targetsFor(profile)
	if len(targets) == 0 {
		return res, &Error{Status: http.StatusInternalServerError, Message: "profile " + profile.Name + " configures no target that this instance has credentials for"}
	}
	targets = append(targets, e.leftBehind(action, profile, person.Given, log)...)
	var journal *Journal
	var store state.Store
	if held != nil {
		journal, store = &Journal{lease: held, requestID: res.RequestID}, held.store
	}
	ctx = WithJournal(ctx, journal)
	aud := &auditor{store: store, log: log, base: state.AuditRecord{
		RequestID: res.RequestID, IdempotencyKey: res.IdempotencyKey, Trigger: trigger, Person: person.Email,
	}}
	ctx = withAuditor(ctx, aud)
	// Written beside the request's last store writes, not before them; and
	// on every way out, a failure's writes included.
	if held != nil {
		held.onRelease(aud.flush)
	}
	outcomes := make([]outcome, len(targets))
	parallel(ctx, len(targets), func(i int) {
		prof := profile
		if action == ActionDeprovision {
			prof = e.leaverProfile(targets[i], profile, person.Given[targets[i].Name()])
		}
		outcomes[i] = runTarget(ctx, targets[i], action, person, prof)
	})

	var failures []*Error
	for _, o := range outcomes {
		if o.err != nil {
			log.Error("target failed", "target", o.target, "status", o.err.Status, "error", o.err.Error(), "cause", errText(o.err.Err))
			failures = append(failures, o.err)
			if len(o.result.Granted) > 0 {
				// Only what it added: a grant it may not have taken back
				// stays listed, as taking back one already gone is
				// harmless and one dropped while still held is never taken.
				if res.Partial == nil {
					res.Partial = map[string]TargetResult{}
				}
				res.Partial[o.target] = TargetResult{ID: o.result.ID, Granted: o.result.Granted, Profile: o.result.Profile}
			}
			continue
		}
		log.Info("target done", "target", o.target, "outcome", string(o.result.Status), "changes", o.result.Changes)
		res.Targets[o.target] = o.result
	}
	res.Status = summarise(res.Targets)
	if len(failures) > 0 {
		return res, mostActionable(failures)
	}
	switch {
	case action == ActionDeprovision:
		journal.resetWelcome()
	case held == nil:
		// Without a store there is no ledger: the welcome goes now, and
		// Handle's hand-over is for a request holding the person.
		sent, err := e.welcome(ctx, person, profile, res, log)
		if sent {
			res.Email = "sent"
		}
		if err != nil {
			return res, err
		}
	}
	if held == nil {
		log.Info("request done", "outcome", string(res.Status))
	}
	return res, nil
}

type outcome struct {
	target string
	result TargetResult
	err    *Error
}

func runTarget(ctx context.Context, t Target, action Action, p Person, prof *Profile) (o outcome) {
	// A target runs in a goroutine of its own, where a panic would kill the
	// process and every request in it; it becomes this request's failure
	// (500, retryable: the bug may be a moment's), stack in the log.
	defer func() {
		if v := recover(); v != nil {
			o = outcome{target: t.Name(), err: &Error{Status: http.StatusInternalServerError, Target: t.Name(),
				Message: "internal error", Err: fmt.Errorf("panic in target %s: %v\n%s", t.Name(), v, debug.Stack())}}
		}
	}()
	var (
		r   TargetResult
		err error
	)
	mover, _ := t.(Mover)
	given := p.Given[t.Name()]
	switch {
	case action == ActionDeprovision:
		r, err = t.Deprovision(ctx, p, prof)
	case mover != nil && len(given.Granted) > 0:
		r, err = mover.Move(ctx, p, prof, given)
	default:
		r, err = t.Provision(ctx, p, prof)
	}
	if action == ActionProvision && t.Handles(prof) {
		r.Profile = prof.Name
	}
	o = outcome{target: t.Name(), result: r}
	if err != nil {
		o.err = AsError(err)
		if o.err.Target == "" {
			o.err.Target = t.Name()
		}
	}
	return o
}

func (e *Engine) targetsFor(p *Profile) []Target {
	var ts []Target
	for _, t := range e.Targets {
		if t.Handles(p) {
			ts = append(ts, t)
		}
	}
	return ts
}

// leftBehind are the targets the person's record names that the profile
// does not configure at all: ones they moved away from. A mover's only take
// back the grants onboard made there; a move leaves the user, as a move is
// a provision, which no breaker or protected list guards. A leaver's are
// deprovisioned (see leaverProfile): the person leaves, so nothing onboard
// made stays enabled for them anywhere. A target this instance has no
// credentials for (one no profile names any more) cannot be reached:
// rather than fail every request for the person, what onboard made there
// stays, still recorded, with a warning for an admin.
func (e *Engine) leftBehind(action Action, profile *Profile, given map[string]TargetRecord, log *slog.Logger) []Target {
	var ts []Target
	for _, name := range sortedKeys(given) {
		if action == ActionProvision && len(given[name].Granted) == 0 {
			continue
		}
		i := slices.IndexFunc(e.Targets, func(t Target) bool { return t.Name() == name })
		if i < 0 {
			log.Warn("the person record names a target this instance has no credentials for: what onboard made there stays, and stays recorded",
				"target", name, "user_id", given[name].ID, "grants", len(given[name].Granted))
			continue
		}
		if e.Targets[i].Handles(profile) {
			continue
		}
		if _, ok := e.Targets[i].(Mover); ok || action == ActionDeprovision {
			ts = append(ts, e.Targets[i])
		}
	}
	return ts
}

// leaverProfile is the profile a deprovision acts by in t: the one the
// person leaves with, or, in a target they moved away from, the one that
// provisioned them there, whose rule (disable or delete, which workspace)
// they were given for it. Without one (a record written before targets
// noted it, or a profile the policy no longer has for t) it is nil, and t
// acts by its safest rule: the policy's other profiles that name t may
// disagree (delete or disable, which workspace), and a guess could hard
// delete, which only the profile the person was given may ask for.
func (e *Engine) leaverProfile(t Target, profile *Profile, given TargetRecord) *Profile {
	if t.Handles(profile) {
		return profile
	}
	if p := e.Config.Profiles[given.Profile]; p != nil && t.Handles(p) {
		return p
	}
	return nil
}

func (e *Engine) welcomeDue(res Result) bool {
	for _, r := range res.Targets {
		if r.Welcome {
			return true
		}
	}
	return false
}

// mailsWelcome says whether onboard, not the target, sends the welcome.
func (e *Engine) mailsWelcome() bool { return e.Config.Email.ByMailer() && e.Mailer != nil }

// welcome sends onboard's welcome email through the mailer when this
// request gave someone new access, for a request without a store (or a
// plan): no ledger keeps it to once per person. A target that sends its
// own (email.provider names it) does so itself.
func (e *Engine) welcome(ctx context.Context, p Person, profile *Profile, res Result, log *slog.Logger) (sent bool, _ error) {
	if !e.mailsWelcome() || !e.welcomeDue(res) {
		return false, nil
	}
	if plan := PlanFrom(ctx); plan != nil {
		plan.Add(e.Config.Email.Provider, "send welcome email", p.Email)
		return false, nil
	}
	id, err := e.sendWelcome(ctx, p, profile, res)
	if err != nil {
		log.Error("welcome email failed", "status", AsError(err).Status, "error", err.Error(), "cause", errText(errors.Unwrap(err)))
		return false, err
	}
	log.Info("welcome email sent", "message_id", id)
	return true, nil
}

// claimWelcome stages, in the held record, the hand-over of a welcome that
// is owed (due in the ledger, or due now as this request gave new access):
// the ledger makes it at most once per person, due, then sending, then
// sent. It reports whether this request is the one to send it, once the
// record is written.
func (e *Engine) claimWelcome(held *personLease, res Result, log *slog.Logger) bool {
	if !e.mailsWelcome() {
		return false
	}
	j := &Journal{lease: held, requestID: res.RequestID}
	due := e.welcomeDue(res)
	won := j.claimWelcome(due)
	if !won && due && j.welcomeState() == welcomeSending {
		log.Warn("a welcome email for this person was handed to the mailer before and its outcome is unknown; not sending another (search the mailer's activity for the request id)", "mailer", e.Config.Email.Provider)
	}
	return won
}

// handOverWelcome sends the welcome claimed in the record just written.
// last records how it went (in the ledger, and the send in the audit
// log): the caller runs it beside its own last writes.
func (e *Engine) handOverWelcome(ctx context.Context, held *personLease, trigger string, p Person, profile *Profile, res Result, log *slog.Logger) (sent bool, last func(context.Context), _ error) {
	aud := &auditor{store: e.Store, log: log, base: state.AuditRecord{
		RequestID: res.RequestID, IdempotencyKey: res.IdempotencyKey, Trigger: trigger, Person: p.Email,
	}}
	id, err := e.sendWelcome(withAuditor(ctx, aud), p, profile, res)
	var ledger welcomeRecord
	switch {
	case err == nil:
		ledger = welcomeRecord{State: welcomeSent, RequestID: res.RequestID, MessageID: id, At: time.Now().UTC()}
		log.Info("welcome email sent", "message_id", id)
	case errors.Is(err, ErrNotDelivered):
		// Certainly not sent: owed again, for the retry.
		ledger = welcomeRecord{State: welcomeDue, RequestID: res.RequestID, At: time.Now().UTC()}
	default:
		// Left "sending": the provider may have taken it (a 5xx after the
		// send, a timeout), and a second email is worse than a lost answer.
		log.Warn("the welcome email's outcome is unknown; it will not be sent again (search the provider's activity for the request id)")
	}
	if err != nil {
		log.Error("welcome email failed", "status", AsError(err).Status, "error", err.Error(), "cause", errText(errors.Unwrap(err)))
	}
	last = func(ctx context.Context) {
		var wg sync.WaitGroup
		wg.Go(func() { aud.flush(ctx) })
		if ledger.State != "" {
			if lerr := held.settleWelcome(ctx, res.RequestID, ledger); lerr != nil {
				log.Warn("recording the welcome email's state failed", "error", lerr.Error())
			}
		}
		wg.Wait()
	}
	return err == nil, last, err
}

func (e *Engine) sendWelcome(ctx context.Context, p Person, profile *Profile, res Result) (string, error) {
	var setupURL string
	for _, name := range sortedKeys(res.Targets) {
		if u := res.Targets[name].SetupURL; u != "" {
			setupURL = u
			break
		}
	}
	linker := "setup link"
	if setupURL == "" {
		// Resumed after a crash: the run that created the user made a link
		// we never saw; ask for a fresh one (it invalidates the old).
		for _, t := range e.targetsFor(profile) {
			if sl, ok := t.(SetupLinker); ok {
				linker = t.Name()
				u, err := sl.SetupLink(ctx, p, profile)
				if err != nil {
					return "", AsError(err)
				}
				if u != "" {
					setupURL = u
					break
				}
			}
		}
	}
	if setupURL == "" {
		// A welcome without its link is worse than a late one: keep it due.
		return "", Unavailable(linker, 0, errors.New("no setup link could be made for the welcome email yet"))
	}
	cfg := e.Config.Email
	w := Welcome{To: p, Subject: cfg.Subject, TemplateID: cfg.TemplateID, RequestID: res.RequestID}
	if cfg.TemplateID != "" {
		w.TemplateData = map[string]any{"first_name": p.FirstName, "last_name": p.LastName, "email": p.Email, "setup_url": setupURL}
	} else {
		text, err := e.Config.RenderWelcomeText(WelcomeData{FirstName: p.FirstName, LastName: p.LastName, Email: p.Email, SetupURL: setupURL})
		if err != nil {
			return "", &Error{Status: http.StatusInternalServerError, Message: "rendering the welcome email failed", Err: err}
		}
		w.Text = text
	}
	id, err := e.Mailer.SendWelcome(ctx, w)
	RecordWrite(ctx, cfg.Provider, "send welcome email", p.Email, err)
	if err != nil {
		ce := AsError(err)
		if ce.Target == "" {
			ce.Target = cfg.Provider
		}
		return "", ce
	}
	return id, nil
}

func (e *Engine) lease() time.Duration {
	if e.Lease > 0 {
		return e.Lease
	}
	return DefaultLease
}

func summarise(results map[string]TargetResult) Status {
	s := StatusUnchanged
	for _, r := range results {
		if weight[r.Status] > weight[s] {
			s = r.Status
		}
	}
	return s
}

// mostActionable picks the error to answer with when several targets failed.
// A retryable one wins: resending then gives every target another chance,
// while answering "permanent" would make a queue drop a partly done request.
func mostActionable(errs []*Error) *Error {
	for _, e := range errs {
		if e.Retryable() {
			return e
		}
	}
	return errs[0]
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (e *Engine) Logger() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.Default()
}
