// Package statetest is the conformance suite every state.Store backend
// passes: one set of expectations, so the file store used locally and the
// cloud stores behave the same in production.
//
// Time is a manual Clock handed to the backend, so leases and expiry are
// tested by advancing it rather than by sleeping. The clock starts at the
// real current time: emulators and cloud TTL deleters compare against real
// time, and a clock that only moves forward from there never makes an item
// look live that they consider expired.
//
// Expiry and leases are checked one second either side of the deadline:
// DynamoDB keeps expiry in whole epoch seconds (its TTL attribute), rounded
// up so nothing expires early.
package statetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core/state"
)

// Clock is a manual clock, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock reading start until advanced.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now is the clock's reading; pass the method value as a backend's clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Opener returns a new, empty store using now as its clock. Every call must
// give an isolated store (a new directory, collection prefix or table):
// subtests assert on everything the store holds. The suite closes it.
type Opener func(t *testing.T, now func() time.Time) state.Store

const (
	lease = time.Minute
	ttl   = time.Hour
	// slack is the one-second granularity allowed around deadlines.
	slack = time.Second
	// decade outlives any TTL: what survives it never expires.
	decade = 10 * 365 * 24 * time.Hour
)

// Run runs the conformance suite against the stores open returns.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, *harness)
	}{
		{"ClaimNew", testClaimNew},
		{"SecondOwnerInProgress", testSecondOwnerInProgress},
		{"FingerprintMismatch", testFingerprintMismatch},
		{"CompleteByNonOwner", testCompleteByNonOwner},
		{"CompleteReturnsResult", testCompleteReturnsResult},
		{"LeaseExpiryTakeover", testLeaseExpiryTakeover},
		{"LateCompleteWithoutTakeover", testLateCompleteWithoutTakeover},
		{"Release", testRelease},
		{"RenewKeepsOthersOut", testRenewKeepsOthersOut},
		{"RenewOnlyByTheHolder", testRenewOnlyByTheHolder},
		{"RenewOutlivesRecordTTL", testRenewOutlivesRecordTTL},
		{"RecordExpiry", testRecordExpiry},
		{"ValueCAS", testValueCAS},
		{"ValueExpiry", testValueExpiry},
		{"EmptyPayloads", testEmptyPayloads},
		{"KeysAreOpaque", testKeysAreOpaque},
		{"InvalidArguments", testInvalidArguments},
		{"Audit", testAudit},
		{"ConcurrentClaims", testConcurrentClaims},
		{"ConcurrentPuts", testConcurrentPuts},
		{"ConcurrentRenewAndTakeover", testConcurrentRenewAndTakeover},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Millisecond precision: Firestore keeps microseconds, and
			// audit times must round-trip exactly.
			clock := NewClock(time.Now().UTC().Truncate(time.Millisecond))
			s := open(t, clock.Now)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, &harness{t: t, s: s, clock: clock})
		})
	}
}

// harness wraps a store with assertions, so each test reads as a scenario.
type harness struct {
	t     *testing.T
	s     state.Store
	clock *Clock
}

func (h *harness) ctx() context.Context { return h.t.Context() }

func (h *harness) claim(key, fingerprint, owner string, want state.ClaimOutcome) state.Record {
	h.t.Helper()
	return h.claimTTL(key, fingerprint, owner, ttl, want)
}

func (h *harness) claimTTL(key, fingerprint, owner string, recordTTL time.Duration, want state.ClaimOutcome) state.Record {
	h.t.Helper()
	got, rec, err := h.s.Claim(h.ctx(), key, fingerprint, owner, lease, recordTTL)
	if err != nil {
		h.t.Fatalf("Claim(%.40q, %q, %q): %v", key, fingerprint, owner, err)
	}
	if got != want {
		h.t.Fatalf("Claim(%.40q, %q, %q) = %v (record %+v), want %v", key, fingerprint, owner, got, rec, want)
	}
	return rec
}

func (h *harness) complete(key, owner string, result []byte, want error) {
	h.t.Helper()
	if err := h.s.Complete(h.ctx(), key, owner, result, ttl); !errors.Is(err, want) {
		h.t.Fatalf("Complete(%q, %q, %q) = %v, want %v", key, owner, result, err, want)
	}
}

