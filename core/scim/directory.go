package scim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/onboard-dev/onboard/core/state"
)

// The directory lives in the state store through Get and Put alone, so
// every backend (file, Firestore, DynamoDB) holds it without a new
// primitive or a table index the infrastructure would have to create:
//
//	scim/<kind>/<id>              the resource (record); empty data once deleted
//	scim/<kind>-name/<sha256>     the claim on a userName or group displayName
//	                              (lower-cased): the id and the creating POST's
//	                              fingerprint; empty once released
//	scim/<kind>-ids/<shard>       the ids of every resource of kind, in shards
//	scim/members/<group>/<shard>  the ids of a group's members, in shards
//	scim/applied/<user id>        what onboard last provisioned for the user
//
// An id set is split into idShards items so that a large directory or
// group stays under DynamoDB's 400 KB item (and Firestore's 1 MiB document)
// limits: about 10,000 ids an item, some 300,000 a set. The store has no
// delete, so a deleted resource or released name is a value with no data.
//
// The store has no transaction either, so a resource exists when its
// record is written and its id is in the kind's id set: a create writes
// the record, then adds the id; a delete takes the id out first. A write
// that stops between the two (a crash, a timeout) leaves a record no read
// sees (no get, list, count or lookup), which a retry of the same POST
// finishes and a POST of another after staleClaim replaces.
const (
	kindUser  = "user"
	kindGroup = "group"

	idShards    = 32
	maxShardIDs = 10_000
	// staleClaim is how long a name claimed by a POST that never wrote its
	// resource (it crashed, and its IdP never retried) blocks the name.
	staleClaim = 10 * time.Minute
	// casAttempts bounds the retries of a compare-and-swap that lost to a
	// concurrent writer; each loss means another writer made progress.
	casAttempts = 20
)

// record is one stored SCIM resource.
type record struct {
	// Attributes are as schema validation returns them: canonical names,
	// extensions under their schema URN, read-only attributes left out.
	Attributes map[string]any `json:"attributes"`
	Created    time.Time      `json:"created"`
	Modified   time.Time      `json:"modified"`
	// Groups are the ids of a user's groups: the truth of membership, so a
	// membership change is a new version of the user, and what provisioning
	// reads. The groups' member sets are an index of it, kept a superset.
	Groups []string `json:"groups,omitempty"`
}

// stored is a record with its id and store version.
type stored struct {
	kind    string
	id      string
	rec     record
	version int64
}

func (s stored) etag() string { return `W/"` + strconv.FormatInt(s.version, 10) + `"` }

func (s stored) str(name string) string {
	v, _ := s.rec.Attributes[name].(string)
	return v
}

type nameClaim struct {
	ID string `json:"id"`
	// Fingerprint is the creating POST's: the same POST again is its
	// retry, to be answered with the resource it made, not a 409.
	Fingerprint string    `json:"fingerprint"`
	At          time.Time `json:"at"`
}

// directory is the SCIM directory in the state store.
type directory struct {
	store state.Store
	now   func() time.Time
}

func recordKey(kind, id string) string { return "scim/" + kind + "/" + id }

func nameKey(kind, name string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(name)))
	return "scim/" + kind + "-name/" + hex.EncodeToString(sum[:])
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// errStore wraps a store failure: the IdP should retry.
func errStore(err error) error {
	return &scimError{status: http.StatusServiceUnavailable, detail: "the directory is temporarily unavailable; retry later", retryAfter: 5 * time.Second, cause: err}
}

// get reads a resource; ok is false when there is none: never written,
// deleted, or a write of it stopped part way.
func (d *directory) get(ctx context.Context, kind, id string) (stored, bool, error) {
	var (
		s               stored
		written, listed bool
		errs            [2]error
		wg              sync.WaitGroup
	)
	wg.Go(func() { s, written, errs[0] = d.readRecord(ctx, kind, id) })
	wg.Go(func() { listed, errs[1] = d.ids(kind).has(ctx, id) })
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return stored{}, false, err
	}
	return s, written && listed, nil
}

// readRecord reads a resource's record, whether or not its id is listed;
// written is false when there is none (or it was deleted). s has the
// version a write of the record compares against either way.
func (d *directory) readRecord(ctx context.Context, kind, id string) (s stored, written bool, _ error) {
	if id == "" || strings.ContainsAny(id, "/") {
		return stored{}, false, nil
	}
	v, err := d.store.Get(ctx, recordKey(kind, id))
	if errors.Is(err, state.ErrNotFound) || (err == nil && len(v.Data) == 0) {
		return stored{kind: kind, id: id, version: v.Version}, false, nil
	}
	if err != nil {
		return stored{}, false, errStore(err)
	}
	s = stored{kind: kind, id: id, version: v.Version}
	if err := json.Unmarshal(v.Data, &s.rec); err != nil {
		return stored{}, false, fmt.Errorf("scim %s %s is unreadable: %w", kind, id, err)
	}
	return s, true, nil
}

