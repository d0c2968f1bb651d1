package filestore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/filestore"
	"github.com/onboard-dev/onboard/core/state/statetest"
)

func TestConformance(t *testing.T) {
	statetest.Run(t, func(t *testing.T, now func() time.Time) state.Store {
		s, err := filestore.OpenOptions(t.TempDir(), filestore.Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Two Stores on one directory in one process behave as one store.
func TestStoresShareDirectory(t *testing.T) {
	dir := t.TempDir()
	a, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if got, _, err := a.Claim(ctx, "k", "fp", "a", time.Minute, time.Hour); err != nil || got != state.Claimed {
		t.Fatalf("a: %v, %v", got, err)
	}
	if got, _, err := b.Claim(ctx, "k", "fp", "b", time.Minute, time.Hour); err != nil || got != state.InProgress {
		t.Fatalf("b: %v, %v; want in_progress", got, err)
	}
}

// Opening a store made before writes nothing (so costs no fsync), and
// one missing a bucket gets it.
func TestOpenExistingStore(t *testing.T) {
	dir := t.TempDir()
	if _, err := filestore.Open(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, filestore.FileName)
	assertUnwritten(t, path, "reopening", func() {
		if _, err := filestore.Open(dir); err != nil {
			t.Fatal(err)
		}
	})

	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("values")) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "k", []byte("v"), 0, 0); err != nil {
		t.Errorf("a store missing a bucket was not mended on open: %v", err)
	}
}

// A sweep that finds nothing expired writes nothing.
func TestSweepOfNothingWritesNothing(t *testing.T) {
	dir := t.TempDir()
	s, err := filestore.OpenOptions(dir, filestore.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "k", []byte("v"), 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	assertUnwritten(t, filepath.Join(dir, filestore.FileName), "a sweep of nothing", func() {
		if n, err := s.Sweep(t.Context()); n != 0 || err != nil {
			t.Fatalf("sweep: %d, %v", n, err)
		}
	})
}

// assertUnwritten fails the test if do writes to the file at path.
func assertUnwritten(t *testing.T, path, what string, do func()) {
	t.Helper()
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // past the file system's mtime granularity
	do()
	if after, err := os.Stat(path); err != nil || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("%s wrote to the file (modified %v, then %v; %v)", what, before.ModTime(), after.ModTime(), err)
	}
}

// The file is unlocked between operations: another process (here, a
// direct bbolt open that fails at once if locked) can use it while a Store
// is open.
func TestFileUnlockedBetweenOperations(t *testing.T) {
	dir := t.TempDir()
	s, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "k", []byte("v"), 0, 0); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(dir, filestore.FileName), 0o600, &bolt.Options{Timeout: time.Nanosecond})
	if err != nil {
		t.Fatalf("database still locked after an operation: %v", err)
	}
	// While someone else holds it, operations wait; cancelling stops them.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := s.Get(ctx, "k")
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Get while locked, then cancelled = %v, want context.Canceled", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(t.Context(), "k"); err != nil || string(v.Data) != "v" {
		t.Fatalf("Get after unlock = %q, %v", v.Data, err)
	}
}