func (h *harness) release(key, owner string) {
	h.t.Helper()
	if err := h.s.Release(h.ctx(), key, owner); err != nil {
		h.t.Fatalf("Release(%q, %q): %v", key, owner, err)
	}
}

func (h *harness) renew(key, owner string, want error) {
	h.t.Helper()
	if err := h.s.Renew(h.ctx(), key, owner, lease); !errors.Is(err, want) {
		h.t.Fatalf("Renew(%q, %q) = %v, want %v", key, owner, err, want)
	}
}

func (h *harness) put(key string, data []byte, expect int64, valueTTL time.Duration, want error) int64 {
	h.t.Helper()
	v, err := h.s.Put(h.ctx(), key, data, expect, valueTTL)
	if !errors.Is(err, want) {
		h.t.Fatalf("Put(%.40q, %q, %d) = %d, %v; want error %v", key, data, expect, v, err, want)
	}
	if err == nil && v <= 0 {
		h.t.Fatalf("Put(%.40q) returned version %d, want > 0", key, v)
	}
	return v
}

func (h *harness) get(key string, want []byte, wantVersion int64) {
	h.t.Helper()
	v, err := h.s.Get(h.ctx(), key)
	if err != nil {
		h.t.Fatalf("Get(%.40q): %v", key, err)
	}
	if !bytes.Equal(v.Data, want) || v.Version != wantVersion {
		h.t.Fatalf("Get(%.40q) = %q v%d, want %q v%d", key, v.Data, v.Version, want, wantVersion)
	}
}

func (h *harness) getMissing(key string) {
	h.t.Helper()
	if v, err := h.s.Get(h.ctx(), key); !errors.Is(err, state.ErrNotFound) {
		h.t.Fatalf("Get(%q) = %q v%d, %v; want ErrNotFound", key, v.Data, v.Version, err)
	}
}

func testClaimNew(t *testing.T, h *harness) {
	now := h.clock.Now()
	rec := h.claim("req-1", "fp", "a", state.Claimed)
	if rec.Key != "req-1" || rec.Fingerprint != "fp" || rec.Owner != "a" || rec.Completed {
		t.Fatalf("claimed record = %+v", rec)
	}
	if !rec.LeaseUntil.After(now) || rec.LeaseUntil.After(now.Add(lease+slack)) {
		t.Errorf("LeaseUntil = %v, want about now (%v) + %v", rec.LeaseUntil, now, lease)
	}
	if rec.ExpiresAt.Before(now.Add(ttl)) || rec.ExpiresAt.After(now.Add(ttl+slack)) {
		t.Errorf("ExpiresAt = %v, want about now (%v) + %v", rec.ExpiresAt, now, ttl)
	}
	// A different key is a different record.
	h.claim("req-2", "fp", "b", state.Claimed)
}

func testSecondOwnerInProgress(t *testing.T, h *harness) {
	h.claim("k", "fp", "a", state.Claimed)
	rec := h.claim("k", "fp", "b", state.InProgress)
	if rec.Owner != "a" || !rec.LeaseUntil.After(h.clock.Now()) {
		t.Errorf("in-progress record = %+v, want owner a and a future lease (for Retry-After)", rec)
	}
	// A redelivery carrying the same owner id must not run twice either.
	h.claim("k", "fp", "a", state.InProgress)
}

func testFingerprintMismatch(t *testing.T, h *harness) {
	h.claim("k", "fp1", "a", state.Claimed)
	h.claim("k", "fp2", "b", state.Mismatch)
	h.complete("k", "a", []byte("done"), nil)
	h.claim("k", "fp2", "c", state.Mismatch)
	h.claim("k", "fp1", "c", state.Completed)
	// Even after the lease of an abandoned claim ran out.
	h.claim("k2", "fp1", "a", state.Claimed)
	h.clock.Advance(lease + slack)
	h.claim("k2", "fp2", "b", state.Mismatch)
}

