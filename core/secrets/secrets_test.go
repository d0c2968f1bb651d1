package secrets_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/onboard-dev/onboard/core/secrets"
)

// canary is a distinctive value that must never show up in formatted
// errors or log output.
const canary = "s3cr3t-CANARY-7f2e9a"

// fakeSource answers from a map guarded by a mutex, counts fetches per name,
// and can be told to fail.
type fakeSource struct {
	mu     sync.Mutex
	values map[string]string
	fail   map[string]error
	calls  map[string]int
}

func newFake(values map[string]string) *fakeSource {
	return &fakeSource{values: values, fail: map[string]error{}, calls: map[string]int{}}
}

func (f *fakeSource) Fetch(_ context.Context, name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[name]++
	if err := f.fail[name]; err != nil {
		return "", err
	}
	v, ok := f.values[name]
	if !ok {
		return "", &secrets.NotFoundError{Name: name}
	}
	return v, nil
}

func (f *fakeSource) set(name, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.values[name] = value
}

func (f *fakeSource) setFail(name string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[name] = err
}

func (f *fakeSource) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

// clock is an injectable time source for TTL tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func mustGet(t *testing.T, c *secrets.Cache, name, want string) {
	t.Helper()
	got, err := c.Get(t.Context(), name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	if got != want {
		t.Fatalf("Get(%q) = %q, want %q", name, got, want)
	}
}

func TestEnv(t *testing.T) {
	env := secrets.Env{Lookup: func(k string) (string, bool) {
		v, ok := map[string]string{"SET": "v1", "EMPTY": ""}[k]
		return v, ok
	}}
	if v, err := env.Fetch(t.Context(), "SET"); err != nil || v != "v1" {
		t.Fatalf("SET = %q, %v", v, err)
	}
	for _, name := range []string{"EMPTY", "UNSET"} {
		_, err := env.Fetch(t.Context(), name)
		var nf *secrets.NotFoundError
		if !errors.As(err, &nf) || nf.Name != name {
			t.Errorf("%s: err = %v, want NotFoundError naming it", name, err)
		}
	}

	t.Setenv("ONBOARD_TEST_SECRET_ENV", "from-os")
	if v, err := (secrets.Env{}).Fetch(t.Context(), "ONBOARD_TEST_SECRET_ENV"); err != nil || v != "from-os" {
		t.Fatalf("default lookup = %q, %v; want the process environment", v, err)
	}
}

// blockingSource holds every Fetch until n fetches are in flight at once, so
// Prefetch can only succeed if it fetches concurrently.
type blockingSource struct {
	n        int
	inFlight atomic.Int32
	all      chan struct{}
	once     sync.Once
	done     <-chan struct{}
}

func (b *blockingSource) Fetch(ctx context.Context, name string) (string, error) {
	if int(b.inFlight.Add(1)) == b.n {
		b.once.Do(func() { close(b.all) })
	}
	select {
	case <-b.all:
		return "value-of-" + name, nil
	case <-ctx.Done():
		return "", ctx.Err()
	case <-b.done:
		return "", errors.New("test over")
	}
}

func TestPrefetchFetchesConcurrently(t *testing.T) {
	names := []string{"A", "B", "C", "D", "E", "F"}
	src := &blockingSource{n: len(names), all: make(chan struct{}), done: t.Context().Done()}
	c := secrets.NewCache(src, time.Minute)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := c.Prefetch(ctx, names); err != nil {
		t.Fatalf("Prefetch: %v (fetches did not all run at once: %d in flight)", err, src.inFlight.Load())
	}
	for _, n := range names {
		mustGet(t, c, n, "value-of-"+n)
	}
	if got := src.inFlight.Load(); got != int32(len(names)) {
		t.Fatalf("fetches = %d, want %d (Get after Prefetch must be served from cache)", got, len(names))
	}
}

func TestPrefetchListsEveryMissingAndFailedName(t *testing.T) {
	src := newFake(map[string]string{"PRESENT": canary})
	src.setFail("BROKEN", errors.New("permission denied"))
	c := secrets.NewCache(src, time.Minute)

	err := c.Prefetch(t.Context(), []string{"PRESENT", "MISSING_B", "BROKEN", "MISSING_A", "MISSING_B"})
	var pe *secrets.PrefetchError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want *PrefetchError", err)
	}
	if got, want := pe.Missing(), []string{"MISSING_A", "MISSING_B"}; !slices.Equal(got, want) {
		t.Errorf("Missing() = %v, want %v", got, want)
	}
	var fe *secrets.FetchError
	if !errors.As(err, &fe) || fe.Name != "BROKEN" {
		t.Errorf("errors.As FetchError = %v, want one naming BROKEN", fe)
	}
	msg := err.Error()
	for _, want := range []string{"MISSING_A", "MISSING_B", "BROKEN", "permission denied"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "PRESENT") {
		t.Errorf("error %q mentions a secret that was read fine", msg)
	}
	if n := src.count("MISSING_B"); n != 1 {
		t.Errorf("duplicate name fetched %d times, want 1", n)
	}
	mustGet(t, c, "PRESENT", canary)
	if n := src.count("PRESENT"); n != 1 {
		t.Errorf("PRESENT fetched %d times, want 1 (cached by Prefetch)", n)
	}
}

