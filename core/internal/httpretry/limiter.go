package httpretry

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter paces every call one client makes to its host, whichever request
// of the instance makes it, and learns what the server allows: 16 workers
// retrying on their own would stampede a rate limit together, and a
// provisioning tool that draws hundreds of 429s is the one an admin turns
// off.
//
// It starts at the configured ceiling. A 429 pauses every caller for the
// server's Retry-After (not just the one refused) and marks the pace as too
// fast; the pace drops back to the fastest one that went unrefused (or
// halves, while none is known; a tenth below a pace that went unrefused
// and then was refused) and then searches the gap between the two by
// halves, a step every probeEvery, so it settles just under the limit with
// few refusals. Callers take their places in the pace one at a time, so a
// new pace holds for every call not yet sent, however many workers wait;
// a place taken at a pace refused since is given up for one behind the
// pause. Once the gap is narrow it only looks above the limit once in a
// long while, to find a limit that was raised. A response saying the quota
// is spent (X-RateLimit-Remaining: 0 and its kin) pauses callers until the
// quota resets, before any 429.
type Limiter struct {
	mu     sync.Mutex
	bucket *rate.Limiter
	// ceiling is the configured maximum.
	ceiling rate.Limit
	// good is the fastest pace that ran a probeEvery unrefused, bad the
	// slowest one refused since; 0 when not known.
	good, bad   rate.Limit
	since       time.Time // when the pace was last set
	pausedUntil time.Time
	lastRefusal time.Time
	refusals    int // 429s so far: a waiter that sees it change queues again
	// turn is held by the one caller waiting for its place in the pace;
	// waiting counts it and those queued for it.
	turn    chan struct{}
	waiting int
	now     func() time.Time
}

const (
	// unlimited is the pace with no ceiling configured: as good as none
	// for an HTTP API, and a number to halve from.
	unlimited = 1000
	// probeEvery is how long a pace must go unrefused before a faster
	// one is tried; settledEvery, once good and bad are within settled of
	// each other.
	probeEvery   = 5 * time.Second
	settledEvery = time.Minute
	settled      = 0.02
	// overshotBy is the step down from a pace that went unrefused for a
	// while and then was refused: a halving would lose a third of the
	// calls for the twenty seconds the search takes to climb back.
	overshotBy = 0.9
	// defaultPause is how long callers pause after a 429 that says nothing.
	defaultPause = time.Second
)

// NewLimiter returns a limiter whose pace never exceeds maxPerSecond calls
// a second (0: no ceiling; it still learns from refusals).
func NewLimiter(maxPerSecond float64) *Limiter {
	ceiling := rate.Limit(unlimited)
	if maxPerSecond > 0 {
		ceiling = rate.Limit(maxPerSecond)
	}
	return &Limiter{bucket: rate.NewLimiter(ceiling, burstFor(ceiling)), ceiling: ceiling,
		turn: make(chan struct{}, 1), now: time.Now}
}

// burstFor lets a second's calls go at once, as "calls a second" reads:
// a request's own handful (a new user is seven Looker calls) goes unpaced,
// and only a stream of them is held to the pace. A server that refused
// once gets no bursts (setPace).
func burstFor(r rate.Limit) int { return max(1, int(r)) }

// Rate is the current pace, in calls a second.
func (l *Limiter) Rate() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return float64(l.bucket.Limit())
}

// Wait blocks until a call may go: past any pause, then at the pace. A
// pause longer than maxWait (or a wait past the context's deadline) is not
// waited: the call fails at once as rate limited, with the time left as
// Retry-After, so a webhook is answered 429 rather than held open while a
// server asks for a minute's rest.
func (l *Limiter) Wait(ctx context.Context, maxWait time.Duration, sleep func(context.Context, time.Duration) error) error {
	return l.wait(ctx, maxWait, sleep, true)
}

// Turn is Wait for a call that has just waited out its own refusal's
// Retry-After: the pause that refusal set is served.
func (l *Limiter) Turn(ctx context.Context, maxWait time.Duration, sleep func(context.Context, time.Duration) error) error {
	return l.wait(ctx, maxWait, sleep, false)
}

func (l *Limiter) wait(ctx context.Context, maxWait time.Duration, sleep func(context.Context, time.Duration) error, pause bool) error {
	if err := l.queue(ctx, maxWait, pause); err != nil {
		return err
	}
	defer l.leave()
	for {
		l.mu.Lock()
		left, refusals := l.pausedUntil.Sub(l.now()), l.refusals
		l.mu.Unlock()
		if left > 0 && pause {
			if left > maxWait || exceedsDeadline(ctx, left) {
				return &PausedError{RetryAfter: left}
			}
			if err := sleep(ctx, left); err != nil {
				return err
			}
		}
		r := l.bucket.ReserveN(l.now(), 1)
		if delay := r.DelayFrom(l.now()); delay > 0 {
			if exceedsDeadline(ctx, delay) {
				r.Cancel()
				return &PausedError{RetryAfter: delay}
			}
			if err := sleep(ctx, delay); err != nil {
				r.Cancel()
				return err
			}
		}
		l.mu.Lock()
		refusedMeanwhile := l.refusals != refusals
		l.mu.Unlock()
		if !refusedMeanwhile {
			return nil
		}
		// The place was taken at a pace the server has since refused:
		// wait out the pause and take one at the new pace.
		pause = true
	}
}