// put writes s.rec if the stored version is still s.version, and
// returns s at its new version; a conflict is state.ErrConflict.
func (d *directory) put(ctx context.Context, s stored) (stored, error) {
	data, err := json.Marshal(s.rec)
	if err != nil {
		return s, err
	}
	v, err := d.store.Put(ctx, recordKey(s.kind, s.id), data, s.version, 0)
	if err != nil {
		return s, err
	}
	s.version = v
	return s, nil
}

// remove deletes the resource at version s.version.
func (d *directory) remove(ctx context.Context, s stored) error {
	_, err := d.store.Put(ctx, recordKey(s.kind, s.id), nil, s.version, 0)
	return err
}

// claimName takes name for id. The answer is the id that holds it: id
// itself when taken, or the holder's (with its claim) when another
// resource has it. A claim whose resource does not exist staleClaim after
// it was made (its POST stopped part way and was not retried, or its
// DELETE stopped before releasing the name) is taken over.
func (d *directory) claimName(ctx context.Context, kind, name, id, fingerprint string) (holder nameClaim, err error) {
	key := nameKey(kind, name)
	mine := nameClaim{ID: id, Fingerprint: fingerprint, At: d.now().UTC()}
	data, err := json.Marshal(mine)
	if err != nil {
		return nameClaim{}, err
	}
	for range casAttempts {
		holder = nameClaim{}
		v, err := d.store.Get(ctx, key)
		if err != nil && !errors.Is(err, state.ErrNotFound) {
			return nameClaim{}, errStore(err)
		}
		if len(v.Data) > 0 {
			if err := json.Unmarshal(v.Data, &holder); err != nil {
				return nameClaim{}, fmt.Errorf("the claim on a scim %s name is unreadable: %w", kind, err)
			}
			if holder.ID == id {
				return holder, nil
			}
			_, exists, err := d.get(ctx, kind, holder.ID)
			if err != nil {
				return nameClaim{}, err
			}
			if exists || holder.Fingerprint == fingerprint || d.now().Sub(holder.At) < staleClaim {
				return holder, nil
			}
		}
		_, err = d.store.Put(ctx, key, data, v.Version, 0)
		if errors.Is(err, state.ErrConflict) {
			continue
		}
		if err != nil {
			return nameClaim{}, errStore(err)
		}
		if holder.ID != "" {
			if err := d.forgetUnwritten(ctx, kind, holder.ID); err != nil {
				return nameClaim{}, err
			}
		}
		return mine, nil
	}
	return nameClaim{}, errStore(errors.New("a scim name is too contended"))
}

// forgetUnwritten takes the id of a resource whose name was taken over out
// of the id set, should it be there without a record: what a create that
// stopped part way left behind before creates wrote the record first.
func (d *directory) forgetUnwritten(ctx context.Context, kind, id string) error {
	_, written, err := d.readRecord(ctx, kind, id)
	if err != nil || written {
		return err
	}
	return d.ids(kind).change(ctx, id, false)
}

// releaseName frees name if id holds it.
func (d *directory) releaseName(ctx context.Context, kind, name, id string) error {
	key := nameKey(kind, name)
	for range casAttempts {
		v, err := d.store.Get(ctx, key)
		if errors.Is(err, state.ErrNotFound) {
			return nil
		}
		if err != nil {
			return errStore(err)
		}
		var holder nameClaim
		if len(v.Data) == 0 || json.Unmarshal(v.Data, &holder) != nil || holder.ID != id {
			return nil
		}
		_, err = d.store.Put(ctx, key, nil, v.Version, 0)
		if errors.Is(err, state.ErrConflict) {
			continue
		}
		if err != nil {
			return errStore(err)
		}
		return nil
	}
	return errStore(errors.New("a scim name is too contended"))
}

// lookupName returns the id holding name, "" when none.
func (d *directory) lookupName(ctx context.Context, kind, name string) (string, error) {
	v, err := d.store.Get(ctx, nameKey(kind, name))
	if errors.Is(err, state.ErrNotFound) || (err == nil && len(v.Data) == 0) {
		return "", nil
	}
	if err != nil {
		return "", errStore(err)
	}
	var holder nameClaim
	if err := json.Unmarshal(v.Data, &holder); err != nil {
		return "", fmt.Errorf("the claim on a scim %s name is unreadable: %w", kind, err)
	}
	return holder.ID, nil
}