func TestGetRereadsAfterTTL(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	src := newFake(map[string]string{"K": "v1"})
	c := secrets.NewCache(src, 5*time.Minute, secrets.WithClock(clk.now))

	mustGet(t, c, "K", "v1")
	src.set("K", "v2") // rotated in the store
	clk.advance(5*time.Minute - time.Second)
	mustGet(t, c, "K", "v1")
	if n := src.count("K"); n != 1 {
		t.Fatalf("fetches within TTL = %d, want 1", n)
	}
	clk.advance(time.Second)
	mustGet(t, c, "K", "v2")
	if n := src.count("K"); n != 2 {
		t.Fatalf("fetches after TTL = %d, want 2", n)
	}
}

func TestZeroTTLNeverRereads(t *testing.T) {
	clk := &clock{t: time.Unix(0, 0)}
	src := newFake(map[string]string{"K": "v1"})
	c := secrets.NewCache(src, 0, secrets.WithClock(clk.now))
	mustGet(t, c, "K", "v1")
	src.set("K", "v2")
	clk.advance(1000 * time.Hour)
	mustGet(t, c, "K", "v1")
}

func TestStaleValueServedWhenRefreshFails(t *testing.T) {
	clk := &clock{t: time.Unix(0, 0)}
	src := newFake(map[string]string{"K": canary})
	type report struct {
		name string
		err  error
	}
	var reports []report
	c := secrets.NewCache(src, time.Minute, secrets.WithClock(clk.now),
		secrets.WithRefreshErrorHandler(func(name string, err error) { reports = append(reports, report{name, err}) }))

	mustGet(t, c, "K", canary)
	src.setFail("K", errors.New("unavailable"))
	clk.advance(time.Minute)
	mustGet(t, c, "K", canary)

	if len(reports) != 1 || reports[0].name != "K" {
		t.Fatalf("refresh reports = %v, want one for K", reports)
	}
	var fe *secrets.FetchError
	if !errors.As(reports[0].err, &fe) || !strings.Contains(fe.Error(), "unavailable") {
		t.Fatalf("reported error = %v, want a FetchError carrying the cause", reports[0].err)
	}

	// The failed refresh backs off instead of hitting the store per request.
	mustGet(t, c, "K", canary)
	if n := src.count("K"); n != 2 {
		t.Fatalf("fetches right after a failed refresh = %d, want 2", n)
	}

	src.setFail("K", nil)
	src.set("K", "rotated")
	clk.advance(10 * time.Second)
	mustGet(t, c, "K", "rotated")
}

func TestFirstReadFailureIsNotCached(t *testing.T) {
	src := newFake(map[string]string{"K": "v"})
	src.setFail("K", errors.New("unavailable"))
	c := secrets.NewCache(src, time.Minute)

	_, err := c.Get(t.Context(), "K")
	var fe *secrets.FetchError
	if !errors.As(err, &fe) || fe.Name != "K" || secrets.IsNotFound(err) {
		t.Fatalf("err = %v, want FetchError for K", err)
	}
	src.setFail("K", nil)
	mustGet(t, c, "K", "v")
}

func TestDeletedSecretDisappearsAfterTTL(t *testing.T) {
	clk := &clock{t: time.Unix(0, 0)}
	src := newFake(map[string]string{"K": "v"})
	c := secrets.NewCache(src, time.Minute, secrets.WithClock(clk.now))
	mustGet(t, c, "K", "v")

	src.mu.Lock()
	delete(src.values, "K")
	src.mu.Unlock()
	clk.advance(time.Minute)
	if _, err := c.Get(t.Context(), "K"); !secrets.IsNotFound(err) {
		t.Fatalf("err = %v, want NotFoundError once the store says the secret is gone", err)
	}
}

