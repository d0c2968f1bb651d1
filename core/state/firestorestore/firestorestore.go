// Package firestorestore is the state.Store on Cloud Firestore in native
// mode (ONBOARD_STORE=firestore), for the Cloud Functions entry points.
//
// Three collections, named with a prefix ("onboard_" by default) so the
// store can share a database with other applications:
//
//	onboard_idempotency/<key>  key, fingerprint, owner, completed,
//	                           lease_until (in progress only), result
//	                           (completed only), expires_at
//	onboard_values/<key>       key, data, version, expires_at (ttl > 0 only)
//	onboard_audit/<time>#<random>
//	                           time, request_id, idempotency_key, trigger,
//	                           target, operation, person, person_lc,
//	                           outcome, error
//
// Document ids are the keys, percent-escaped where Firestore forbids them
// ('/', a leading '.' or '_'); keys whose escaped form exceeds 1 KiB are
// stored under "%%sha256:<hex>", which no escaped key can equal. The key
// field always holds the original.
//
// Claim, Complete, Renew, Release and Put are read-modify-write transactions:
// the read and the conditional write commit together or not at all, and
// Firestore retries a transaction that lost a race with fresh data.
//
// expires_at is a timestamp for a Firestore TTL policy on the
// onboard_idempotency and onboard_values collection groups; documents
// without it (values written with ttl 0, audit records) are kept. Expired
// documents count as absent at once, since TTL deletion lags by up to a day.
//
// Audit document ids start with the time in fixed-width UTC, so ordering by
// id is ordering by time and --since is a cursor on the id. Filtering by
// person is an equality on person_lc ordered by id, which the automatic
// single-field index serves: no composite index to deploy.
package firestorestore

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/internal/rules"
)

// DefaultPrefix starts every collection name unless Options.Prefix is set.
const DefaultPrefix = "onboard_"