// idSet is a set of ids split over idShards values.
type idSet struct {
	store  state.Store
	prefix string
}

func (d *directory) ids(kind string) idSet {
	return idSet{store: d.store, prefix: "scim/" + kind + "-ids/"}
}

func (d *directory) members(groupID string) idSet {
	return idSet{store: d.store, prefix: "scim/members/" + groupID + "/"}
}

func (s idSet) shardKey(id string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return s.prefix + strconv.Itoa(int(h.Sum32()%idShards))
}

// change adds (or removes) id, a no-op when it already is (or is not) there.
func (s idSet) change(ctx context.Context, id string, add bool) error {
	key := s.shardKey(id)
	for range casAttempts {
		v, err := s.store.Get(ctx, key)
		if err != nil && !errors.Is(err, state.ErrNotFound) {
			return errStore(err)
		}
		var ids []string
		if len(v.Data) > 0 {
			if err := json.Unmarshal(v.Data, &ids); err != nil {
				return fmt.Errorf("scim id set %s is unreadable: %w", key, err)
			}
		}
		i, found := slices.BinarySearch(ids, id)
		switch {
		case found == add:
			return nil
		case add && len(ids) >= maxShardIDs:
			return &scimError{status: http.StatusInsufficientStorage, detail: "onboard's SCIM directory holds as many resources of this kind (or members of this group) as it can store"}
		case add:
			ids = slices.Insert(ids, i, id)
		default:
			ids = slices.Delete(ids, i, i+1)
		}
		data, err := json.Marshal(ids)
		if err != nil {
			return err
		}
		_, err = s.store.Put(ctx, key, data, v.Version, 0)
		if errors.Is(err, state.ErrConflict) {
			continue
		}
		if err != nil {
			return errStore(err)
		}
		return nil
	}
	return errStore(errors.New("a scim id set is too contended"))
}

// has says whether id is in the set.
func (s idSet) has(ctx context.Context, id string) (bool, error) {
	ids, err := s.shard(ctx, s.shardKey(id))
	if err != nil {
		return false, err
	}
	_, found := slices.BinarySearch(ids, id)
	return found, nil
}

func (s idSet) shard(ctx context.Context, key string) ([]string, error) {
	v, err := s.store.Get(ctx, key)
	if errors.Is(err, state.ErrNotFound) || (err == nil && len(v.Data) == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, errStore(err)
	}
	var ids []string
	if err := json.Unmarshal(v.Data, &ids); err != nil {
		return nil, fmt.Errorf("scim id set %s is unreadable: %w", key, err)
	}
	return ids, nil
}

// all lists the set, sorted, reading its shards concurrently.
func (s idSet) all(ctx context.Context) ([]string, error) {
	shards := make([][]string, idShards)
	errs := make([]error, idShards)
	var wg sync.WaitGroup
	for i := range idShards {
		wg.Go(func() { shards[i], errs[i] = s.shard(ctx, s.prefix+strconv.Itoa(i)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := slices.Concat(shards...)
	slices.Sort(out)
	return out, nil
}

// getAll reads the resources of ids, leaving out those that do not
// exist (as get says), each id set shard they fall in read once.
func (d *directory) getAll(ctx context.Context, kind string, ids []string) ([]stored, error) {
	set := d.ids(kind)
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = set.shardKey(id)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	shards := make([][]string, len(keys))
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, key := range keys {
		wg.Go(func() { shards[i], errs[i] = set.shard(ctx, key) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	listed := make(map[string][]string, len(keys))
	for i, key := range keys {
		listed[key] = shards[i]
	}
	var existing []string
	for _, id := range ids {
		if _, found := slices.BinarySearch(listed[set.shardKey(id)], id); found {
			existing = append(existing, id)
		}
	}
	return d.records(ctx, kind, existing)
}

// records reads the resources of ids taken from the id set just now
// (concurrently, a bounded number at a time), leaving out those whose
// record is gone: deleted since.
func (d *directory) records(ctx context.Context, kind string, ids []string) ([]stored, error) {
	out := make([]stored, len(ids))
	found := make([]bool, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i], found[i], errs[i] = d.readRecord(ctx, kind, id)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	kept := out[:0]
	for i, s := range out {
		if found[i] {
			kept = append(kept, s)
		}
	}
	return kept, nil
}