func testCompleteByNonOwner(t *testing.T, h *harness) {
	h.claim("k", "fp", "a", state.Claimed)
	h.complete("k", "b", []byte("stolen"), state.ErrConflict)
	if rec := h.claim("k", "fp", "c", state.InProgress); rec.Owner != "a" {
		t.Fatalf("owner after a refused Complete = %q, want a", rec.Owner)
	}
	h.complete("k", "a", []byte("mine"), nil)
	if rec := h.claim("k", "fp", "c", state.Completed); string(rec.Result) != "mine" {
		t.Fatalf("result = %q, want the owner's", rec.Result)
	}
	h.complete("missing", "a", []byte("x"), state.ErrConflict)
}

func testCompleteReturnsResult(t *testing.T, h *harness) {
	result := []byte(`{"status":"created","targets":{"crm":"42"}}`)
	h.claim("k", "fp", "a", state.Claimed)
	h.complete("k", "a", result, nil)
	rec := h.claim("k", "fp", "b", state.Completed)
	if !rec.Completed || !bytes.Equal(rec.Result, result) || rec.Owner != "a" {
		t.Fatalf("completed record = %+v, want a's result %s", rec, result)
	}
	// A retried Complete whose first attempt committed succeeds; anything
	// else on a completed record is a conflict.
	h.complete("k", "a", result, nil)
	h.complete("k", "a", []byte("other"), state.ErrConflict)
	h.complete("k", "b", result, state.ErrConflict)
	if rec := h.claim("k", "fp", "c", state.Completed); !bytes.Equal(rec.Result, result) {
		t.Fatalf("result after refused Completes = %q", rec.Result)
	}
}

func testLeaseExpiryTakeover(t *testing.T, h *harness) {
	h.claim("k", "fp", "a", state.Claimed)
	h.clock.Advance(lease - slack)
	h.claim("k", "fp", "b", state.InProgress)
	h.clock.Advance(2 * slack)
	if rec := h.claim("k", "fp", "b", state.Claimed); rec.Owner != "b" {
		t.Fatalf("taken-over record = %+v, want owner b", rec)
	}
	h.complete("k", "a", []byte("late"), state.ErrConflict)
	h.release("k", "a")
	if rec := h.claim("k", "fp", "c", state.InProgress); rec.Owner != "b" {
		t.Fatalf("after the old owner's Release, owner = %q, want b", rec.Owner)
	}
	h.complete("k", "b", []byte("b's"), nil)
	if rec := h.claim("k", "fp", "c", state.Completed); string(rec.Result) != "b's" {
		t.Fatalf("result = %q, want the new owner's", rec.Result)
	}
}

func testLateCompleteWithoutTakeover(t *testing.T, h *harness) {
	h.claim("k", "fp", "a", state.Claimed)
	h.clock.Advance(lease + slack)
	h.complete("k", "a", []byte("slow but done"), nil)
	if rec := h.claim("k", "fp", "b", state.Completed); string(rec.Result) != "slow but done" {
		t.Fatalf("result = %q", rec.Result)
	}
}

func testRelease(t *testing.T, h *harness) {
	h.claim("k", "fp", "a", state.Claimed)
	h.release("k", "b") // not b's: no error, no effect
	h.claim("k", "fp", "c", state.InProgress)
	h.release("k", "a")
	if rec := h.claim("k", "fp", "c", state.Claimed); rec.Owner != "c" {
		t.Fatalf("re-claimed record = %+v", rec)
	}
	h.release("missing", "a")
	// Releasing after completing must not erase the result.
	h.complete("k", "c", []byte("r"), nil)
	h.release("k", "c")
	if rec := h.claim("k", "fp", "d", state.Completed); string(rec.Result) != "r" {
		t.Fatalf("result after Release = %q", rec.Result)
	}
}