const (
	// maxIDBytes stays under Firestore's 1500-byte document id limit.
	maxIDBytes = 1024
	// maxAttempts lets a burst of duplicate deliveries of one request
	// (dozens, all touching one document) run without exhausting the
	// client's default of 5 attempts; each retry means someone else won.
	maxAttempts = 30
)

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]*$`)

// Options tune a Store; the zero value is the default.
type Options struct {
	// Prefix starts the collection names; DefaultPrefix when empty.
	Prefix string
	// Now is the clock deciding leases and expiry; time.Now when nil. It,
	// not the server's clock, is what leases are compared against, so
	// instances must keep reasonable time (Cloud Functions' is synced).
	Now func() time.Time
}

// Store is a state.Store in Firestore.
type Store struct {
	client                  *firestore.Client
	ownsClient              bool
	records, values, audits *firestore.CollectionRef
	now                     func() time.Time
}

var _ state.Store = (*Store)(nil)

// New returns a store using client, which the caller keeps and closes. It
// makes no request: a cold start should not pay for a round trip.
func New(client *firestore.Client, opts Options) (*Store, error) {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if !prefixRE.MatchString(opts.Prefix) {
		return nil, fmt.Errorf("firestorestore: collection prefix %q: use letters, digits, '_' and '-'", opts.Prefix)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{
		client:  client,
		records: client.Collection(opts.Prefix + "idempotency"),
		values:  client.Collection(opts.Prefix + "values"),
		audits:  client.Collection(opts.Prefix + "audit"),
		now:     opts.Now,
	}, nil
}

// OpenFromEnv opens the store with its own client, closed by Close.
// Settings: ONBOARD_GCP_PROJECT (else detected from the runtime's
// credentials), ONBOARD_FIRESTORE_DATABASE ("(default)" when unset),
// ONBOARD_FIRESTORE_PREFIX (DefaultPrefix when unset) and
// FIRESTORE_EMULATOR_HOST, honoured from getenv as well as the process.
func OpenFromEnv(ctx context.Context, getenv func(string) string) (*Store, error) {
	project := getenv("ONBOARD_GCP_PROJECT")
	if project == "" {
		project = firestore.DetectProjectID
	}
	database := getenv("ONBOARD_FIRESTORE_DATABASE")
	if database == "" {
		database = firestore.DefaultDatabaseID
	}
	var opts []option.ClientOption
	if host := getenv("FIRESTORE_EMULATOR_HOST"); host != "" {
		opts = append(opts, option.WithEndpoint(host), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	}
	client, err := firestore.NewClientWithDatabase(ctx, project, database, opts...)
	if err != nil {
		return nil, fmt.Errorf("firestorestore: %w", err)
	}
	s, err := New(client, Options{Prefix: getenv("ONBOARD_FIRESTORE_PREFIX")})
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	s.ownsClient = true
	return s, nil
}

// Backend opens the store for ONBOARD_STORE=firestore.
func Backend(ctx context.Context, arg string, getenv func(string) string) (state.Store, error) {
	if arg != "" {
		return nil, fmt.Errorf("firestorestore: unexpected %q after firestore: use ONBOARD_FIRESTORE_DATABASE or ONBOARD_FIRESTORE_PREFIX", arg)
	}
	s, err := OpenFromEnv(ctx, getenv)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Close closes the client if OpenFromEnv made it.
func (s *Store) Close() error {
	if s.ownsClient {
		return s.client.Close()
	}
	return nil
}

// docID maps any key to a valid document id, injectively.
func docID(key string) string {
	id := url.PathEscape(key)
	if id != "" && (id[0] == '.' || id[0] == '_') {
		id = fmt.Sprintf("%%%02X", id[0]) + id[1:]
	}
	if len(id) > maxIDBytes {
		id = "%%sha256:" + rules.Digest(key)
	}
	return id
}

type recordDoc struct {
	Key         string    `firestore:"key"`
	Fingerprint string    `firestore:"fingerprint"`
	Owner       string    `firestore:"owner"`
	Completed   bool      `firestore:"completed"`
	LeaseUntil  time.Time `firestore:"lease_until,omitempty"`
	Result      []byte    `firestore:"result,omitempty"`
	ExpiresAt   time.Time `firestore:"expires_at,omitempty"`
}

type valueDoc struct {
	Key       string    `firestore:"key"`
	Data      []byte    `firestore:"data"`
	Version   int64     `firestore:"version"`
	ExpiresAt time.Time `firestore:"expires_at,omitempty"`
}

type auditDoc struct {
	Time           time.Time `firestore:"time"`
	RequestID      string    `firestore:"request_id"`
	IdempotencyKey string    `firestore:"idempotency_key,omitempty"`
	Trigger        string    `firestore:"trigger"`
	Target         string    `firestore:"target"`
	Operation      string    `firestore:"operation"`
	Resource       string    `firestore:"resource,omitempty"`
	Person         string    `firestore:"person"`
	PersonLC       string    `firestore:"person_lc"`
	Outcome        string    `firestore:"outcome"`
	Error          string    `firestore:"error,omitempty"`
}

// load decodes a snapshot into dst, reporting false for a missing document.
func load(snap *firestore.DocumentSnapshot, err error, dst any) (bool, error) {
	if status.Code(err) == codes.NotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := snap.DataTo(dst); err != nil {
		return false, fmt.Errorf("firestorestore: %s: %w", snap.Ref.Path, err)
	}
	return true, nil
}

func toRecord(d recordDoc) *state.Record {
	return &state.Record{
		Key: d.Key, Fingerprint: d.Fingerprint, Owner: d.Owner, Completed: d.Completed,
		LeaseUntil: d.LeaseUntil, Result: d.Result, ExpiresAt: d.ExpiresAt,
	}
}

func fromRecord(r state.Record) recordDoc {
	return recordDoc{
		Key: r.Key, Fingerprint: r.Fingerprint, Owner: r.Owner, Completed: r.Completed,
		LeaseUntil: r.LeaseUntil, Result: r.Result, ExpiresAt: r.ExpiresAt,
	}
}

// update runs fn on ref's document (nil when absent) in a transaction and
// applies its answer: set next, delete, or, with neither, change nothing.
func update[D any](ctx context.Context, s *Store, ref *firestore.DocumentRef, fn func(cur *D, now time.Time) (next *D, del bool, err error)) error {
	return s.client.RunTransaction(ctx, func(_ context.Context, tx *firestore.Transaction) error {
		var d D
		snap, err := tx.Get(ref)
		found, err := load(snap, err, &d)
		if err != nil {
			return err
		}
		cur := &d
		if !found {
			cur = nil
		}
		next, del, err := fn(cur, s.now())
		switch {
		case err != nil:
			return err
		case del:
			return tx.Delete(ref)
		case next != nil:
			return tx.Set(ref, *next)
		}
		return nil
	}, firestore.MaxAttempts(maxAttempts))
}

// onRecord is update for idempotency records, in state's terms.
func (s *Store) onRecord(ctx context.Context, key string, fn func(cur *state.Record, now time.Time) (next *state.Record, del bool, err error)) error {
	return update(ctx, s, s.records.Doc(docID(key)), func(cur *recordDoc, now time.Time) (*recordDoc, bool, error) {
		var rec *state.Record
		if cur != nil {
			rec = toRecord(*cur)
		}
		next, del, err := fn(rec, now)
		if next == nil {
			return nil, del, err
		}
		d := fromRecord(*next)
		return &d, del, err
	})
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
	err := s.onRecord(ctx, key, func(cur *state.Record, now time.Time) (*state.Record, bool, error) {
		outcome, rec = rules.Claim(cur, now, key, fingerprint, owner, lease, ttl)
		if outcome != state.Claimed {
			return nil, false, nil
		}
		return &rec, false, nil
	})
	if err != nil {
		return 0, state.Record{}, fmt.Errorf("firestorestore: claim: %w", err)
	}
	return outcome, rec, nil
}

// Complete implements state.Store.
func (s *Store) Complete(ctx context.Context, key, owner string, result []byte, ttl time.Duration) error {
	if err := rules.CheckKey(key); err != nil {
		return err
	}
	err := s.onRecord(ctx, key, func(cur *state.Record, now time.Time) (*state.Record, bool, error) {
		rec, write, err := rules.Complete(cur, now, owner, result, ttl)
		if err != nil || !write {
			return nil, false, err
		}
		return &rec, false, nil
	})
	if err != nil {
		return fmt.Errorf("firestorestore: complete: %w", err)
	}
	return nil
}

// Renew implements state.Store.
func (s *Store) Renew(ctx context.Context, key, owner string, lease time.Duration) error {
	if err := rules.CheckClaim(key, owner, lease); err != nil {
		return err
	}
	err := s.onRecord(ctx, key, func(cur *state.Record, now time.Time) (*state.Record, bool, error) {
		rec, err := rules.Renew(cur, now, owner, lease)
		if err != nil {
			return nil, false, err
		}
		return &rec, false, nil
	})
	if err != nil {
		return fmt.Errorf("firestorestore: renew: %w", err)
	}
	return nil
}

// Release implements state.Store.
func (s *Store) Release(ctx context.Context, key, owner string) error {
	if err := rules.CheckKey(key); err != nil {
		return err
	}
	err := s.onRecord(ctx, key, func(cur *state.Record, _ time.Time) (*state.Record, bool, error) {
		return nil, rules.Releasable(cur, owner), nil
	})
	if err != nil {
		return fmt.Errorf("firestorestore: release: %w", err)
	}
	return nil
}

// Get implements state.Store.
func (s *Store) Get(ctx context.Context, key string) (state.Value, error) {
	if err := rules.CheckKey(key); err != nil {
		return state.Value{}, err
	}
	var d valueDoc
	snap, err := s.values.Doc(docID(key)).Get(ctx)
	found, err := load(snap, err, &d)
	if err != nil {
		return state.Value{}, fmt.Errorf("firestorestore: get: %w", err)
	}
	if !found || rules.Expired(d.ExpiresAt, s.now()) {
		return state.Value{}, state.ErrNotFound
	}
	return state.Value{Data: d.Data, Version: d.Version}, nil
}

// Put implements state.Store.
func (s *Store) Put(ctx context.Context, key string, data []byte, expectVersion int64, ttl time.Duration) (int64, error) {
	if err := rules.CheckKey(key); err != nil {
		return 0, err
	}
	var version int64
	err := update(ctx, s, s.values.Doc(docID(key)), func(cur *valueDoc, now time.Time) (*valueDoc, bool, error) {
		var stored *rules.Stored
		if cur != nil {
			stored = &rules.Stored{Data: cur.Data, Version: cur.Version, ExpiresAt: cur.ExpiresAt}
		}
		var err error
		if version, err = rules.Put(stored, now, expectVersion); err != nil {
			return nil, false, err
		}
		return &valueDoc{Key: key, Data: data, Version: version, ExpiresAt: rules.Expiry(now, ttl)}, false, nil
	})
	if err != nil {
		return 0, fmt.Errorf("firestorestore: put: %w", err)
	}
	return version, nil
}

// Append implements state.Store. Create, not Set: a colliding id (which
// the random suffix makes practically impossible) fails instead of
// overwriting history.
func (s *Store) Append(ctx context.Context, recs ...state.AuditRecord) error {
	// One Commit of all the records (up to 500 writes a call). The bulk
	// writer's BatchWrite would do too, but the emulator refuses it
	// without admin credentials, and a Commit is atomic besides.
	now := s.now()
	for start := 0; start < len(recs); start += maxCommitWrites {
		batch := s.client.Batch() //nolint:staticcheck // see above: one Commit call
		for _, rec := range recs[start:min(start+maxCommitWrites, len(recs))] {
			rec = rules.Stamp(rec, now)
			batch.Create(s.audits.Doc(rules.AuditKey(rec.Time, rand.Text())), auditDoc{
				Time: rec.Time, RequestID: rec.RequestID, IdempotencyKey: rec.IdempotencyKey, Trigger: rec.Trigger,
				Target: rec.Target, Operation: rec.Operation, Resource: rec.Resource, Person: rec.Person, PersonLC: rules.PersonKey(rec.Person),
				Outcome: rec.Outcome, Error: rec.Error,
			})
		}
		if _, err := batch.Commit(ctx); err != nil {
			return fmt.Errorf("firestorestore: append: %w", err)
		}
	}
	return nil
}

// maxCommitWrites is Firestore's limit on the writes of one Commit.
const maxCommitWrites = 500

// Audit implements state.Store.
func (s *Store) Audit(ctx context.Context, q state.AuditQuery) ([]state.AuditRecord, error) {
	query := s.audits.Query
	if q.Person != "" {
		query = query.Where("person_lc", "==", rules.PersonKey(q.Person))
	}
	query = query.OrderBy(firestore.DocumentID, firestore.Asc)
	if since := rules.AuditSince(q.Since); since != "" {
		query = query.StartAt(since)
	}
	if q.Limit > 0 {
		query = query.Limit(q.Limit)
	}
	docs, err := query.Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("firestorestore: audit: %w", err)
	}
	out := make([]state.AuditRecord, 0, len(docs))
	for _, doc := range docs {
		var d auditDoc
		if err := doc.DataTo(&d); err != nil {
			return nil, fmt.Errorf("firestorestore: %s: %w", doc.Ref.Path, err)
		}
		// No re-filtering with rules.Matches: the query is exact on the
		// nanosecond id, while the time field is only kept to the microsecond.
		out = append(out, state.AuditRecord{
			Time: d.Time, RequestID: d.RequestID, IdempotencyKey: d.IdempotencyKey, Trigger: d.Trigger,
			Target: d.Target, Operation: d.Operation, Resource: d.Resource, Person: d.Person, Outcome: d.Outcome, Error: d.Error,
		})
	}
	return out, nil
}