func TestLookup(t *testing.T) {
	src := newFake(map[string]string{"OPT": "x"})
	src.setFail("DOWN", errors.New("unavailable"))
	c := secrets.NewCache(src, time.Minute)

	if v, ok, err := c.Lookup(t.Context(), "OPT"); v != "x" || !ok || err != nil {
		t.Errorf("Lookup(OPT) = %q, %v, %v", v, ok, err)
	}
	if v, ok, err := c.Lookup(t.Context(), "ABSENT"); v != "" || ok || err != nil {
		t.Errorf("Lookup(ABSENT) = %q, %v, %v; want absent without error", v, ok, err)
	}
	if _, ok, err := c.Lookup(t.Context(), "DOWN"); ok || err == nil {
		t.Errorf("Lookup(DOWN) = %v, %v; want an error, not 'absent'", ok, err)
	}
	// The absence is cached too: optional secrets must not cost a call per request.
	_, _, _ = c.Lookup(t.Context(), "ABSENT")
	if n := src.count("ABSENT"); n != 1 {
		t.Errorf("ABSENT fetched %d times, want 1", n)
	}
}

// gatedSource blocks every Fetch after the first free ones until release is
// closed.
type gatedSource struct {
	free    int32
	calls   atomic.Int32
	release chan struct{}
}

func (g *gatedSource) Fetch(ctx context.Context, name string) (string, error) {
	if g.calls.Add(1) <= g.free {
		return "v-" + name, nil
	}
	select {
	case <-g.release:
		return "v-" + name, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func TestConcurrentGetsOfAnExpiredNameShareOneFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &gatedSource{free: 1, release: make(chan struct{})}
		c := secrets.NewCache(src, time.Minute)
		if _, err := c.Get(t.Context(), "K"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute) // the bubble's fake clock: K is now expired

		const callers = 10
		var wg sync.WaitGroup
		results := make([]string, callers)
		for i := range callers {
			wg.Go(func() { results[i], _ = c.Get(context.Background(), "K") })
		}
		synctest.Wait() // every caller is now blocked, inside Fetch or waiting on it
		if n := src.calls.Load() - src.free; n != 1 {
			t.Fatalf("fetches in flight = %d, want 1 shared by %d callers", n, callers)
		}
		close(src.release)
		wg.Wait()
		for i, r := range results {
			if r != "v-K" {
				t.Fatalf("caller %d got %q", i, r)
			}
		}
	})
}

func TestCancelledCallerDoesNotFailTheSharedFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &gatedSource{release: make(chan struct{})}
		c := secrets.NewCache(src, time.Minute)

		firstCtx, cancelFirst := context.WithCancel(context.Background())
		var firstErr, secondErr error
		var second string
		var wg sync.WaitGroup
		wg.Go(func() { _, firstErr = c.Get(firstCtx, "K") })
		synctest.Wait()
		wg.Go(func() { second, secondErr = c.Get(context.Background(), "K") })
		synctest.Wait()

		cancelFirst()
		synctest.Wait()
		if !errors.Is(firstErr, context.Canceled) {
			t.Fatalf("first caller err = %v, want context.Canceled", firstErr)
		}
		close(src.release)
		wg.Wait()
		if second != "v-K" || secondErr != nil {
			t.Fatalf("second caller = %q, %v; want the shared fetch's value", second, secondErr)
		}
		if n := src.calls.Load(); n != 1 {
			t.Fatalf("fetches = %d, want 1", n)
		}
	})
}

func TestSecretValueNeverFormatted(t *testing.T) {
	clk := &clock{t: time.Unix(0, 0)}
	src := newFake(map[string]string{"K": canary, "L": canary})
	var refreshErr error
	c := secrets.NewCache(src, time.Minute, secrets.WithClock(clk.now),
		secrets.WithRefreshErrorHandler(func(_ string, err error) { refreshErr = err }))
	mustGet(t, c, "K", canary)
	mustGet(t, c, "L", canary)

	src.setFail("K", errors.New("unavailable"))
	src.setFail("BROKEN", errors.New("unavailable"))
	clk.advance(time.Minute)
	mustGet(t, c, "K", canary)
	if refreshErr == nil {
		t.Fatal("no refresh error reported")
	}
	_, fetchErr := c.Get(t.Context(), "BROKEN")
	_, notFoundErr := c.Get(t.Context(), "ABSENT")
	prefetchErr := c.Prefetch(t.Context(), []string{"K", "L", "BROKEN", "ABSENT"})

	subjects := map[string]any{
		"*Cache":         c,
		"*FetchError":    fetchErr,
		"*NotFoundError": notFoundErr,
		"*PrefetchError": prefetchErr,
		"refresh error":  refreshErr,
	}
	for label, v := range subjects {
		if v == nil {
			t.Fatalf("%s is nil; the test would prove nothing", label)
		}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			if out := fmt.Sprintf(verb, v); strings.Contains(out, canary) {
				t.Errorf("%s formatted with %s leaks the value: %s", label, verb, out)
			}
		}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "v", v)
		slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "v", v)
		if strings.Contains(buf.String(), canary) {
			t.Errorf("%s logged with slog leaks the value: %s", label, buf.String())
		}
	}
}
