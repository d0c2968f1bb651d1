// Package filestore is the embedded state.Store (ONBOARD_STORE=file:<dir>):
// one bbolt file, dir/onboard.db, for local runs, the sandbox and the CLI.
//
// bbolt locks its file for as long as a handle is open (flock: exclusive
// for writers, shared for readers), so a process that kept the database
// open would shut every other process out of the directory, e.g. `onboard
// audit` while `make run` serves. The store therefore opens the file for
// each operation and closes it right after: the lock is held for one
// transaction, never between operations, and one transaction at a time
// makes Claim and Put atomic with no further machinery.
//
// Taking turns: within a process, a read-write mutex per file queues
// writers and lets readers share; across processes, each operation first
// takes a blocking flock on dir/onboard.lock, so a waiting process is woken
// by the kernel the moment the file is free. bbolt's own lock would only
// let it poll every 50ms, and a busy process would win every race.
//
// Expired records and values count as absent as soon as they expire, and a
// sweep deletes them at most once per Options.SweepInterval (piggybacked on
// a write) or when Sweep is called.
package filestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/internal/rules"
)

// FileName is the database file inside the store's directory.
const FileName = "onboard.db"

// LockFileName is the file processes lock to take turns on the database.
const LockFileName = "onboard.lock"

// Bucket names, visible to `bbolt buckets dir/onboard.db`.
var (
	bucketIdempotency = []byte("idempotency")
	bucketValues      = []byte("values")
	bucketAudit       = []byte("audit")
	buckets           = [][]byte{bucketIdempotency, bucketValues, bucketAudit}
)

const (
	// DefaultLockTimeout bounds how long an operation waits for another
	// process's transaction; any real transaction takes milliseconds, so
	// reaching it means a process is stuck holding the file.
	DefaultLockTimeout = 30 * time.Second
	// DefaultSweepInterval spaces out sweeps, which read every record.
	DefaultSweepInterval = time.Hour

	maxBackoff = 20 * time.Millisecond
)

// Options tune a Store; the zero value is the default.
type Options struct {
	// Now is the clock deciding leases and expiry; time.Now when nil.
	Now func() time.Time
	// LockTimeout: DefaultLockTimeout when zero.
	LockTimeout time.Duration
	// SweepInterval: DefaultSweepInterval when zero; negative disables
	// automatic sweeps (Sweep still works).
	SweepInterval time.Duration
}

// Store is a state.Store in one bbolt file.
type Store struct {
	path     string
	lockPath string
	opts     Options
	mu       *sync.RWMutex // shared by every Store on the same file in this process

	// lastSweep is guarded by mu held for writing.
	lastSweep time.Time
}

var _ state.Store = (*Store)(nil)

// fileLocks maps a database's absolute path to the mutex its Stores share.
var fileLocks sync.Map

// Open opens (creating if needed) the store in dir with default options.
func Open(dir string) (*Store, error) {
	return OpenOptions(dir, Options{})
}

// OpenOptions opens (creating if needed) the store in dir.
func OpenOptions(dir string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LockTimeout == 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.SweepInterval == 0 {
		opts.SweepInterval = DefaultSweepInterval
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	// 0700: audit records name people, and results may hold user ids.
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	path := filepath.Join(abs, FileName)
	mu, _ := fileLocks.LoadOrStore(path, &sync.RWMutex{})
	s := &Store{path: path, lockPath: filepath.Join(abs, LockFileName), opts: opts, mu: mu.(*sync.RWMutex)}
	// A store made before opens with a read, which costs no fsync: every
	// CLI command and every start opens it.
	if s.hasBuckets() {
		return s, nil
	}
	// Read-only opens cannot create the file or its buckets, so do it now.
	err = s.update(context.Background(), func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// hasBuckets reports whether the file exists with every bucket in it. Any
// failure (no file yet, say) answers no: the write that follows reports
// it, if it persists.
func (s *Store) hasBuckets() bool {
	err := s.view(context.Background(), func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if tx.Bucket(b) == nil {
				return bolterrors.ErrBucketNotFound
			}
		}
		return nil
	})
	return err == nil
}

// Backend opens the store for ONBOARD_STORE=file:<dir>; an empty dir is
// the default .onboard in the working directory.
func Backend(_ context.Context, dir string, _ func(string) string) (state.Store, error) {
	if dir == "" {
		_, dir, _ = strings.Cut(state.DefaultSpec, ":")
	}
	s, err := Open(dir)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Path is the database file, for `bbolt` inspection and error messages.
func (s *Store) Path() string { return s.path }

// Close releases nothing: the file is only open during operations.
func (s *Store) Close() error { return nil }

// session runs fn with the database open, holding the file for as short a
// time as possible: see the package comment.
func (s *Store) session(ctx context.Context, write bool, fn func(*bolt.DB) error) error {
	if write {
		s.mu.Lock()
		defer s.mu.Unlock()
	} else {
		s.mu.RLock()
		defer s.mu.RUnlock()
	}
	lockCtx, cancel := context.WithTimeout(ctx, s.opts.LockTimeout)
	defer cancel()
	unlock, err := lockFile(lockCtx, s.lockPath, write)
	if err != nil {
		return s.lockError(ctx, err)
	}
	defer unlock()
	db, err := s.open(lockCtx, !write)
	if err != nil {
		return s.lockError(ctx, err)
	}
	defer db.Close()
	return fn(db)
}

func (s *Store) lockError(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Errorf("filestore: %s stayed locked by another process for %v", s.path, s.opts.LockTimeout)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("filestore: locking %s: %w", s.path, err)
}

func (s *Store) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	return s.session(ctx, false, func(db *bolt.DB) error { return db.View(fn) })
}

func (s *Store) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	return s.session(ctx, true, func(db *bolt.DB) error {
		if err := db.Update(fn); err != nil {
			return err
		}
		if s.opts.SweepInterval > 0 && s.opts.Now().Sub(s.lastSweep) >= s.opts.SweepInterval {
			// The operation itself succeeded; a failed sweep is retried next time.
			_, _ = s.sweep(db)
		}
		return nil
	})
}

