package httpretry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// virtualClock is the limiter's and the fake server's time: sleeping
// advances it, so minutes of traffic simulate in milliseconds and nothing
// depends on this machine's speed.
type virtualClock struct{ t time.Time }

func (c *virtualClock) now() time.Time { return c.t }
func (c *virtualClock) sleep(_ context.Context, d time.Duration) error {
	c.t = c.t.Add(d)
	return nil
}

func newVirtualLimiter(maxPerSecond float64) (*Limiter, *virtualClock) {
	clock := &virtualClock{t: time.Unix(1_800_000_000, 0)}
	l := NewLimiter(maxPerSecond)
	l.now = clock.now
	return l, clock
}

func answer(status int, header ...string) *http.Response {
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return &http.Response{StatusCode: status, Header: h}
}

// Against a server allowing N calls a second (429 with Retry-After: 1
// beyond), the limiter settles just under the limit: at least 90 % of the
// allowed rate over five minutes, with at most 5 % of calls refused,
// whatever the limit, the server's burst and the configured ceiling above it.
func TestLimiterLearnsWhatTheServerAllows(t *testing.T) {
	for _, allowed := range []float64{10, 40, 200} {
		for _, burst := range []int{1, int(allowed / 4)} {
			for _, ceiling := range []float64{0, allowed * 2.5, allowed * 25} {
				name := fmt.Sprintf("allowed %v burst %d ceiling %v", allowed, burst, ceiling)
				t.Run(name, func(t *testing.T) {
					l, clock := newVirtualLimiter(ceiling)
					start := clock.now()
					server := rate.NewLimiter(rate.Limit(allowed), burst)
					server.AllowN(start, burst) // the bucket starts empty, as after earlier traffic
					var sent, refused, done int
					for clock.now().Sub(start) < 5*time.Minute {
						if err := l.Wait(context.Background(), time.Minute, clock.sleep); err != nil {
							t.Fatal(err)
						}
						sent++
						if !server.AllowN(clock.now(), 1) {
							refused++
							l.Observe(answer(http.StatusTooManyRequests, "Retry-After", "1"))
							continue
						}
						done++
						l.Observe(answer(http.StatusOK))
					}
					achieved := float64(done) / clock.now().Sub(start).Seconds() / allowed
					share := float64(refused) / float64(sent)
					if achieved < 0.9 || share > 0.05 {
						t.Errorf("achieved %.1f %% of the allowed rate with %.2f %% of %d calls refused; want >= 90 %% and <= 5 %%", achieved*100, share*100, sent)
					}
				})
			}
		}
	}
}

// A raised limit is found again: the pace probes past the level it was
// refused at, slowly.
func TestLimiterFindsARaisedLimit(t *testing.T) {
	l, clock := newVirtualLimiter(0)
	server := rate.NewLimiter(20, 2)
	run := func(d time.Duration) (done int) {
		end := clock.now().Add(d)
		for clock.now().Before(end) {
			_ = l.Wait(context.Background(), time.Minute, clock.sleep)
			if server.AllowN(clock.now(), 1) {
				done++
				l.Observe(answer(http.StatusOK))
			} else {
				l.Observe(answer(http.StatusTooManyRequests, "Retry-After", "1"))
			}
		}
		return done
	}
	run(time.Minute)
	server.SetLimitAt(clock.now(), 40)
	run(5 * time.Minute)
	if got := float64(run(time.Minute)) / 60; got < 30 {
		t.Errorf("%.1f calls a second got through a minute after five at a raised limit of 40; want the pace to follow it up", got)
	}
}

// A 429 pauses every caller for its Retry-After, not only the one refused.
func TestLimiterPausesEveryCaller(t *testing.T) {
	l, clock := newVirtualLimiter(0)
	l.Observe(answer(http.StatusTooManyRequests, "Retry-After", "3"))
	for caller := range 2 {
		before := clock.now()
		if err := l.Wait(context.Background(), time.Minute, clock.sleep); err != nil {
			t.Fatal(err)
		}
		if waited := clock.now().Sub(before); caller == 0 && waited != 3*time.Second {
			t.Errorf("the first caller after the 429 waited %s, want the Retry-After, 3s", waited)
		}
	}
}

// The calls in flight when a server starts refusing are refused together:
// one signal, so the pace is cut once, not once per call.
func TestLimiterCutsOncePerRefusal(t *testing.T) {
	l, clock := newVirtualLimiter(40)
	for range 16 {
		l.Observe(answer(http.StatusTooManyRequests, "Retry-After", "1"))
	}
	if got := l.Rate(); got != 20 {
		t.Fatalf("16 refusals in flight together left the pace at %v, want 40 halved once, 20", got)
	}
	_ = clock.sleep(context.Background(), 3*time.Second)
	l.Observe(answer(http.StatusTooManyRequests, "Retry-After", "1"))
	if got := l.Rate(); got != 10 {
		t.Errorf("a refusal after the pause left the pace at %v, want 10", got)
	}
}

