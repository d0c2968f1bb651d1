// Package state is onboard's memory across deliveries and instances:
// idempotency records, versioned values (compare-and-swap) and the audit log.
// Backends: file (embedded, local runs and the CLI), Firestore (GCP),
// DynamoDB (AWS); all pass one conformance suite (statetest).
package state

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound means no value (or no record) exists under the key.
var ErrNotFound = errors.New("state: not found")

// ErrConflict means a compare-and-swap lost: the stored version was not the
// expected one, or the caller no longer owns the record it tried to change.
var ErrConflict = errors.New("state: conflict")

// ClaimOutcome says how a Claim went.
type ClaimOutcome int

const (
	// Claimed: the caller now owns the key (new, or taken over after the
	// previous owner's lease expired) and must Complete or Release it.
	Claimed ClaimOutcome = iota + 1
	// InProgress: another owner holds a live lease; try again later.
	InProgress
	// Completed: the key was already processed; Record.Result is the answer.
	Completed
	// Mismatch: the key was used with a different fingerprint (a different request).
	Mismatch
)

func (o ClaimOutcome) String() string {
	switch o {
	case Claimed:
		return "claimed"
	case InProgress:
		return "in_progress"
	case Completed:
		return "completed"
	case Mismatch:
		return "mismatch"
	}
	return "unknown"
}

// Record is one idempotency record.
type Record struct {
	Key         string
	Fingerprint string
	Owner       string    // who holds (or held) the lease
	Completed   bool      // false: in progress
	LeaseUntil  time.Time // in progress only: after this, another owner may take over
	Result      []byte    // completed only
	ExpiresAt   time.Time // the record may be deleted after this (backend TTL)
}

// Value is a versioned value for compare-and-swap.
type Value struct {
	Data    []byte
	Version int64 // > 0 for stored values
}

// AuditRecord is one write to a target. It never holds a secret.
type AuditRecord struct {
	Time           time.Time `json:"time"`
	RequestID      string    `json:"request_id"`
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
	Trigger        string    `json:"trigger"`
	Target         string    `json:"target"`
	Operation      string    `json:"operation"` // "METHOD /path/{template}"
	// Resource is what the write acted on, concretely ("/users/42/roles",
	// a site and an email): the ids an admin looks up.
	Resource string `json:"resource,omitempty"`
	Person   string `json:"person"` // the email
	Outcome  string `json:"outcome"`
	Error    string `json:"error,omitempty"`
}

// AuditQuery filters the audit log. Zero values do not filter.
type AuditQuery struct {
	Since  time.Time
	Person string // exact, case-insensitive
	Limit  int    // 0: no limit
}

// Store is what every backend implements. All methods are safe for
// concurrent use by goroutines and by several processes or instances
// sharing the same backing store.
type Store interface {
	// Claim takes key for owner with a lease, atomically: it creates the
	// record when absent, takes it over when its lease has expired (or it has
	// expired altogether), and otherwise reports what is there. A record whose
	// Fingerprint differs is a Mismatch, whatever its state.
	Claim(ctx context.Context, key, fingerprint, owner string, lease, ttl time.Duration) (ClaimOutcome, Record, error)
	// Complete stores the result and marks the record completed, only if
	// owner still holds it (ErrConflict otherwise). ttl restarts from now.
	Complete(ctx context.Context, key, owner string, result []byte, ttl time.Duration) error
	// Renew extends the lease of an in-progress record owner holds to
	// now+lease, so a run slower than one lease keeps others out (see
	// KeepLease). ErrConflict when owner no longer holds it: the record is
	// gone, completed, or taken over by another owner.
	Renew(ctx context.Context, key, owner string, lease time.Duration) error
	// Release deletes an in-progress record owner holds, so a retry can claim
	// it at once (after a retryable failure). Not holding it is not an error.
	Release(ctx context.Context, key, owner string) error

	// Get returns the value under key, or ErrNotFound.
	Get(ctx context.Context, key string) (Value, error)
	// Put writes data if the stored version is expectVersion (0: the key
	// must not exist) and returns the new version; ErrConflict otherwise.
	// ttl 0 keeps the value forever.
	Put(ctx context.Context, key string, data []byte, expectVersion int64, ttl time.Duration) (int64, error)

	// Append adds records to the audit log, in as few round trips as the
	// backend allows (a request writes all of its records at once).
	Append(ctx context.Context, recs ...AuditRecord) error
	// Audit lists audit records oldest first.
	Audit(ctx context.Context, q AuditQuery) ([]AuditRecord, error)

	Close() error
}