// open retries bbolt's own file lock, which only a process bypassing the
// lock file (the bbolt CLI, say) can be holding; bbolt's built-in wait
// polls every 50ms and ignores ctx.
func (s *Store) open(ctx context.Context, readOnly bool) (*bolt.DB, error) {
	backoff := time.Millisecond
	for {
		// Any positive Timeout shorter than bbolt's poll makes it try once.
		db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: time.Nanosecond, ReadOnly: readOnly})
		if !errors.Is(err, bolterrors.ErrTimeout) {
			if err != nil {
				return nil, fmt.Errorf("filestore: opening %s: %w", s.path, err)
			}
			return db, nil
		}
		// Jitter keeps two waiting processes from retrying in lockstep.
		wait := backoff/2 + mathrand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// record is an idempotency record as stored (JSON, readable with `bbolt get`).
type record struct {
	Fingerprint string    `json:"fingerprint"`
	Owner       string    `json:"owner"`
	Completed   bool      `json:"completed"`
	LeaseUntil  time.Time `json:"lease_until,omitzero"`
	Result      []byte    `json:"result,omitempty"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
}

// value is a versioned value as stored.
type value struct {
	Data      []byte    `json:"data"`
	Version   int64     `json:"version"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

func getRecord(b *bolt.Bucket, key string) (*state.Record, error) {
	raw := b.Get([]byte(key))
	if raw == nil {
		return nil, nil
	}
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("filestore: record %q: %w", key, err)
	}
	return &state.Record{
		Key: key, Fingerprint: r.Fingerprint, Owner: r.Owner, Completed: r.Completed,
		LeaseUntil: r.LeaseUntil, Result: r.Result, ExpiresAt: r.ExpiresAt,
	}, nil
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), raw)
}

func putRecord(b *bolt.Bucket, rec state.Record) error {
	return putJSON(b, rec.Key, record{
		Fingerprint: rec.Fingerprint, Owner: rec.Owner, Completed: rec.Completed,
		LeaseUntil: rec.LeaseUntil, Result: rec.Result, ExpiresAt: rec.ExpiresAt,
	})
}

func getValue(b *bolt.Bucket, key string) (*rules.Stored, error) {
	raw := b.Get([]byte(key))
	if raw == nil {
		return nil, nil
	}
	var v value
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("filestore: value %q: %w", key, err)
	}
	return &rules.Stored{Data: v.Data, Version: v.Version, ExpiresAt: v.ExpiresAt}, nil
}

// Claim implements state.Store.
func (s *Store) Claim(ctx context.Context, key, fingerprint, owner string, lease, ttl time.Duration) (state.ClaimOutcome, state.Record, error) {
	if err := rules.CheckClaim(key, owner, lease); err != nil {
		return 0, state.Record{}, err
	}
	var (
		outcome state.ClaimOutcome
		rec     state.Record
	)
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIdempotency)
		cur, err := getRecord(b, key)
		if err != nil {
			return err
		}
		outcome, rec = rules.Claim(cur, s.opts.Now(), key, fingerprint, owner, lease, ttl)
		if outcome != state.Claimed {
			return nil
		}
		return putRecord(b, rec)
	})
	if err != nil {
		return 0, state.Record{}, err
	}
	return outcome, rec, nil
}

// Complete implements state.Store.
func (s *Store) Complete(ctx context.Context, key, owner string, result []byte, ttl time.Duration) error {
	if err := rules.CheckKey(key); err != nil {
		return err
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIdempotency)
		cur, err := getRecord(b, key)
		if err != nil {
			return err
		}
		rec, write, err := rules.Complete(cur, s.opts.Now(), owner, result, ttl)
		if err != nil || !write {
			return err
		}
		return putRecord(b, rec)
	})
}

