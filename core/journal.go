package core

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/onboard-dev/onboard/core/state"
)

// Journal remembers, per person, the steps of provisioning that must survive
// a crash: a user created but not yet finished, a welcome email that is due
// or already went out. Targets reach it through the request's context; with
// no store configured every method does nothing, and the guarantees fall
// back to what lookups alone give.
type Journal struct {
	store     state.Store
	person    string // lower-cased email
	requestID string
}

type journalKey struct{}

// WithJournal puts j into ctx for the targets of one request.
func WithJournal(ctx context.Context, j *Journal) context.Context {
	return context.WithValue(ctx, journalKey{}, j)
}

// JournalFrom returns the request's journal; a nil *Journal is valid and inert.
func JournalFrom(ctx context.Context) *Journal {
	j, _ := ctx.Value(journalKey{}).(*Journal)
	return j
}

func newJournal(store state.Store, email, requestID string) *Journal {
	if store == nil {
		return nil
	}
	return &Journal{store: store, person: strings.ToLower(email), requestID: requestID}
}

func (j *Journal) key(parts ...string) string {
	return "journal/" + j.person + "/" + strings.Join(parts, "/")
}

// Remember stores a target's note about this person (e.g. the id of a user
// it created and has not finished), overwriting any previous one.
func (j *Journal) Remember(ctx context.Context, target, name, value string) error {
	if j == nil {
		return nil
	}
	return j.put(ctx, j.key(target, name), []byte(value))
}

// Recall returns a note stored by Remember, or "".
func (j *Journal) Recall(ctx context.Context, target, name string) (string, error) {
	if j == nil {
		return "", nil
	}
	v, err := j.store.Get(ctx, j.key(target, name))
	if errors.Is(err, state.ErrNotFound) {
		return "", nil
	}
	return string(v.Data), err
}

// Forget removes a note (by blanking it: stores keep versions monotonic).
func (j *Journal) Forget(ctx context.Context, target, name string) error {
	if j == nil {
		return nil
	}
	return j.put(ctx, j.key(target, name), nil)
}

// put overwrites a value whatever its version, retrying lost races: notes
// have one writer per person at a time (the idempotency claim), so a
// conflict only means a stale read.
func (j *Journal) put(ctx context.Context, key string, data []byte) error {
	for range 5 {
		cur, err := j.store.Get(ctx, key)
		if err != nil && !errors.Is(err, state.ErrNotFound) {
			return err
		}
		if _, err = j.store.Put(ctx, key, data, cur.Version, 0); !errors.Is(err, state.ErrConflict) {
			return err
		}
	}
	return state.ErrConflict
}

// Welcome states, in the order a welcome email goes through them.
const (
	welcomeDue     = "due"     // a target gave new access; the email has not been attempted
	welcomeSending = "sending" // handed to the provider; if we crash now we cannot know
	welcomeSent    = "sent"
)

type welcomeRecord struct {
	State     string    `json:"state"`
	RequestID string    `json:"request_id,omitempty"`
	MessageID string    `json:"message_id,omitempty"`
	At        time.Time `json:"at"`
}

// MarkWelcomeDue records, before a target creates or re-enables someone,
// that a welcome is owed: if the process dies after the target acted, the
// redelivery still sends it. An email already sent is not owed again.
func (j *Journal) MarkWelcomeDue(ctx context.Context) error {
	if j == nil {
		return nil
	}
	b, err := json.Marshal(welcomeRecord{State: welcomeDue, RequestID: j.requestID, At: time.Now().UTC()})
	if err != nil {
		return err
	}
	// Conditional on the version read: an unconditional write could turn
	// another delivery's "sending" back into "due" and let a second email out.
	for range 5 {
		rec, version, err := j.welcome(ctx)
		if err != nil || rec.State != "" {
			return err
		}
		if _, err = j.store.Put(ctx, j.key("welcome"), b, version, 0); !errors.Is(err, state.ErrConflict) {
			return err
		}
	}
	return state.ErrConflict
}

func (j *Journal) welcome(ctx context.Context) (welcomeRecord, int64, error) {
	var rec welcomeRecord
	v, err := j.store.Get(ctx, j.key("welcome"))
	if errors.Is(err, state.ErrNotFound) || (err == nil && len(v.Data) == 0) {
		return rec, v.Version, nil
	}
	if err != nil {
		return rec, 0, err
	}
	return rec, v.Version, json.Unmarshal(v.Data, &rec)
}

func (j *Journal) setWelcome(ctx context.Context, rec welcomeRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return j.put(ctx, j.key("welcome"), b)
}

// claimWelcome moves a due welcome to "sending" with compare-and-swap, so of
// two deliveries racing only one sends. It reports whether the caller won.
func (j *Journal) claimWelcome(ctx context.Context) (bool, error) {
	rec, version, err := j.welcome(ctx)
	if err != nil {
		return false, err
	}
	if rec.State != welcomeDue {
		return false, nil
	}
	b, err := json.Marshal(welcomeRecord{State: welcomeSending, RequestID: j.requestID, At: time.Now().UTC()})
	if err != nil {
		return false, err
	}
	_, err = j.store.Put(ctx, j.key("welcome"), b, version, 0)
	if errors.Is(err, state.ErrConflict) {
		return false, nil
	}
	return err == nil, err
}

// welcomeState is the current state of this person's welcome, "" when none is owed.
func (j *Journal) welcomeState(ctx context.Context) (string, error) {
	rec, _, err := j.welcome(ctx)
	return rec.State, err
}

// resetWelcome forgets a welcome after deprovisioning, so that being given
// access again later earns a new one.
func (j *Journal) resetWelcome(ctx context.Context) error {
	if j == nil {
		return nil
	}
	return j.put(ctx, j.key("welcome"), nil)
}