func TestLockTimeout(t *testing.T) {
	dir := t.TempDir()
	s, err := filestore.OpenOptions(dir, filestore.Options{LockTimeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(s.Path(), 0o600, &bolt.Options{Timeout: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = s.Put(t.Context(), "k", []byte("v"), 0, 0)
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("Put while another handle holds the file = %v, want a lock timeout", err)
	}
}

func TestSweep(t *testing.T) {
	clock := statetest.NewClock(time.Now())
	s, err := filestore.OpenOptions(t.TempDir(), filestore.Options{Now: clock.Now, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	mustPut := func(key string, ttl time.Duration) {
		t.Helper()
		if _, err := s.Put(ctx, key, []byte(key), 0, ttl); err != nil {
			t.Fatal(err)
		}
	}
	mustPut("short", time.Minute)
	mustPut("long", time.Hour)
	mustPut("forever", 0)
	if _, _, err := s.Claim(ctx, "req", "fp", "a", time.Second, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, state.AuditRecord{RequestID: "r"}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	if n, err := s.Sweep(ctx); err != nil || n != 2 {
		t.Fatalf("Sweep = %d, %v; want the short value and the record", n, err)
	}
	if n, err := s.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("second Sweep = %d, %v; want 0", n, err)
	}
	for _, k := range []string{"long", "forever"} {
		if _, err := s.Get(ctx, k); err != nil {
			t.Errorf("Get(%s) after sweep: %v", k, err)
		}
	}
	if recs, err := s.Audit(ctx, state.AuditQuery{}); err != nil || len(recs) != 1 {
		t.Errorf("audit after sweep = %v, %v; want the record kept", recs, err)
	}
	// Proof the rows are gone, not merely hidden: read the file directly.
	db, err := bolt.Open(s.Path(), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket([]byte("values")).Stats().KeyN; n != 2 {
			t.Errorf("values bucket holds %d keys, want 2", n)
		}
		if n := tx.Bucket([]byte("idempotency")).Stats().KeyN; n != 0 {
			t.Errorf("idempotency bucket holds %d keys, want 0", n)
		}
		return nil
	})
}

// A write sweeps once the interval has passed since the last sweep.
func TestAutomaticSweep(t *testing.T) {
	clock := statetest.NewClock(time.Now())
	s, err := filestore.OpenOptions(t.TempDir(), filestore.Options{Now: clock.Now, SweepInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := s.Put(ctx, "short", nil, 0, time.Minute); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute) // expired, but the last sweep is recent
	if _, err := s.Put(ctx, "other", nil, 0, 0); err != nil {
		t.Fatal(err)
	}
	if n := countValues(t, s); n != 2 {
		t.Fatalf("before the interval: %d values stored, want 2 (no sweep yet)", n)
	}
	clock.Advance(time.Hour)
	if _, err := s.Put(ctx, "third", nil, 0, 0); err != nil {
		t.Fatal(err)
	}
	if n := countValues(t, s); n != 2 {
		t.Fatalf("after the interval: %d values stored, want 2 (short swept, third added)", n)
	}
}

func countValues(t *testing.T, s *filestore.Store) int {
	t.Helper()
	db, err := bolt.Open(s.Path(), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	_ = db.View(func(tx *bolt.Tx) error { n = tx.Bucket([]byte("values")).Stats().KeyN; return nil })
	return n
}

func TestBackend(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "state")
	s, err := state.Open(t.Context(), "file:"+dir, nil, map[string]state.Backend{"file": filestore.Backend})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Put(t.Context(), "k", []byte("v"), 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, filestore.FileName)); err != nil {
		t.Fatalf("store not created in %s: %v", dir, err)
	}
	// The default spec is the file store under .onboard.
	t.Chdir(t.TempDir())
	s2, err := state.Open(t.Context(), "", nil, map[string]state.Backend{"file": filestore.Backend})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := os.Stat(filepath.Join(".onboard", filestore.FileName)); err != nil {
		t.Fatalf("default store not under .onboard: %v", err)
	}
}

// Two processes share one directory: each key is claimed by exactly one of
// them, each create-only Put is won by exactly one, and every audit record
// from both is kept.
const (
	helperDirEnv   = "ONBOARD_FILESTORE_HELPER_DIR"
	processKeys    = 30
	processWorkers = 4
)

func TestTwoProcessesShareDirectory(t *testing.T) {
	dir := t.TempDir()
	s, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	child := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$")
	child.Env = append(os.Environ(), helperDirEnv+"="+dir)
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("helper did not start: %q %v", lines.Text(), lines.Err())
	}
	// Both processes start hammering at the same moment.
	if _, err := fmt.Fprintln(stdin, "go"); err != nil {
		t.Fatal(err)
	}
	mine := hammer(s, "parent")
	var theirs []string
	for lines.Scan() {
		theirs = append(theirs, lines.Text())
	}
	if err := child.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}

	wins := map[string]int{}
	for _, line := range append(mine, theirs...) {
		if strings.HasPrefix(line, "error") {
			t.Errorf("%s", line)
		}
		if strings.HasSuffix(line, " won") {
			wins[strings.TrimSuffix(line, " won")]++
		}
	}
	for i := range processKeys {
		for _, op := range []string{"claim", "put"} {
			k := fmt.Sprintf("%s key-%d", op, i)
			if wins[k] != 1 {
				t.Errorf("%s: won %d times across the two processes, want exactly once", k, wins[k])
			}
		}
	}
	recs, err := s.Audit(t.Context(), state.AuditQuery{})
	if err != nil || len(recs) != 2*processKeys {
		t.Fatalf("audit holds %d records (%v), want %d from both processes", len(recs), err, 2*processKeys)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].Time.Before(recs[i-1].Time) {
			t.Fatalf("audit not oldest first at %d", i)
		}
	}
}

// TestHelperProcess is the second process of TestTwoProcessesShareDirectory.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		return // not started as the helper: nothing to do
	}
	s, err := filestore.Open(dir)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	if line, _ := bufio.NewReader(os.Stdin).ReadString('\n'); line != "go\n" {
		os.Exit(1)
	}
	for _, line := range hammer(s, "child") {
		fmt.Println(line)
	}
	os.Exit(0) // keep the test framework's own output off the pipe
}

// hammer claims and creates every key from several goroutines and reports
// "<op> key-N won" for each success and "error ..." for each failure.
func hammer(s *filestore.Store, who string) []string {
	ctx := context.Background()
	var (
		mu  sync.Mutex
		out []string
		wg  sync.WaitGroup
	)
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		out = append(out, fmt.Sprintf(format, args...))
	}
	for w := range processWorkers {
		wg.Go(func() {
			for i := range processKeys {
				key := fmt.Sprintf("key-%d", (i+w*processKeys/processWorkers)%processKeys)
				got, _, err := s.Claim(ctx, key, "fp", fmt.Sprintf("%s-%d", who, w), time.Hour, time.Hour)
				switch {
				case err != nil:
					report("error claim %s: %v", key, err)
				case got == state.Claimed:
					report("claim %s won", key)
				case got != state.InProgress:
					report("error claim %s: %v", key, got)
				}
				_, err = s.Put(ctx, key, []byte(who), 0, 0)
				switch {
				case err == nil:
					report("put %s won", key)
				case !errors.Is(err, state.ErrConflict):
					report("error put %s: %v", key, err)
				}
				if w == 0 {
					if err := s.Append(ctx, state.AuditRecord{RequestID: who, Person: key}); err != nil {
						report("error append: %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
	return out
}