// queue waits for the turn to take a place in the pace. One caller at a
// time holds a place and sleeps until it; the rest queue for the turn,
// however long the queue is (a bulk run's workers queue here), unless the
// context ends first. Places taken ahead by every caller would keep the
// pace they were taken at: 64 workers hold a second or two of the future,
// so a cut pace would still send that much at the refused one (and then
// leave the server idle while their debt is repaid at the slower pace),
// and a raised pace would add its places to theirs, a burst above both.
// A caller whose turn would come past its deadline (each caller ahead
// takes a place at least), or after a pause longer than maxWait, fails at
// once instead.
func (l *Limiter) queue(ctx context.Context, maxWait time.Duration, pause bool) error {
	l.mu.Lock()
	left := time.Duration(0)
	if pause {
		left = max(l.pausedUntil.Sub(l.now()), 0)
	}
	turnIn := left + time.Duration(float64(l.waiting)/float64(l.bucket.Limit())*float64(time.Second))
	if left > maxWait || exceedsDeadline(ctx, turnIn) {
		l.mu.Unlock()
		return &PausedError{RetryAfter: turnIn}
	}
	l.waiting++
	l.mu.Unlock()
	// A free turn is taken whatever the context says, so a call that need
	// not wait fails where every call does, in the transport, and is
	// classified there (select would pick at random between the two).
	select {
	case l.turn <- struct{}{}:
		return nil
	default:
	}
	select {
	case l.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		l.waiting--
		l.mu.Unlock()
		return ctx.Err()
	}
}

// leave passes the turn on.
func (l *Limiter) leave() {
	l.mu.Lock()
	l.waiting--
	l.mu.Unlock()
	<-l.turn
}

func exceedsDeadline(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < d
}

// Refused tells the limiter a call was answered 429, with the server's
// Retry-After (0 when it gave none).
func (l *Limiter) Refused(retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if retryAfter <= 0 {
		retryAfter = defaultPause
	}
	if until := now.Add(retryAfter); until.After(l.pausedUntil) {
		l.pausedUntil = until
	}
	l.refusals++
	// The calls in flight when the server started refusing are refused
	// together, before any of them could slow down: one signal, not many.
	if now.Sub(l.lastRefusal) < time.Second && !l.since.After(l.lastRefusal) {
		return
	}
	l.lastRefusal = now
	cur := l.bucket.Limit()
	l.bad = cur
	next := l.good
	switch {
	case l.good >= l.bad:
		// A pace that went unrefused is refused now: a burst the server
		// allowed hid that it was a little too fast (a burst of 10 hides
		// 41 a second against 40 for ten seconds), or the limit went
		// down. Step a little below it; a refusal there too halves.
		l.good = 0
		next = cur * overshotBy
	case next == 0:
		next = max(cur/2, 1) // nothing known to be good: halve
	}
	l.setPace(next, now)
	// The pace's own saved-up burst would go out the moment the pause
	// ends, into a server that has just refused: spend it on the pause,
	// all but the one call that goes when the pause ends.
	if b := l.bucket.Burst(); b > 1 {
		l.bucket.ReserveN(l.pausedUntil, b-1)
	}
}

// Succeeded tells the limiter a call was answered without a refusal. A
// pace that went unrefused for long enough is good, and a faster one is
// tried: halfway to the slowest refused, at most twice the good one.
func (l *Limiter) Succeeded() {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	cur := l.bucket.Limit()
	every := probeEvery
	if l.bad > 2*l.good {
		every = time.Second // far from the limit: find it fast
	}
	// Time spent paused is not time a pace went unrefused.
	quiet := l.since
	if l.pausedUntil.After(quiet) {
		quiet = l.pausedUntil
	}
	if l.bad == 0 || now.Sub(quiet) < every {
		return // never refused (at the ceiling), or not unrefused for long enough
	}
	if l.good < cur {
		l.good = cur
	}
	// Halfway to the slowest refused pace, but never more than twice the
	// good one: a probe far above the limit is refused for every worker
	// at once.
	next := min((l.good+l.bad)/2, l.good*2)
	if l.bad-l.good < l.bad*settled {
		if now.Sub(quiet) < settledEvery {
			return
		}
		// Settled for a long while: the limit may have been raised.
		l.bad = min(l.bad*1.1, l.ceiling)
		next = (l.good + l.bad) / 2
	}
	l.setPace(min(next, l.ceiling), now)
}

