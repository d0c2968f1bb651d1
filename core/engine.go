package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sort"
	"sync"
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
// profile configures. On failure the returned Result still lists what each
// target that succeeded did.
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

	targets := e.targetsFor(profile)
	if len(targets) == 0 {
		return res, &Error{Status: 500, Message: "profile " + profile.Name + " configures no target that this instance has credentials for"}
	}
	outcomes := make([]outcome, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outcomes[i] = runTarget(ctx, t, req.Action, person, profile)
		}()
	}
	wg.Wait()

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
	if req.Action == ActionProvision {
		sent, err := e.welcome(ctx, person, res, log)
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

func runTarget(ctx context.Context, t Target, action Action, p Person, prof *Profile) outcome {
	var (
		r   TargetResult
		err error
	)
	if action == ActionDeprovision {
		r, err = t.Deprovision(ctx, p, prof)
	} else {
		r, err = t.Provision(ctx, p, prof)
	}
	o := outcome{target: t.Name(), result: r}
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

// welcome sends the SendGrid welcome email when this request gave someone new
// access. Provider "looker" is handled by the Looker target, which asks Looker
// to send its own setup email.
func (e *Engine) welcome(ctx context.Context, p Person, res Result, log *slog.Logger) (sent bool, _ *Error) {
	if !e.welcomeDue(res) || e.Config.Email.Provider != EmailSendGrid || e.Mailer == nil {
		return false, nil
	}
	var setupURL string
	for _, name := range sortedKeys(res.Targets) {
		if u := res.Targets[name].SetupURL; u != "" {
			setupURL = u
			break
		}
	}
	cfg := e.Config.Email
	w := Welcome{To: p, Subject: cfg.Subject, TemplateID: cfg.TemplateID, RequestID: res.RequestID}
	if cfg.TemplateID != "" {
		w.TemplateData = map[string]any{"first_name": p.FirstName, "last_name": p.LastName, "email": p.Email, "setup_url": setupURL}
	} else {
		text, err := e.Config.RenderWelcomeText(WelcomeData{FirstName: p.FirstName, LastName: p.LastName, Email: p.Email, SetupURL: setupURL})
		if err != nil {
			return false, &Error{Status: 500, Message: "rendering the welcome email failed", Err: err}
		}
		w.Text = text
	}
	id, err := e.Mailer.SendWelcome(ctx, w)
	if err != nil {
		ce := AsError(err)
		if ce.Target == "" {
			ce.Target = "sendgrid"
		}
		log.Error("welcome email failed", "status", ce.Status, "error", ce.Error(), "cause", errText(ce.Err))
		return false, ce
	}
	log.Info("welcome email sent", "message_id", id)
	return true, nil
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
