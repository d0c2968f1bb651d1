// Package rules holds the semantics every state backend shares, so the file,
// Firestore and DynamoDB stores cannot drift apart: what a Claim finds and
// does, who may Complete or Release a record, how versions advance, and how
// audit records are keyed and filtered. Backends only translate storage to
// and from these types and make the decision atomic their own way.
package rules

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/onboard-dev/onboard/core/state"
)

// Expiry is when something written at now with ttl may be deleted; the zero
// time (never) when ttl is not positive, matching Put's "ttl 0 keeps it".
func Expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

// Expired reports whether expiresAt has passed. Every backend treats an
// expired item as absent even before its TTL machinery deletes it, because
// Firestore and DynamoDB delete expired items only eventually (hours to days).
func Expired(expiresAt, now time.Time) bool {
	return !expiresAt.IsZero() && !now.Before(expiresAt)
}

// CheckKey refuses keys no backend can store.
func CheckKey(key string) error {
	if key == "" {
		return errors.New("state: empty key")
	}
	return nil
}

// CheckClaim refuses claims that could never be taken over: a lease that is
// not positive would either never expire or expire at once.
func CheckClaim(key, owner string, lease time.Duration) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if owner == "" {
		return errors.New("state: empty owner")
	}
	if lease <= 0 {
		return fmt.Errorf("state: lease must be positive, got %v", lease)
	}
	return nil
}

// Claim decides what a Claim finds, given the current record (nil when
// absent). When the outcome is Claimed, the returned record is what the
// backend must write; otherwise it is cur, reported as is.
//
// A live lease is InProgress even for the same owner: owners are per
// delivery, and a repeated owner id means a redelivery that must not run
// twice. The record expires no earlier than its lease, so TTL deletion can
// never hand a running request to a second owner.
func Claim(cur *state.Record, now time.Time, key, fingerprint, owner string, lease, ttl time.Duration) (state.ClaimOutcome, state.Record) {
	if cur != nil && !Expired(cur.ExpiresAt, now) {
		switch {
		case cur.Fingerprint != fingerprint:
			return state.Mismatch, *cur
		case cur.Completed:
			return state.Completed, *cur
		case now.Before(cur.LeaseUntil):
			return state.InProgress, *cur
		}
	}
	if ttl > 0 {
		ttl = max(ttl, lease)
	}
	return state.Claimed, state.Record{
		Key:         key,
		Fingerprint: fingerprint,
		Owner:       owner,
		LeaseUntil:  now.Add(lease),
		ExpiresAt:   Expiry(now, ttl),
	}
}

// Complete decides a Complete. It returns the record to write, or write
// false when cur already is this very completion (a retried call whose first
// attempt committed but whose answer was lost), or state.ErrConflict.
//
// An owner whose lease ran out may still complete as long as nobody took the
// record over: the work is done, and refusing would only make a redelivery
// repeat it.
func Complete(cur *state.Record, now time.Time, owner string, result []byte, ttl time.Duration) (rec state.Record, write bool, err error) {
	if cur == nil || Expired(cur.ExpiresAt, now) || cur.Owner != owner {
		return state.Record{}, false, state.ErrConflict
	}
	if cur.Completed {
		if bytes.Equal(cur.Result, result) {
			return *cur, false, nil
		}
		return state.Record{}, false, state.ErrConflict
	}
	rec = *cur
	rec.Completed = true
	rec.LeaseUntil = time.Time{}
	rec.Result = result
	rec.ExpiresAt = Expiry(now, ttl)
	return rec, true, nil
}

// Renew decides a Renew: cur with its lease running to now+lease, or
// state.ErrConflict when owner no longer holds cur (absent, expired,
// completed, or another owner's). A lease that ran out is still owner's to
// renew while nobody took it over, as with Complete. The record's expiry
// moves out with the lease when it would come first, so TTL deletion never
// ends a renewed lease.
func Renew(cur *state.Record, now time.Time, owner string, lease time.Duration) (state.Record, error) {
	if !Releasable(cur, owner) || Expired(cur.ExpiresAt, now) {
		return state.Record{}, state.ErrConflict
	}
	rec := *cur
	rec.LeaseUntil = now.Add(lease)
	if !rec.ExpiresAt.IsZero() && rec.ExpiresAt.Before(rec.LeaseUntil) {
		rec.ExpiresAt = rec.LeaseUntil
	}
	return rec, nil
}

// Releasable reports whether owner may delete cur: only its own record, and
// only while in progress, so a late Release never erases a result.
func Releasable(cur *state.Record, owner string) bool {
	return cur != nil && !cur.Completed && cur.Owner == owner
}

// Stored is a versioned value as a backend keeps it.
type Stored struct {
	Data      []byte
	Version   int64
	ExpiresAt time.Time
}

// CheckVersion refuses expected versions no value can have.
func CheckVersion(expectVersion int64) error {
	if expectVersion < 0 {
		return fmt.Errorf("state: negative expected version %d", expectVersion)
	}
	return nil
}

// Put decides a compare-and-swap write given the current value (nil when
// absent) and returns the new version. An expired value counts as absent,
// yet its version still advances: a writer holding a version from before
// the expiry must not match the recreated value.
func Put(cur *Stored, now time.Time, expectVersion int64) (int64, error) {
	if err := CheckVersion(expectVersion); err != nil {
		return 0, err
	}
	live := cur != nil && !Expired(cur.ExpiresAt, now)
	var have int64
	if live {
		have = cur.Version
	}
	if have != expectVersion {
		return 0, state.ErrConflict
	}
	if cur != nil {
		return cur.Version + 1, nil
	}
	return 1, nil
}

// auditTimeLayout is fixed-width, so audit keys sort by time as strings in
// every backend (bbolt keys, Firestore document ids, DynamoDB sort keys).
const auditTimeLayout = "2006-01-02T15:04:05.000000000Z"

// AuditKey orders audit records by time; unique breaks ties between records
// written in the same nanosecond, by several instances.
func AuditKey(t time.Time, unique string) string {
	return t.UTC().Format(auditTimeLayout) + "#" + unique
}

// AuditSince is the smallest audit key at or after since ("" for the zero
// time): every key of a record with Time >= since sorts at or after it.
func AuditSince(since time.Time) string {
	if since.IsZero() {
		return ""
	}
	return since.UTC().Format(auditTimeLayout)
}

// AuditDay is the UTC day an audit record belongs to (DynamoDB partitions).
func AuditDay(t time.Time) string {
	return t.UTC().Format(time.DateOnly)
}

// PersonKey is the form persons are compared in: AuditQuery.Person matches
// case-insensitively, and stores that filter server-side index this form.
func PersonKey(person string) string {
	return strings.ToLower(person)
}

// Stamp fills a record's missing time, so callers need not read a clock.
func Stamp(rec state.AuditRecord, now time.Time) state.AuditRecord {
	if rec.Time.IsZero() {
		rec.Time = now
	}
	return rec
}

// Matches applies the parts of q a backend did not filter itself; it is
// cheap, so backends call it on everything they read.
func Matches(rec state.AuditRecord, q state.AuditQuery) bool {
	if !q.Since.IsZero() && rec.Time.Before(q.Since) {
		return false
	}
	return q.Person == "" || PersonKey(rec.Person) == PersonKey(q.Person)
}

// Digest stands in for keys too long for a backend's key size limit.
func Digest(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
