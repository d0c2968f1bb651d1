package scim

import (
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core/state/filestore"
)

// An id listed without a record, as a create that stopped part way left it
// before creates wrote the record first, leaves the id set when another
// resource takes its name over.
func TestTakeOverForgetsAnUnwrittenID(t *testing.T) {
	store, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	now := time.Now()
	dir := &directory{store: store, now: func() time.Time { return now }}
	ctx := t.Context()
	if _, err := dir.claimName(ctx, kindUser, "ada@example.com", "half-made", "first"); err != nil {
		t.Fatal(err)
	}
	if err := dir.ids(kindUser).change(ctx, "half-made", true); err != nil {
		t.Fatal(err)
	}
	now = now.Add(staleClaim + time.Second)
	if holder, err := dir.claimName(ctx, kindUser, "ada@example.com", "new", "second"); err != nil || holder.ID != "new" {
		t.Fatalf("take-over: %+v %v", holder, err)
	}
	if ids, err := dir.ids(kindUser).all(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("id set after the take-over: %v %v", ids, err)
	}
}