// Renew implements state.Store.
func (s *Store) Renew(ctx context.Context, key, owner string, lease time.Duration) error {
	if err := rules.CheckClaim(key, owner, lease); err != nil {
		return err
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIdempotency)
		cur, err := getRecord(b, key)
		if err != nil {
			return err
		}
		rec, err := rules.Renew(cur, s.opts.Now(), owner, lease)
		if err != nil {
			return err
		}
		return putRecord(b, rec)
	})
}

// Release implements state.Store.
func (s *Store) Release(ctx context.Context, key, owner string) error {
	if err := rules.CheckKey(key); err != nil {
		return err
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIdempotency)
		cur, err := getRecord(b, key)
		if err != nil || !rules.Releasable(cur, owner) {
			return err
		}
		return b.Delete([]byte(key))
	})
}

// Get implements state.Store.
func (s *Store) Get(ctx context.Context, key string) (state.Value, error) {
	if err := rules.CheckKey(key); err != nil {
		return state.Value{}, err
	}
	var cur *rules.Stored
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		cur, err = getValue(tx.Bucket(bucketValues), key)
		return err
	})
	if err != nil {
		return state.Value{}, err
	}
	if cur == nil || rules.Expired(cur.ExpiresAt, s.opts.Now()) {
		return state.Value{}, state.ErrNotFound
	}
	return state.Value{Data: cur.Data, Version: cur.Version}, nil
}

// Put implements state.Store.
func (s *Store) Put(ctx context.Context, key string, data []byte, expectVersion int64, ttl time.Duration) (int64, error) {
	if err := rules.CheckKey(key); err != nil {
		return 0, err
	}
	var version int64
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketValues)
		cur, err := getValue(b, key)
		if err != nil {
			return err
		}
		now := s.opts.Now()
		if version, err = rules.Put(cur, now, expectVersion); err != nil {
			return err
		}
		return putJSON(b, key, value{Data: data, Version: version, ExpiresAt: rules.Expiry(now, ttl)})
	})
	if err != nil {
		return 0, err
	}
	return version, nil
}

// Append implements state.Store. Keys are time#sequence: the bucket's
// sequence makes them unique within the file, whichever process writes.
func (s *Store) Append(ctx context.Context, recs ...state.AuditRecord) error {
	now := s.opts.Now()
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		for _, rec := range recs {
			rec = rules.Stamp(rec, now)
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			if err := putJSON(b, rules.AuditKey(rec.Time, fmt.Sprintf("%016x", seq)), rec); err != nil {
				return err
			}
		}
		return nil
	})
}

// Audit implements state.Store.
func (s *Store) Audit(ctx context.Context, q state.AuditQuery) ([]state.AuditRecord, error) {
	var out []state.AuditRecord
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		for k, raw := c.Seek([]byte(rules.AuditSince(q.Since))); k != nil; k, raw = c.Next() {
			var rec state.AuditRecord
			if err := json.Unmarshal(raw, &rec); err != nil {
				return fmt.Errorf("filestore: audit %q: %w", k, err)
			}
			if !rules.Matches(rec, q) {
				continue
			}
			out = append(out, rec)
			if q.Limit > 0 && len(out) == q.Limit {
				return nil
			}
		}
		return nil
	})
	return out, err
}

// Sweep deletes expired records and values and returns how many. Audit
// records are kept: they are the history, and there is no retention setting.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	var n int
	err := s.session(ctx, true, func(db *bolt.DB) error {
		var err error
		n, err = s.sweep(db)
		return err
	})
	return n, err
}

func (s *Store) sweep(db *bolt.DB) (int, error) {
	now := s.opts.Now()
	n := 0
	err := db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketIdempotency, bucketValues} {
			b := tx.Bucket(name)
			var expired [][]byte
			err := b.ForEach(func(k, raw []byte) error {
				// Both stored shapes carry expires_at under the same name.
				var e struct {
					ExpiresAt time.Time `json:"expires_at"`
				}
				if err := json.Unmarshal(raw, &e); err != nil {
					return fmt.Errorf("filestore: %s %q: %w", name, k, err)
				}
				if rules.Expired(e.ExpiresAt, now) {
					expired = append(expired, k)
				}
				return nil
			})
			if err != nil {
				return err
			}
			// Deleting while iterating can make bbolt's cursor skip keys.
			for _, k := range expired {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			n += len(expired)
		}
		if n == 0 {
			// Rolled back, the transaction writes nothing: a commit would
			// fsync the file for no change, on the first write of every
			// process and hourly after.
			return errNothingExpired
		}
		return nil
	})
	if err != nil && !errors.Is(err, errNothingExpired) {
		return 0, err
	}
	s.lastSweep = now
	return n, nil
}

var errNothingExpired = errors.New("filestore: nothing expired")
