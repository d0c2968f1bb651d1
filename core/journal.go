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
// or already went out. It lives in the person's record, which the request
// holds under the person lease, so reading it costs nothing and writing it
// is one conditional write of that record, made only where a crash must
// not lose it (before a target acts, before a welcome is handed over); the
// rest rides on the record's write when the request ends. Targets reach it
// through the request's context; with no store configured every method does
// nothing, and the guarantees fall back to what lookups alone give.
type Journal struct {
	lease     *personLease
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

func noteKey(target, name string) string { return target + "/" + name }

// Remember stores a target's note about this person (e.g. what it is about
// to create), overwriting any previous one, durably before it returns.
func (j *Journal) Remember(ctx context.Context, target, name, value string) error {
	if j == nil {
		return nil
	}
	return j.lease.change(ctx, true, func(r *PersonRecord) { r.setNote(noteKey(target, name), value) })
}

// RememberOwingWelcome is Remember and MarkWelcomeDue in one write: what a
// target notes just before it creates someone.
func (j *Journal) RememberOwingWelcome(ctx context.Context, target, name, value string) error {
	if j == nil {
		return nil
	}
	return j.lease.change(ctx, true, func(r *PersonRecord) {
		r.setNote(noteKey(target, name), value)
		r.oweWelcome(j.requestID)
	})
}

// Recall returns a note stored by Remember, or "".
func (j *Journal) Recall(_ context.Context, target, name string) (string, error) {
	if j == nil {
		return "", nil
	}
	return j.lease.record().Notes[noteKey(target, name)], nil
}

// Forget removes a note. It is written with the record when the request
// ends: a note outliving a crash only costs the next delivery a lookup.
func (j *Journal) Forget(ctx context.Context, target, name string) error {
	if j == nil {
		return nil
	}
	return j.lease.change(ctx, false, func(r *PersonRecord) { r.setNote(noteKey(target, name), "") })
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

// MarkWelcomeDue records, durably, before a target creates or re-enables
// someone, that a welcome is owed: if the process dies after the target
// acted, the redelivery still sends it. An email already sent, or being
// sent, is not owed again.
func (j *Journal) MarkWelcomeDue(ctx context.Context) error {
	if j == nil || j.lease.record().Welcome.State != "" {
		return nil
	}
	return j.lease.change(ctx, true, func(r *PersonRecord) { r.oweWelcome(j.requestID) })
}

// claimWelcome moves a welcome that is owed (due in the ledger, or due
// now, as this request gave new access) to "sending", durably, before it
// is handed to the provider. The person lease makes this request the only
// one that can; the write is conditional on the lease still being held.
// It reports whether the caller may send.
func (j *Journal) claimWelcome(ctx context.Context, dueNow bool) (bool, error) {
	switch j.lease.record().Welcome.State {
	case welcomeDue:
	case "":
		if !dueNow {
			return false, nil
		}
	default:
		return false, nil
	}
	err := j.lease.change(ctx, true, func(r *PersonRecord) {
		r.Welcome = welcomeRecord{State: welcomeSending, RequestID: j.requestID, At: time.Now().UTC()}
	})
	return err == nil, err
}

// welcomeState is the current state of this person's welcome, "" when none is owed.
func (j *Journal) welcomeState() string { return j.lease.record().Welcome.State }

// setWelcome records how the hand-over went, with the record at the end.
func (j *Journal) setWelcome(ctx context.Context, rec welcomeRecord) error {
	return j.lease.change(ctx, false, func(r *PersonRecord) { r.Welcome = rec })
}

// resetWelcome forgets a welcome after deprovisioning, so that being given
// access again later earns a new one.
func (j *Journal) resetWelcome(ctx context.Context) error {
	if j == nil {
		return nil
	}
	return j.lease.change(ctx, false, func(r *PersonRecord) { r.Welcome = welcomeRecord{} })
}

func (r *PersonRecord) setNote(key, value string) {
	if value == "" {
		delete(r.Notes, key)
		return
	}
	if r.Notes == nil {
		r.Notes = map[string]string{}
	}
	r.Notes[key] = value
}

func (r *PersonRecord) oweWelcome(requestID string) {
	if r.Welcome.State == "" {
		r.Welcome = welcomeRecord{State: welcomeDue, RequestID: requestID, At: time.Now().UTC()}
	}
}

// readLegacyJournal folds in what a release before the journal moved into
// the person record kept under journal/<email>/: the welcome ledger and
// the Looker pending-user note, the only ones it wrote. Read once per
// person, for a record written by that release.
func readLegacyJournal(ctx context.Context, store state.Store, email string, rec *PersonRecord) error {
	prefix := "journal/" + strings.ToLower(email) + "/"
	welcome, err := store.Get(ctx, prefix+"welcome")
	if err != nil && !errors.Is(err, state.ErrNotFound) {
		return err
	}
	if len(welcome.Data) > 0 {
		if err := json.Unmarshal(welcome.Data, &rec.Welcome); err != nil {
			return err
		}
	}
	const legacyNote = "looker/pending_user"
	note, err := store.Get(ctx, prefix+legacyNote)
	if err != nil && !errors.Is(err, state.ErrNotFound) {
		return err
	}
	rec.setNote(legacyNote, string(note.Data))
	return nil
}