// A pace that went unrefused and then is refused was a little too fast
// (the server's burst hid it): the pace steps a tenth below it rather
// than halving, and halves when refused there too.
func TestLimiterStepsBelowAnOvershotPace(t *testing.T) {
	l, clock := newVirtualLimiter(40)
	refuse := func() {
		_ = clock.sleep(context.Background(), 2*time.Second)
		l.Observe(answer(http.StatusTooManyRequests, "Retry-After", "1"))
	}
	refuse() // 40 halved: 20
	_ = clock.sleep(context.Background(), 2*time.Second)
	l.Observe(answer(http.StatusOK)) // 20 went unrefused: 30 is tried
	refuse()                         // back to 20, the good pace
	if got := l.Rate(); got != 20 {
		t.Fatalf("a refused probe left the pace at %v, want the good 20", got)
	}
	refuse()
	if got := l.Rate(); got != 18 {
		t.Errorf("the good pace refused left it at %v, want a tenth below, 18", got)
	}
	refuse()
	if got := l.Rate(); got != 9 {
		t.Errorf("a refusal a tenth below left the pace at %v, want it halved, 9", got)
	}
}

// Callers queue for their places in the pace; one whose place would come
// past its context's deadline fails at once as rate limited, unsent,
// rather than waiting in the queue until the deadline.
func TestLimiterQueueDoesNotHoldACallerPastItsDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(1)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() { _ = l.Wait(context.Background(), time.Minute, Sleep) })
		}
		synctest.Wait() // one call went, one waits a second for its place, two queue behind it
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		before := time.Now()
		err := l.Wait(ctx, time.Minute, Sleep)
		var paused *PausedError
		if !errors.As(err, &paused) || paused.RetryAfter < 3*time.Second || time.Since(before) != 0 {
			t.Errorf("got %v after waiting %s, want a PausedError with its place at least 3s away and no wait", err, time.Since(before))
		}
		wg.Wait()
	})
}

// A pause longer than a caller may wait fails it at once as rate limited,
// with the time left as its Retry-After: a webhook is answered 429 rather
// than held open.
func TestLimiterDoesNotHoldACallerPastMaxWait(t *testing.T) {
	l, clock := newVirtualLimiter(0)
	l.Observe(answer(http.StatusTooManyRequests, "X-Retry-After", "57")) // AAC's header
	before := clock.now()
	err := l.Wait(context.Background(), 10*time.Second, clock.sleep)
	var paused *PausedError
	if !errors.As(err, &paused) || paused.RetryAfter != 57*time.Second || clock.now() != before {
		t.Fatalf("got %v after waiting %s, want a PausedError with 57s left and no wait", err, clock.now().Sub(before))
	}
	if f, ok := Classify(err); !ok || f.Status != http.StatusTooManyRequests || f.RetryAfter != 57*time.Second {
		t.Errorf("classified as %+v, want a 429 with Retry-After 57s", f)
	}
	if got := Answer("looker", err, nil); got.Error() != "looker: rate limited, retry later" {
		t.Errorf("answered %q, want the target rate limited", got)
	}
}