func testRenewKeepsOthersOut(t *testing.T, h *harness) {
	h.claim("k", "fp", "a", state.Claimed)
	h.clock.Advance(lease - slack)
	h.renew("k", "a", nil)
	renewedAt := h.clock.Now()
	h.clock.Advance(2 * slack) // past the original lease
	rec := h.claim("k", "fp", "b", state.InProgress)
	if rec.Owner != "a" || rec.LeaseUntil.Before(renewedAt.Add(lease)) || rec.LeaseUntil.After(renewedAt.Add(lease+slack)) {
		t.Fatalf("after Renew: %+v, want owner a until about %v", rec, renewedAt.Add(lease))
	}
	// Renewing again and again keeps it for as long as the run takes.
	for range 3 {
		h.clock.Advance(lease - slack)
		h.renew("k", "a", nil)
	}
	h.claim("k", "fp", "b", state.InProgress)
	// Left to run out, the renewed lease ends like any other.
	h.clock.Advance(lease + slack)
	if rec := h.claim("k", "fp", "b", state.Claimed); rec.Owner != "b" {
		t.Fatalf("after the renewed lease ran out: %+v, want owner b", rec)
	}
	// A holder whose lease ran out, but which nobody took over, still holds
	// it (as for Complete): renewing it is safe.
	h.claim("lapsed", "fp", "a", state.Claimed)
	h.clock.Advance(lease + slack)
	h.renew("lapsed", "a", nil)
	h.claim("lapsed", "fp", "b", state.InProgress)
	h.complete("lapsed", "a", []byte("done"), nil)
}

func testRenewOnlyByTheHolder(t *testing.T, h *harness) {
	h.claim("k", "fp", "a", state.Claimed)
	h.renew("k", "b", state.ErrConflict)
	h.clock.Advance(lease + slack)
	if rec := h.claim("k", "fp", "b", state.Claimed); rec.Owner != "b" {
		t.Fatalf("a non-owner's Renew kept the lease alive: %+v", rec)
	}
	h.renew("k", "a", state.ErrConflict) // taken over
	if rec := h.claim("k", "fp", "c", state.InProgress); rec.Owner != "b" {
		t.Fatalf("the old owner's Renew changed the record: %+v", rec)
	}

	h.renew("missing", "a", state.ErrConflict)
	h.claim("missing", "fp", "b", state.Claimed) // Renew created nothing

	h.claim("done", "fp", "a", state.Claimed)
	h.complete("done", "a", []byte("r"), nil)
	h.renew("done", "a", state.ErrConflict)
	if rec := h.claim("done", "fp", "b", state.Completed); string(rec.Result) != "r" {
		t.Fatalf("Renew of a completed record changed it: %+v", rec)
	}

	h.claim("released", "fp", "a", state.Claimed)
	h.release("released", "a")
	h.renew("released", "a", state.ErrConflict)
	h.claim("released", "fp", "b", state.Claimed)

	h.claimTTL("expired", "fp", "a", time.Second, state.Claimed)
	h.clock.Advance(lease + slack) // record and lease both gone
	h.renew("expired", "a", state.ErrConflict)
	h.claim("expired", "other-fp", "b", state.Claimed)
}

// testRenewOutlivesRecordTTL: a record never expires before its lease
// does, renewed or not, whatever the TTL it was claimed with.
func testRenewOutlivesRecordTTL(t *testing.T, h *harness) {
	h.claimTTL("short", "fp", "a", time.Second, state.Claimed)
	h.clock.Advance(lease - slack)
	h.renew("short", "a", nil)
	h.clock.Advance(lease - slack) // past the record's original expiry
	h.claim("short", "other-fp", "b", state.Mismatch)
	h.claim("short", "fp", "b", state.InProgress)
	h.renew("short", "a", nil)
	h.complete("short", "a", []byte("r"), nil)
}

func testRecordExpiry(t *testing.T, h *harness) {
	h.claim("k", "fp", "a", state.Claimed)
	h.complete("k", "a", []byte("r"), nil) // ttl restarts here
	h.clock.Advance(ttl - slack)
	h.claim("k", "fp", "b", state.Completed)
	h.clock.Advance(2 * slack)
	// Expired is absent: even another request may use the key now.
	if rec := h.claim("k", "other-fp", "b", state.Claimed); rec.Completed || rec.Fingerprint != "other-fp" {
		t.Fatalf("claim over an expired record = %+v", rec)
	}

	h.claimTTL("forever", "fp", "a", 0, state.Claimed)
	if err := h.s.Complete(h.ctx(), "forever", "a", []byte("r"), 0); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(decade)
	h.claim("forever", "fp", "b", state.Completed)

	// A record never expires before its lease does, whatever the TTL.
	h.claimTTL("short", "fp", "a", time.Second, state.Claimed)
	h.clock.Advance(lease - slack)
	h.claim("short", "other-fp", "b", state.Mismatch)
}