// Exhausted pauses callers until the server's quota resets, as its
// rate-limit headers say, before it has to refuse anyone.
func (l *Limiter) Exhausted(resetIn time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until := l.now().Add(resetIn); until.After(l.pausedUntil) {
		l.pausedUntil = until
	}
}

func (l *Limiter) setPace(r rate.Limit, now time.Time) {
	l.since = now
	l.bucket.SetLimitAt(now, r)
	burst := burstFor(r)
	if l.bad != 0 {
		burst = 1 // a server that refused once gets no bursts
	}
	l.bucket.SetBurstAt(now, burst)
}

// Observe reads what a response says about the server's quota: a 429 (and
// its Retry-After, or AAC's x-retry-after) or, on any answer, a
// rate-limit header saying nothing is left until a reset.
func (l *Limiter) Observe(resp *http.Response) {
	now := l.now()
	if resp.StatusCode == http.StatusTooManyRequests {
		wait := ParseRetryAfter(resp.Header.Get("Retry-After"), now)
		if wait == 0 {
			wait = ParseRetryAfter(resp.Header.Get("X-Retry-After"), now)
		}
		l.Refused(wait)
		return
	}
	if resetIn, spent := quotaSpent(resp.Header, now); spent {
		l.Exhausted(resetIn)
	}
	if resp.StatusCode < http.StatusInternalServerError {
		l.Succeeded()
	}
}

// quotaHeaders are the remaining/reset pairs vendors send: the IETF draft
// and SendGrid's X-RateLimit-*, and AAC's per-user and per-workspace ones.
var quotaHeaders = [][2]string{
	{"RateLimit-Remaining", "RateLimit-Reset"},
	{"X-RateLimit-Remaining", "X-RateLimit-Reset"},
	{"X-Rate-Limit-User-Remaining", "X-Rate-Limit-User-Reset"},
	{"X-Rate-Limit-Workspace-Remaining", "X-Rate-Limit-Workspace-Reset"},
}

// quotaSpent says whether a header reports no calls left, and for how long.
// A reset is seconds from now, or a Unix time when it is that large.
func quotaSpent(h http.Header, now time.Time) (time.Duration, bool) {
	var longest time.Duration
	spent := false
	for _, pair := range quotaHeaders {
		if strings.TrimSpace(h.Get(pair[0])) != "0" {
			continue
		}
		secs, err := strconv.ParseInt(strings.TrimSpace(h.Get(pair[1])), 10, 64)
		if err != nil || secs < 0 {
			secs = int64(defaultPause / time.Second)
		}
		reset := time.Duration(secs) * time.Second
		if secs > 1_000_000_000 {
			reset = time.Unix(secs, 0).Sub(now)
		}
		spent, longest = true, max(longest, reset)
	}
	return longest, spent
}

// PausedError is a call not sent because the host's limiter is pausing
// for longer than the call may wait. It is a 429 to every classifier.
type PausedError struct{ RetryAfter time.Duration }

func (e *PausedError) Error() string {
	return "not sent: pausing for the server's rate limit, " + e.RetryAfter.Round(time.Second).String() + " left"
}

// RetryStatus makes the pause a rate-limited answer (StatusError), in the
// whole seconds of a Retry-After, rounded up: a pause the server set at
// 120 s has a hair less left by now, and the caller must not come back early.
func (e *PausedError) RetryStatus() (int, time.Duration) {
	return http.StatusTooManyRequests, (e.RetryAfter + time.Second - 1).Truncate(time.Second)
}

// Observing is a transport that shows every response to the limiter of
// the call it answers (Caller.Do puts it in the request's context), so
// rate-limit headers and 429s are learned from whichever call got them.
type Observing struct{ Base http.RoundTripper }

// RoundTrip sends r through Base and lets the call's limiter see the answer.
func (t Observing) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.Base.RoundTrip(r)
	if l, ok := r.Context().Value(limiterKey{}).(*Limiter); ok && err == nil {
		l.Observe(resp)
	}
	return resp, err
}

type limiterKey struct{}

// MaxRateSetting reads a target's ceiling setting (LOOKERSDK_MAX_RPS...):
// calls a second, a positive number; 0 sets no ceiling (the pace is still
// learned from refusals); unset is the vendor's default.
func MaxRateSetting(get func(string) string, name string, def float64) (float64, error) {
	v := strings.TrimSpace(get(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n < 0 || n != n || n > unlimited {
		return 0, fmt.Errorf("%s: %q is not a number of calls a second up to %d (0: no ceiling)", name, v, unlimited)
	}
	return n, nil
}
