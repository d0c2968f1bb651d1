package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/onboard-dev/onboard/core/state"
)

// PersonRecord is what onboard gave one person: the profile and, per
// target, the user it made or adopted and the grants it added. A
// deprovision acts on this record, never on a profile or user a request
// names, so a form cannot turn "disable" into "delete" or reach someone
// onboard never provisioned.
//
// The same stored item carries the person lease (one request at a time
// changes a person's grants: Looker's roles are read, unioned and
// replaced, and two requests doing that at once lose one's roles) and the
// counts of completed actions, so a request reads and writes one item for
// all three.
type PersonRecord struct {
	// Profile is the profile the person was last given; empty when onboard
	// never provisioned them.
	Profile string `json:"profile,omitempty"`
	// MoveUnfinished: a provision moved the person to Profile from another
	// profile and did not complete, so the grants it had yet to take back
	// are still owed: its retry names Profile too, and must move them.
	MoveUnfinished bool `json:"move_unfinished,omitempty"`
	// Active is false once they were deprovisioned.
	Active  bool                    `json:"active"`
	Targets map[string]TargetRecord `json:"targets,omitempty"`
	// Actions counts completed provisions and deprovisions: see Handle's
	// content-derived keys.
	Actions   map[Action]int64 `json:"actions,omitempty"`
	UpdatedAt time.Time        `json:"updated_at"`
	// Notes and Welcome are the request journal (see Journal): targets'
	// crash notes by "target/name", and the welcome ledger.
	Notes   map[string]string `json:"notes,omitempty"`
	Welcome welcomeRecord     `json:"welcome,omitzero"`
	// Unfinished holds the marks of provisions that held the person and
	// did not complete (see Journal.Mark), newest last.
	Unfinished []string `json:"unfinished,omitempty"`
	// JournalKept marks a record written since the journal moved into it;
	// an older one may still have its journal under journal/<email>/.
	JournalKept bool `json:"journal_kept,omitempty"`

	LeaseOwner string    `json:"lease_owner,omitempty"`
	LeaseKey   string    `json:"lease_key,omitempty"`
	LeaseTaken time.Time `json:"lease_taken,omitzero"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
}

// TargetRecord is what onboard made in one target for one person.
type TargetRecord struct {
	// ID is the target's id of the user onboard made or adopted.
	ID string `json:"id,omitempty"`
	// Granted lists the grants onboard added, as the target names them
	// ("role:7", "group:3"): what a mover's old profile gave is exactly
	// what may be taken away, and nothing an admin granted by hand.
	Granted []string `json:"granted,omitempty"`
	// Profile is the profile that last provisioned the person here. A
	// leaver who moved away from this target since is deprovisioned here
	// by its rule (Engine.leaverProfile); empty in records written before
	// targets noted it.
	Profile string `json:"profile,omitempty"`
}

// Provisioned says whether onboard ever gave the person a profile.
func (r PersonRecord) Provisioned() bool { return r.Profile != "" }

// moves says whether provisioning the person with profile is a move: the
// grants onboard made for another profile may have to be taken back.
func (r PersonRecord) moves(profile string) bool {
	return r.Provisioned() && (r.Profile != profile || r.MoveUnfinished)
}

func personKey(email string) string { return "person/" + strings.ToLower(email) }

// ReadPerson returns the person's record; a person onboard never saw has
// a zero record and version 0.
func ReadPerson(ctx context.Context, store state.Store, email string) (PersonRecord, int64, error) {
	var rec PersonRecord
	v, err := store.Get(ctx, personKey(email))
	if errors.Is(err, state.ErrNotFound) || (err == nil && len(v.Data) == 0) {
		return rec, v.Version, nil
	}
	if err != nil {
		return rec, 0, err
	}
	if err := json.Unmarshal(v.Data, &rec); err != nil {
		return rec, 0, fmt.Errorf("person record of %s is unreadable: %w", email, err)
	}
	return rec, v.Version, nil
}

// errPersonBusy means another request holds the person's lease.
var errPersonBusy = errors.New("another request is changing this person")

// errLeaseTakenOver means another request took the person's lease: it ran
// out, or it was a duplicate's.
var errLeaseTakenOver = errors.New("the person lease was taken over before the request finished")

// personLease is one request's hold on a person's record. It is renewed
// while the request runs and written back, with what the request did,
// when it ends.
type personLease struct {
	store state.Store
	email string
	owner string
	lease time.Duration

	mu       sync.Mutex
	rec      PersonRecord
	acquired PersonRecord // as the lease found it
	version  int64
	lost     error
	// markKept: a target may have made something under the owner's mark.
	markKept bool
	// resolved: other requests' marks this one dealt with (Journal.Resolve).
	resolved []string
	// alongside run beside the release's write, off its critical path.
	alongside []func(context.Context)
}

// onRelease has fn run beside the release's write.
func (l *personLease) onRelease(fn func(context.Context)) {
	l.mu.Lock()
	l.alongside = append(l.alongside, fn)
	l.mu.Unlock()
}

// personHold says who asks for a person's lease, and how.
type personHold struct {
	email, owner string
	// key is the idempotency key the owner claims. Once claimed, a hold
	// on the person taken for the same key by another owner is a
	// duplicate's, taken before its claim lost, and may be taken over.
	key     string
	claimed bool
	// mark: the same write notes the owner among the unfinished
	// requests, before any target acts for it.
	mark  bool
	lease time.Duration
	// wait is how long to wait for a lease another request holds before
	// giving up with errPersonBusy and the time that lease has left.
	wait time.Duration
}

// acquirePerson takes the person's lease, starting from a record read
// earlier (rec at version), and re-reading on a lost race.
func acquirePerson(ctx context.Context, store state.Store, h personHold, rec PersonRecord, version int64) (*personLease, time.Duration, error) {
	deadline := time.Now().Add(h.wait)
	pause := 50 * time.Millisecond
	for {
		now := time.Now()
		if rec.LeaseOwner == "" || rec.LeaseOwner == h.owner || !now.Before(rec.LeaseUntil) || h.duplicateHold(rec, now) {
			held := rec
			held.LeaseOwner, held.LeaseKey, held.LeaseTaken, held.LeaseUntil = h.owner, h.key, now, now.Add(h.lease)
			if h.mark {
				held.markUnfinished(h.owner)
			}
			v, err := putPerson(ctx, store, h.email, held, version)
			if err == nil {
				return &personLease{store: store, email: h.email, owner: h.owner, lease: h.lease, rec: held, acquired: held, version: v}, 0, nil
			}
			if !errors.Is(err, state.ErrConflict) {
				return nil, 0, err
			}
		} else if !now.Add(pause).Before(deadline) {
			return nil, time.Until(rec.LeaseUntil), errPersonBusy
		} else {
			select {
			case <-time.After(pause):
			case <-ctx.Done():
				return nil, 0, context.Cause(ctx)
			}
			pause = min(pause*2, time.Second)
		}
		var err error
		if rec, version, err = ReadPerson(ctx, store, h.email); err != nil {
			return nil, 0, err
		}
	}
}

// duplicateHold says the lease rec shows is a duplicate's of the key h
// has claimed, taken beside a claim that lost: the same key, held for less
// than a third of a lease. A request holding the person under the key's
// claim took both at once, and its claim runs a whole lease, renewed, so
// no other request can have claimed the key while it is that young.
func (h personHold) duplicateHold(rec PersonRecord, now time.Time) bool {
	return h.claimed && rec.LeaseKey == h.key && now.Sub(rec.LeaseTaken) < h.lease/3
}

func putPerson(ctx context.Context, store state.Store, email string, rec PersonRecord, version int64) (int64, error) {
	rec.UpdatedAt = time.Now().UTC()
	rec.JournalKept = true
	data, err := json.Marshal(rec)
	if err != nil {
		return 0, err
	}
	return store.Put(ctx, personKey(email), data, version, 0)
}

// stage applies fn to the held record; the release writes it.
func (l *personLease) stage(fn func(*PersonRecord)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rec := l.rec
	rec.Notes = maps.Clone(rec.Notes) // record() hands out the map
	fn(&rec)
	l.rec = rec
}

// write applies fn to the held record and writes it now, conditional on
// the lease's version.
func (l *personLease) write(ctx context.Context, fn func(*PersonRecord)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.putLocked(ctx, fn); err != nil {
		if errors.Is(err, errLeaseTakenOver) {
			return errors.New("the person lease was lost while the request ran")
		}
		return err
	}
	return nil
}

// putLocked writes the held record changed by mutate, conditional on the
// lease's version; l.mu is held. A conflict while the lease is still ours
// is a welcome's outcome that an earlier request wrote after its own
// release (settleWelcome): the write is made again on top of it.
func (l *personLease) putLocked(ctx context.Context, mutate func(*PersonRecord)) error {
	for range 5 {
		rec := l.rec
		rec.Notes = maps.Clone(rec.Notes) // record() hands out the map
		mutate(&rec)
		v, err := putPerson(ctx, l.store, l.email, rec, l.version)
		if err == nil {
			l.rec, l.version = rec, v
			return nil
		}
		if !errors.Is(err, state.ErrConflict) {
			return err
		}
		cur, v, err := ReadPerson(ctx, l.store, l.email)
		if err != nil {
			return err
		}
		if cur.LeaseOwner != l.owner {
			return errLeaseTakenOver
		}
		// Still ours, so only the welcome can have changed: it stands as
		// written unless this request has moved it since it took the lease.
		if l.rec.Welcome == l.acquired.Welcome {
			l.rec.Welcome = cur.Welcome
		}
		l.acquired.Welcome = cur.Welcome
		l.version = v
	}
	return state.ErrConflict
}

func (l *personLease) keepMark() {
	l.mu.Lock()
	l.markKept = true
	l.mu.Unlock()
}

func (l *personLease) resolve(mark string) {
	l.mu.Lock()
	l.resolved = append(l.resolved, mark)
	l.mu.Unlock()
}

// record returns the record as the lease holds it.
func (l *personLease) record() PersonRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rec
}

// keep renews the lease every third of its length until stop is called
// (stop may be called more than once), so a slow run keeps the person. A renewal that finds the lease taken
// (this request outlived it while the store was unreachable) is kept in
// lost for release to report.
func (l *personLease) keep(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(l.lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				l.mu.Lock()
				err := l.putLocked(ctx, func(r *PersonRecord) { r.LeaseUntil = time.Now().Add(l.lease) })
				if errors.Is(err, errLeaseTakenOver) {
					l.lost = errors.New("the person lease was lost while the request ran")
				}
				l.mu.Unlock()
			}
		}
	})
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// release writes the record changed by update and gives up the lease. A
// completed request's own mark, and those it resolved, leave the list of
// unfinished requests; a failed one's stays only if a target may have made
// something under it. written says whether the record was written, which
// it may be even when the lease had been lost meanwhile (err).
func (l *personLease) release(ctx context.Context, completed bool, update func(*PersonRecord)) (written bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var wg sync.WaitGroup
	for _, fn := range l.alongside {
		wg.Go(func() { fn(ctx) })
	}
	l.alongside = nil
	defer wg.Wait()
	err = l.putLocked(ctx, func(r *PersonRecord) {
		update(r)
		r.Unfinished = slices.DeleteFunc(slices.Clone(r.Unfinished), func(m string) bool {
			return (m == l.owner && (completed || !l.markKept)) || (completed && slices.Contains(l.resolved, m))
		})
		r.LeaseOwner, r.LeaseKey, r.LeaseTaken, r.LeaseUntil = "", "", time.Time{}, time.Time{}
	})
	return err == nil, errors.Join(err, l.lost)
}

// settleWelcome records, after the release, how the welcome this request
// handed over went, unless the ledger has moved on since (a deprovision).
// Other requests may hold the person by now: the write is conditional and
// redone on the record as it stands, and their release keeps it.
func (l *personLease) settleWelcome(ctx context.Context, requestID string, ledger welcomeRecord) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	rec, version := l.rec, l.version
	for range 5 {
		if rec.Welcome.State != welcomeSending || rec.Welcome.RequestID != requestID {
			return nil
		}
		rec.Welcome = ledger
		v, err := putPerson(ctx, l.store, l.email, rec, version)
		if err == nil {
			l.rec, l.version = rec, v
			return nil
		}
		if !errors.Is(err, state.ErrConflict) {
			return err
		}
		if rec, version, err = ReadPerson(ctx, l.store, l.email); err != nil {
			return err
		}
	}
	return state.ErrConflict
}

// maxUnfinished bounds the marks a record keeps: each costs a later
// request a lookup, and more crashes in a row than this are an outage
// someone is already looking at.
const maxUnfinished = 8

func (r *PersonRecord) markUnfinished(mark string) {
	if slices.Contains(r.Unfinished, mark) {
		return
	}
	r.Unfinished = append(slices.Clone(r.Unfinished), mark)
	if n := len(r.Unfinished); n > maxUnfinished {
		r.Unfinished = r.Unfinished[n-maxUnfinished:]
	}
}

// merge adds what one request did in each target to the record, and drops
// the grants it took back.
func (r *PersonRecord) merge(results map[string]TargetResult) {
	if len(results) == 0 {
		return
	}
	if r.Targets == nil {
		r.Targets = map[string]TargetRecord{}
	}
	for name, res := range results {
		tr := r.Targets[name]
		if res.ID != "" {
			tr.ID = res.ID
		}
		if res.Profile != "" {
			tr.Profile = res.Profile
		}
		tr.Granted = slices.DeleteFunc(slices.Clone(tr.Granted), func(g string) bool { return slices.Contains(res.Revoked, g) })
		for _, g := range res.Granted {
			if !slices.Contains(tr.Granted, g) {
				tr.Granted = append(tr.Granted, g)
			}
		}
		r.Targets[name] = tr
	}
}