func testValueCAS(t *testing.T, h *harness) {
	h.getMissing("token")
	h.put("token", []byte("t1"), 1, 0, state.ErrConflict)
	v1 := h.put("token", []byte("t1"), 0, 0, nil)
	h.put("token", []byte("again"), 0, 0, state.ErrConflict)
	h.get("token", []byte("t1"), v1)
	v2 := h.put("token", []byte("t2"), v1, 0, nil)
	if v2 <= v1 {
		t.Fatalf("version went from %d to %d, want an increase", v1, v2)
	}
	h.put("token", []byte("stale"), v1, 0, state.ErrConflict)
	h.put("token", []byte("future"), v2+1, 0, state.ErrConflict)
	h.get("token", []byte("t2"), v2)
	if _, err := h.s.Put(h.ctx(), "token", []byte("x"), -1, 0); err == nil {
		t.Fatal("Put with a negative expected version succeeded")
	}
}

func testValueExpiry(t *testing.T, h *harness) {
	v1 := h.put("k", []byte("old"), 0, ttl, nil)
	h.clock.Advance(ttl - slack)
	h.get("k", []byte("old"), v1)
	h.clock.Advance(2 * slack)
	h.getMissing("k")
	h.put("k", []byte("stale"), v1, 0, state.ErrConflict)
	v2 := h.put("k", []byte("new"), 0, 0, nil)
	if v2 <= v1 {
		t.Fatalf("recreated after expiry at version %d, want above %d so stale writers cannot match", v2, v1)
	}
	h.clock.Advance(decade)
	h.get("k", []byte("new"), v2)
	// ttl 0 on a later write keeps a value that had a TTL forever.
	v3 := h.put("k2", []byte("a"), 0, ttl, nil)
	v4 := h.put("k2", []byte("b"), v3, 0, nil)
	h.clock.Advance(decade)
	h.get("k2", []byte("b"), v4)
}

func testEmptyPayloads(t *testing.T, h *harness) {
	v := h.put("empty", nil, 0, 0, nil)
	h.get("empty", nil, v)
	h.claim("k", "fp", "a", state.Claimed)
	h.complete("k", "a", nil, nil)
	if rec := h.claim("k", "fp", "b", state.Completed); len(rec.Result) != 0 {
		t.Fatalf("result = %q, want empty", rec.Result)
	}
}

// testKeysAreOpaque uses keys a naive mapping to document ids or partition
// keys would break or merge.
func testKeysAreOpaque(t *testing.T, h *harness) {
	long := strings.Repeat("k", 3000)
	keys := []string{"a/b", "a%2Fb", "a", "A", ".", "..", "__name__", "a#b", "with space", "ünïcode ✓",
		"idem#x", "value#x", "audit#2026-01-01", long, long + "x"}
	for i, k := range keys {
		h.put(k, fmt.Appendf(nil, "%d", i), 0, 0, nil)
		h.claim(k, "fp", "a", state.Claimed)
	}
	for i, k := range keys {
		v, err := h.s.Get(h.ctx(), k)
		if err != nil || string(v.Data) != fmt.Sprint(i) {
			t.Errorf("Get(%.20q) = %q, %v; want %d", k, v.Data, err, i)
		}
		if rec := h.claim(k, "fp", "b", state.InProgress); rec.Key != k {
			t.Errorf("record key = %.20q, want %.20q", rec.Key, k)
		}
	}
}