// A header saying the quota is spent pauses callers until its reset,
// before the server has to refuse anyone.
func TestLimiterHonoursQuotaHeaders(t *testing.T) {
	cases := []struct {
		name   string
		header []string
		want   time.Duration
	}{
		{"SendGrid, a Unix reset", []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1800000042"}, 42 * time.Second},
		{"AAC workspace, seconds", []string{"X-Rate-Limit-Workspace-Remaining", "0", "X-Rate-Limit-Workspace-Reset", "20"}, 20 * time.Second},
		{"IETF draft", []string{"RateLimit-Remaining", "0", "RateLimit-Reset", "5"}, 5 * time.Second},
		{"calls left", []string{"X-RateLimit-Remaining", "3", "X-RateLimit-Reset", "1800000042"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, clock := newVirtualLimiter(0)
			l.Observe(answer(http.StatusOK, tc.header...))
			before := clock.now()
			if err := l.Wait(context.Background(), time.Minute, clock.sleep); err != nil {
				t.Fatal(err)
			}
			if waited := clock.now().Sub(before); waited != tc.want {
				t.Errorf("waited %s, want %s", waited, tc.want)
			}
		})
	}
}

// Every attempt of a Caller goes through its limiter: a paused host fails
// a write at once, unsent, and the write is still audited as attempted.
func TestCallerWaitsForItsLimiter(t *testing.T) {
	l, clock := newVirtualLimiter(0)
	l.Observe(answer(http.StatusTooManyRequests, "Retry-After", "120"))
	sent := 0
	err := Caller{Limiter: l, Sleep: clock.sleep}.Do(context.Background(), Call{
		Target: "looker", Op: "POST /users", Write: true,
		Attempt: func(context.Context, any) error { sent++; return nil },
	}, nil)
	if f, _ := Classify(err); f.Status != http.StatusTooManyRequests || sent != 0 {
		t.Fatalf("got %v after %d sends, want a 429 and nothing sent", err, sent)
	}
}

func TestMaxRateSetting(t *testing.T) {
	get := func(v string) func(string) string { return func(string) string { return v } }
	for v, want := range map[string]float64{"": 20, "5": 5, " 2.5 ": 2.5, "0": 0} {
		if got, err := MaxRateSetting(get(v), "LOOKERSDK_MAX_RPS", 20); err != nil || got != want {
			t.Errorf("%q: got %v, %v; want %v", v, got, err, want)
		}
	}
	for _, bad := range []string{"-1", "fast", "NaN", "1e9"} {
		if _, err := MaxRateSetting(get(bad), "LOOKERSDK_MAX_RPS", 20); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// A 429 that one call gets over the wire pauses the next call of the same
// client before it is sent: the limiter hears it through the transport.
func TestObservingTransportFeedsTheCallsLimiter(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	client := &http.Client{Transport: Observing{Base: http.DefaultTransport}}
	caller := Caller{Limiter: NewLimiter(0), Policy: Policy{MaxAttempts: 1, MaxDelay: time.Second}}
	get := func() error {
		return caller.Do(context.Background(), Call{Op: "GET /", Attempt: func(ctx context.Context, _ any) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return &PausedError{RetryAfter: 30 * time.Second} // stands for the client's own 429 error
			}
			return nil
		}}, nil)
	}
	_ = get()
	err := get()
	var paused *PausedError
	if !errors.As(err, &paused) || hits.Load() != 1 {
		t.Fatalf("second call: %v after %d requests, want it held back unsent by the first one's Retry-After", err, hits.Load())
	}
}

// One request's handful of calls (a new Looker user is seven) goes at once
// at the default ceiling: only a stream of requests is held to the pace.
func TestLimiterLetsARequestsCallsGoAtOnce(t *testing.T) {
	l, clock := newVirtualLimiter(20)
	before := clock.now()
	for range 7 {
		if err := l.Wait(context.Background(), time.Second, clock.sleep); err != nil {
			t.Fatal(err)
		}
	}
	if waited := clock.now().Sub(before); waited != 0 {
		t.Errorf("seven calls waited %s at a ceiling of 20 a second, want none", waited)
	}
	for range 40 {
		_ = l.Wait(context.Background(), time.Second, clock.sleep)
	}
	if waited := clock.now().Sub(before); waited < time.Second {
		t.Errorf("47 calls took %s at a ceiling of 20 a second, want them paced past the first second's", waited)
	}
}

func TestPausedErrorAnswersWholeSecondsRoundedUp(t *testing.T) {
	for _, c := range []struct{ left, want time.Duration }{
		{120*time.Second - 50*time.Microsecond, 120 * time.Second},
		{120 * time.Second, 120 * time.Second},
		{300 * time.Millisecond, time.Second},
	} {
		if status, after := (&PausedError{RetryAfter: c.left}).RetryStatus(); status != http.StatusTooManyRequests || after != c.want {
			t.Errorf("%s left: %d, Retry-After %s, want 429 and %s", c.left, status, after, c.want)
		}
	}
}

// Many callers sharing one limiter, each call 20 ms on the wire, against a
// server allowing N calls a second with a burst (429 with Retry-After: 1
// beyond): over five minutes at least 90 % of the allowed rate goes
// through with at most 5 % of calls refused, whether 4 callers share the
// pace or 64. Many callers queue far ahead of the pace, so this is where a
// pace change that reaches only the calls not yet queued shows.
func TestLimiterPacesManyCallers(t *testing.T) {
	for _, allowed := range []float64{10, 40, 200} {
		for _, callers := range []int{4, 16, 64} {
			t.Run(fmt.Sprintf("allowed %v callers %d", allowed, callers), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					const latency = 20 * time.Millisecond
					l := NewLimiter(0)
					start := time.Now()
					end := start.Add(5 * time.Minute)
					burst := int(allowed / 4)
					server := rate.NewLimiter(rate.Limit(allowed), burst)
					server.AllowN(start, burst) // the bucket starts empty, as after earlier traffic
					var sent, refused, done atomic.Int64
					caller := Caller{Limiter: l}
					call := Call{Op: "GET /", Idempotent: true, Attempt: func(context.Context, any) error {
						time.Sleep(latency / 2)
						sent.Add(1)
						allowed := server.Allow()
						time.Sleep(latency / 2)
						if !allowed {
							refused.Add(1)
							l.Observe(answer(http.StatusTooManyRequests, "Retry-After", "1"))
							return &PausedError{RetryAfter: time.Second} // stands for the client's 429
						}
						if time.Now().Before(end) {
							done.Add(1)
						}
						l.Observe(answer(http.StatusOK))
						return nil
					}}
					var wg sync.WaitGroup
					for range callers {
						wg.Go(func() {
							for time.Now().Before(end) {
								_ = caller.Do(context.Background(), call, nil)
							}
						})
					}
					wg.Wait()
					achieved := float64(done.Load()) / end.Sub(start).Seconds() / allowed
					share := float64(refused.Load()) / float64(sent.Load())
					if achieved < 0.9 || share > 0.05 {
						t.Errorf("achieved %.1f %% of the allowed rate with %.2f %% of %d calls refused; want >= 90 %% and <= 5 %%", achieved*100, share*100, sent.Load())
					}
				})
			})
		}
	}
}
