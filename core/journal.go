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
// a crash: who may have created a user not yet finished, a welcome email
// that is due or already went out. It lives in the person's record, which
// the request holds under the person lease, so reading it costs nothing.
// What must be durable before a target acts rides on the write that takes
// the lease (the request's mark); the welcome's hand-over on the write that
// ends it; only a re-enable writes in between (MarkWelcomeDue). Targets
// reach it through the request's context; with no store configured every
// method does nothing, and the guarantees fall back to what lookups alone
// give.
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

// Mark is this request's mark: a target that creates someone puts it on
// what it creates, so that whatever becomes of the answer, a later request
// can tell its own half-made or unanswered creation from anyone else's.
// It was written in the person's record, among the unfinished requests'
// marks, before any target acted. "" without a journal.
func (j *Journal) Mark() string {
	if j == nil {
		return ""
	}
	return j.requestID
}

// Created says a target made something under this request's mark, or
// may have (its answer never came): the mark stays among the unfinished
// ones unless this request completes. Otherwise a request that fails
// drops its own mark, and the next has nothing more to look for.
func (j *Journal) Created() {
	if j != nil {
		j.lease.keepMark()
	}
}

// Resolve says a target has dealt with what an unfinished request made
// under mark (finished it, or found nothing): once this request
// completes, the mark is no longer listed. A request that fails leaves
// the list as it was, so its retry still knows.
func (j *Journal) Resolve(mark string) {
	if j != nil {
		j.lease.resolve(mark)
	}
}

// Unfinished lists the marks of earlier requests for this person that held
// it to provision and did not complete (they crashed, or failed after a
// target acted): what they created may be waiting to be finished, and is
// still new to the person.
func (j *Journal) Unfinished() []string {
	if j == nil {
		return nil
	}
	var marks []string
	for _, m := range j.lease.record().Unfinished {
		if m != j.requestID {
			marks = append(marks, m)
		}
	}
	return marks
}

// Recall returns a target's note about this person, or "": notes are what
// an earlier release kept (see readLegacyJournal).
func (j *Journal) Recall(_ context.Context, target, name string) (string, error) {
	if j == nil {
		return "", nil
	}
	return j.lease.record().Notes[noteKey(target, name)], nil
}

// Forget removes a note. It is written with the record when the request
// ends: a note outliving a crash only costs the next delivery a lookup.
func (j *Journal) Forget(target, name string) {
	if j != nil {
		j.lease.stage(func(r *PersonRecord) { r.setNote(noteKey(target, name), "") })
	}
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
	return j.lease.write(ctx, func(r *PersonRecord) {
		r.Welcome = welcomeRecord{State: welcomeDue, RequestID: j.requestID, At: time.Now().UTC()}
	})
}

// claimWelcome moves a welcome that is owed (due in the ledger, or due
// now, as this request gave new access) to "sending", staged: the record's
// write that ends the lease makes it durable, and only then may the caller
// hand it to the provider. The person lease makes this request the only
// one that can. It reports whether the caller may send.
func (j *Journal) claimWelcome(dueNow bool) bool {
	switch j.lease.record().Welcome.State {
	case welcomeDue:
	case "":
		if !dueNow {
			return false
		}
	default:
		return false
	}
	j.lease.stage(func(r *PersonRecord) {
		r.Welcome = welcomeRecord{State: welcomeSending, RequestID: j.requestID, At: time.Now().UTC()}
	})
	return true
}

// welcomeState is the current state of this person's welcome, "" when none is owed.
func (j *Journal) welcomeState() string { return j.lease.record().Welcome.State }

// resetWelcome forgets a welcome after deprovisioning, so that being given
// access again later earns a new one.
func (j *Journal) resetWelcome() {
	if j != nil {
		j.lease.stage(func(r *PersonRecord) { r.Welcome = welcomeRecord{} })
	}
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