func testInvalidArguments(t *testing.T, h *harness) {
	ctx := h.ctx()
	checks := map[string]error{}
	_, _, checks[`Claim(key "")`] = h.s.Claim(ctx, "", "fp", "a", lease, ttl)
	_, _, checks[`Claim(owner "")`] = h.s.Claim(ctx, "k", "fp", "", lease, ttl)
	_, _, checks["Claim(lease 0)"] = h.s.Claim(ctx, "k", "fp", "a", 0, ttl)
	checks[`Renew(key "")`] = h.s.Renew(ctx, "", "a", lease)
	checks[`Renew(owner "")`] = h.s.Renew(ctx, "k", "", lease)
	checks["Renew(lease 0)"] = h.s.Renew(ctx, "k", "a", 0)
	_, checks[`Put(key "")`] = h.s.Put(ctx, "", []byte("x"), 0, 0)
	_, checks[`Get(key "")`] = h.s.Get(ctx, "")
	for call, err := range checks {
		if err == nil || errors.Is(err, state.ErrConflict) || errors.Is(err, state.ErrNotFound) {
			t.Errorf("%s = %v, want an argument error", call, err)
		}
	}
	// Nothing was claimed by the refused calls.
	h.claim("k", "fp", "b", state.Claimed)
}

func testAudit(t *testing.T, h *harness) {
	base := h.clock.Now()
	rec := func(ago time.Duration, person, op string) state.AuditRecord {
		return state.AuditRecord{
			Time: base.Add(-ago), RequestID: "req-" + op, IdempotencyKey: "idem-" + op, Trigger: "http",
			Target: "crm", Operation: op, Person: person, Outcome: "ok",
		}
	}
	r0 := rec(49*time.Hour, "Ada@Example.com", "create_user")
	r0.Outcome, r0.Error = "error", "crm: 409 conflict"
	r1 := rec(25*time.Hour, "grace@example.com", "create_user")
	r1.IdempotencyKey = ""
	r2 := rec(time.Hour, "ada@example.com", "add_roles")
	r2.Resource = "/users/42/roles" // kept as written, by every backend
	r3 := rec(time.Minute, "bob@example.com", "disable_user")
	r4 := rec(0, "ADA@EXAMPLE.COM", "send_email")
	r4.Time = time.Time{} // stamped by the store with its clock: base
	for _, r := range []state.AuditRecord{r2, r0, r3, r1, r4} {
		if err := h.s.Append(h.ctx(), r); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	r4.Time = base

	for _, c := range []struct {
		q    state.AuditQuery
		want []state.AuditRecord
	}{
		{state.AuditQuery{}, []state.AuditRecord{r0, r1, r2, r3, r4}},
		{state.AuditQuery{Since: r1.Time}, []state.AuditRecord{r1, r2, r3, r4}},
		{state.AuditQuery{Person: "ADA@example.COM"}, []state.AuditRecord{r0, r2, r4}},
		{state.AuditQuery{Limit: 2}, []state.AuditRecord{r0, r1}},
		{state.AuditQuery{Since: base.Add(-2 * time.Hour), Person: "ada@example.com", Limit: 1}, []state.AuditRecord{r2}},
		{state.AuditQuery{Person: "nobody@example.com"}, nil},
		{state.AuditQuery{Since: base.Add(time.Millisecond)}, nil},
	} {
		got, err := h.s.Audit(h.ctx(), c.q)
		if err != nil {
			t.Fatalf("Audit(%+v): %v", c.q, err)
		}
		if !sameAudit(got, c.want) {
			t.Errorf("Audit(%+v) =\n%s\nwant\n%s", c.q, formatAudit(got), formatAudit(c.want))
		}
	}
}

func sameAudit(got, want []state.AuditRecord) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if !g.Time.Equal(w.Time) {
			return false
		}
		g.Time, w.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			return false
		}
	}
	return true
}

func formatAudit(recs []state.AuditRecord) string {
	var b strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&b, "\t%+v\n", r)
	}
	return b.String()
}

