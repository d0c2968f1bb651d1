package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sort"
	"time"

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
}

// Target is one outside system people are provisioned into.
type Target interface {
	Name() string
	// Handles says whether the profile configures this target.
	Handles(*Profile) bool
	Provision(context.Context, Person, *Profile) (TargetResult, error)
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
type Mailer interface {
	SendWelcome(context.Context, Welcome) (string, error)
}

// Meta is what the trigger knows about a request beyond its body.
type Meta struct {
	RequestID string // unique per delivery; generated when empty
	MessageID string // the platform's message id (Pub/Sub, SQS), the fallback idempotency key
	Trigger   string // http, pubsub, sqs, cli
}

// Result is the answer to one request.
type Result struct {
	Status         Status                  `json:"status"`
	Targets        map[string]TargetResult `json:"targets"`
	Email          string                  `json:"email,omitempty"` // "sent" when a welcome email went out
	RequestID      string                  `json:"request_id"`
	IdempotencyKey string                  `json:"-"`
}

// Engine runs requests against the configured targets. It holds no
// per-request state, so one Engine serves every concurrent request of an instance.
type Engine struct {
	Config  *Config
	Targets []Target
	Mailer  Mailer // used when email.provider is sendgrid
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
func (e *Engine) Handle(ctx context.Context, req Request, meta Meta) (Result, *Error) {
	if meta.RequestID == "" {
		meta.RequestID = NewRequestID()
	}
	res := Result{Targets: map[string]TargetResult{}, RequestID: meta.RequestID, IdempotencyKey: IdempotencyKey(req, meta)}
	log := e.logger().With("request_id", meta.RequestID, "idempotency_key", res.IdempotencyKey, "trigger", meta.Trigger, "action", string(req.Action))
	person, profile, perr := e.Config.Authorize(req)
	if perr != nil {
		log.Warn("request refused by policy", "status", perr.Status, "field", perr.Field, "reason", perr.Message)
		return res, perr
	}
	log = log.With("profile", profile.Name)
	if e.Store == nil || PlanFrom(ctx) != nil {
		// A dry run leaves no trace: no claim, no journal, no audit record.
		return e.run(ctx, nil, req.Action, meta.Trigger, person, profile, res, log)
	}

	key := "idempotency/" + res.IdempotencyKey
	history := newJournal(e.Store, person.Email, meta.RequestID)
	if req.IdempotencyKey == "" && meta.MessageID == "" {
		// Keyed by its content alone: see actionCounts.
		epoch, err := history.epoch(ctx, req.Action)
		if err != nil {
			return res, Unavailable("state", 0, err)
		}
		key += "/" + epoch
	}
	claim, rec, err := e.Store.Claim(ctx, key, req.Fingerprint(), meta.RequestID, e.lease(), DefaultRecordTTL)
	if err != nil {
		return res, Unavailable("state", 0, err)
	}
	switch claim {
	case state.InProgress:
		wait := time.Until(rec.LeaseUntil).Round(time.Second)
		log.Info("same request in progress elsewhere", "retry_after", wait.String())
		return res, &Error{Status: http.StatusConflict, RetryAfter: max(wait, time.Second),
			Message: "the same request is being processed right now; resend later to get its result"}
	case state.Mismatch:
		log.Warn("idempotency key reused for a different request")
		return res, &Error{Status: http.StatusUnprocessableEntity, Field: "idempotency_key",
			Message: "this idempotency key was already used with a different request"}
	case state.Completed:
		var stored Result
		if err := json.Unmarshal(rec.Result, &stored); err != nil {
			return res, &Error{Status: 500, Message: "stored result unreadable", Err: err}
		}
		log.Info("duplicate delivery: answering with the stored result", "first_request_id", stored.RequestID)
		stored.IdempotencyKey = res.IdempotencyKey
		return stored, nil
	}
	res, cerr := e.run(ctx, e.Store, req.Action, meta.Trigger, person, profile, res, log)
	// The record outlives a cancelled request: recording the outcome is what
	// keeps the next delivery from redoing or blocking on the work.
	bg := context.WithoutCancel(ctx)
	if cerr != nil {
		if err := e.Store.Release(bg, key, meta.RequestID); err != nil {
			log.Warn("releasing the idempotency record failed; a retry waits for the lease", "error", err.Error())
		}
		return res, cerr
	}
	data, err := json.Marshal(res)
	if err == nil {
		err = e.Store.Complete(bg, key, meta.RequestID, data, DefaultRecordTTL)
	}
	if err != nil {
		// The work is done and every step is idempotent, so a duplicate
		// would only redo lookups; not worth failing the request over.
		log.Warn("recording the result failed", "error", err.Error())
	}
	if err := history.completed(bg, req.Action); err != nil {
		// Only a later resend of the opposite request, word for word and
		// without a key, would then be taken for a duplicate.
		log.Warn("counting the completed action failed", "error", err.Error())
	}
	return res, nil
}

// run applies the request to the profile's targets, then sends a welcome if due.
func (e *Engine) run(ctx context.Context, store state.Store, action Action, trigger string, person Person, profile *Profile, res Result, log *slog.Logger) (Result, *Error) {
	targets := e.targetsFor(profile)
	if len(targets) == 0 {
		return res, &Error{Status: 500, Message: "profile " + profile.Name + " configures no target that this instance has credentials for"}
	}
	journal := newJournal(store, person.Email, res.RequestID)
	ctx = WithJournal(ctx, journal)
	ctx = withAuditor(ctx, &auditor{store: store, log: log, base: state.AuditRecord{
		RequestID: res.RequestID, IdempotencyKey: res.IdempotencyKey, Trigger: trigger, Person: person.Email,
	}})
	outcomes := make([]outcome, len(targets))
	parallel(ctx, len(targets), func(i int) {
		outcomes[i] = runTarget(ctx, targets[i], action, person, profile)
	})

	var failures []*Error
	for _, o := range outcomes {
		if o.err != nil {
			log.Error("target failed", "target", o.target, "status", o.err.Status, "error", o.err.Error(), "cause", errText(o.err.Err))
			failures = append(failures, o.err)
			continue
		}
		log.Info("target done", "target", o.target, "outcome", string(o.result.Status), "changes", o.result.Changes)
		res.Targets[o.target] = o.result
	}
	res.Status = summarise(res.Targets)
	if len(failures) > 0 {
		return res, mostActionable(failures)
	}
	if action == ActionDeprovision {
		if err := journal.resetWelcome(ctx); err != nil {
			log.Warn("forgetting the welcome ledger failed", "error", err.Error())
		}
	} else {
		sent, err := e.welcome(ctx, journal, person, profile, res, log)
		if sent {
			res.Email = "sent"
		}
		if err != nil {
			return res, err
		}
	}
	log.Info("request done", "outcome", string(res.Status))
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
	if action == ActionDeprovision {
		r, err = t.Deprovision(ctx, p, prof)
	} else {
		r, err = t.Provision(ctx, p, prof)
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

func (e *Engine) welcomeDue(res Result) bool {
	for _, r := range res.Targets {
		if r.Welcome {
			return true
		}
	}
	return false
}

// welcome sends the SendGrid welcome email when this request, or a crashed
// delivery of it, gave someone new access. Provider "looker" is handled by
// the Looker target, which asks Looker to send its own setup email. With a
// store, the ledger makes it at most once per person: due, then sending
// (claimed with compare-and-swap), then sent.
func (e *Engine) welcome(ctx context.Context, j *Journal, p Person, profile *Profile, res Result, log *slog.Logger) (sent bool, _ *Error) {
	if e.Config.Email.Provider != EmailSendGrid || e.Mailer == nil {
		return false, nil
	}
	due := e.welcomeDue(res)
	if j != nil {
		if due {
			if err := j.MarkWelcomeDue(ctx); err != nil {
				return false, Unavailable("state", 0, err)
			}
		}
		won, err := j.claimWelcome(ctx)
		if err != nil {
			return false, Unavailable("state", 0, err)
		}
		if st, _ := j.welcomeState(ctx); !won && st == welcomeSending {
			log.Warn("a welcome email for this person was handed to SendGrid before and its outcome is unknown; not sending another (search SendGrid's activity for the request id)")
		}
		due = won
	}
	if !due {
		return false, nil
	}
	if plan := PlanFrom(ctx); plan != nil {
		plan.Add("sendgrid", "send welcome email", p.Email)
		return false, nil
	}
	id, err := e.sendWelcome(ctx, p, profile, res)
	if j != nil {
		rec := welcomeRecord{State: welcomeSent, RequestID: res.RequestID, MessageID: id, At: time.Now().UTC()}
		if err != nil {
			rec = welcomeRecord{State: welcomeDue, RequestID: res.RequestID, At: time.Now().UTC()}
		}
		if lerr := j.setWelcome(context.WithoutCancel(ctx), rec); lerr != nil {
			log.Warn("recording the welcome email's state failed", "error", lerr.Error())
		}
	}
	if err != nil {
		log.Error("welcome email failed", "status", err.Status, "error", err.Error(), "cause", errText(err.Err))
		return false, err
	}
	log.Info("welcome email sent", "message_id", id)
	return true, nil
}

func (e *Engine) sendWelcome(ctx context.Context, p Person, profile *Profile, res Result) (string, *Error) {
	var setupURL string
	for _, name := range sortedKeys(res.Targets) {
		if u := res.Targets[name].SetupURL; u != "" {
			setupURL = u
			break
		}
	}
	if setupURL == "" {
		// Resumed after a crash: the run that created the user made a link
		// we never saw; ask for a fresh one (it invalidates the old).
		for _, t := range e.targetsFor(profile) {
			if sl, ok := t.(SetupLinker); ok {
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
		return "", Unavailable("looker", 0, errors.New("no setup link could be made for the welcome email yet"))
	}
	cfg := e.Config.Email
	w := Welcome{To: p, Subject: cfg.Subject, TemplateID: cfg.TemplateID, RequestID: res.RequestID}
	if cfg.TemplateID != "" {
		w.TemplateData = map[string]any{"first_name": p.FirstName, "last_name": p.LastName, "email": p.Email, "setup_url": setupURL}
	} else {
		text, err := e.Config.RenderWelcomeText(WelcomeData{FirstName: p.FirstName, LastName: p.LastName, Email: p.Email, SetupURL: setupURL})
		if err != nil {
			return "", &Error{Status: 500, Message: "rendering the welcome email failed", Err: err}
		}
		w.Text = text
	}
	id, err := e.Mailer.SendWelcome(ctx, w)
	RecordWrite(ctx, "sendgrid", "send welcome email", err)
	if err != nil {
		ce := AsError(err)
		if ce.Target == "" {
			ce.Target = "sendgrid"
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

func (e *Engine) logger() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.Default()
}