// fanOut runs fn n times at once and waits for all of them.
func fanOut(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

func testConcurrentClaims(t *testing.T, h *harness) {
	const n = 50
	outcomes := make([]state.ClaimOutcome, n)
	records := make([]state.Record, n)
	errs := make([]error, n)
	fanOut(n, func(i int) {
		outcomes[i], records[i], errs[i] = h.s.Claim(h.ctx(), "one-request", "fp", fmt.Sprint("delivery-", i), lease, ttl)
	})
	winner := -1
	for i := range n {
		switch {
		case errs[i] != nil:
			t.Errorf("delivery %d: %v", i, errs[i])
		case outcomes[i] == state.Claimed && winner >= 0:
			t.Errorf("deliveries %d and %d both claimed the key", winner, i)
		case outcomes[i] == state.Claimed:
			winner = i
		case outcomes[i] != state.InProgress:
			t.Errorf("delivery %d: %v, want in_progress", i, outcomes[i])
		}
	}
	if winner < 0 {
		t.Fatal("no delivery claimed the key")
	}
	for i := range n {
		if outcomes[i] == state.InProgress && records[i].Owner != records[winner].Owner {
			t.Errorf("delivery %d saw owner %q, but %q won", i, records[i].Owner, records[winner].Owner)
		}
	}
}

// testConcurrentRenewAndTakeover races the owner of a lapsed lease,
// renewing it, against deliveries claiming it: either the renewal wins and
// every claim finds it in progress, or one claim wins and the renewal is a
// conflict; never both.
func testConcurrentRenewAndTakeover(t *testing.T, h *harness) {
	const claimers, rounds = 10, 6
	renewWon := 0
	for round := range rounds {
		key := fmt.Sprint("race-", round)
		h.claim(key, "fp", "a", state.Claimed)
		h.clock.Advance(lease + slack)
		var renewErr error
		outcomes := make([]state.ClaimOutcome, claimers)
		records := make([]state.Record, claimers)
		errs := make([]error, claimers)
		// The renewal starts at a different place among the claims each
		// round, so that either side gets to win.
		renewAt := round * claimers / (rounds - 1)
		fanOut(claimers+1, func(i int) {
			switch {
			case i == renewAt:
				renewErr = h.s.Renew(h.ctx(), key, "a", lease)
			case i > renewAt:
				i--
				fallthrough
			default:
				outcomes[i], records[i], errs[i] = h.s.Claim(h.ctx(), key, "fp", fmt.Sprint("delivery-", i), lease, ttl)
			}
		})
		claimed := []string{}
		for i := range claimers {
			switch {
			case errs[i] != nil:
				t.Fatalf("%s: delivery %d: %v", key, i, errs[i])
			case outcomes[i] == state.Claimed:
				claimed = append(claimed, records[i].Owner)
			case outcomes[i] != state.InProgress:
				t.Fatalf("%s: delivery %d: %v, want claimed or in_progress", key, i, outcomes[i])
			}
		}
		holder := h.claim(key, "fp", "observer", state.InProgress).Owner
		switch {
		case renewErr == nil && len(claimed) == 0 && holder == "a":
			renewWon++
		case errors.Is(renewErr, state.ErrConflict) && len(claimed) == 1 && holder == claimed[0]:
		default:
			t.Fatalf("%s: Renew = %v, claims won by %v, holder %q: want exactly one winner", key, renewErr, claimed, holder)
		}
	}
	t.Logf("the renewal won %d of %d rounds", renewWon, rounds)
}

func testConcurrentPuts(t *testing.T, h *harness) {
	const n = 20
	for _, c := range []struct {
		name   string
		expect int64
	}{
		{"create", 0},
		{"update", h.put("update", []byte("v1"), 0, 0, nil)},
	} {
		versions := make([]int64, n)
		errs := make([]error, n)
		fanOut(n, func(i int) {
			versions[i], errs[i] = h.s.Put(h.ctx(), c.name, fmt.Appendf(nil, "writer-%d", i), c.expect, 0)
		})
		winner := -1
		for i := range n {
			switch {
			case errs[i] == nil && winner >= 0:
				t.Errorf("%s: writers %d and %d both won", c.name, winner, i)
			case errs[i] == nil:
				winner = i
			case !errors.Is(errs[i], state.ErrConflict):
				t.Errorf("%s: writer %d: %v, want ErrConflict", c.name, i, errs[i])
			}
		}
		if winner < 0 {
			t.Fatalf("%s: no writer won", c.name)
		}
		h.get(c.name, fmt.Appendf(nil, "writer-%d", winner), versions[winner])
	}
}
