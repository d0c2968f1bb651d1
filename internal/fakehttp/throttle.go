package fakehttp

import (
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// Throttle is a rate-limited API in front of a fake: it lets perSecond
// requests a second through (burst at once) and answers the rest 429 with
// a Retry-After of the whole seconds until the next would pass, as an API
// enforcing a quota does. Benchmarks measure a client's pacing with it.
type Throttle struct {
	URL     string
	limit   float64
	served  atomic.Int64
	refused atomic.Int64

	mu    sync.Mutex
	first time.Time
	last  time.Time
}

// NewThrottle serves upstream through a throttle until the test ends.
func NewThrottle(tb testing.TB, upstream string, perSecond float64, burst int) *Throttle {
	tb.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		tb.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	bucket := rate.NewLimiter(rate.Limit(perSecond), burst)
	t := &Throttle{limit: perSecond}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		t.mu.Lock()
		if t.first.IsZero() {
			t.first = now
		}
		t.last = now
		t.mu.Unlock()
		res := bucket.ReserveN(now, 1)
		if wait := res.DelayFrom(now); wait > 0 {
			res.CancelAt(now)
			t.refused.Add(1)
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"message":"Too Many Requests","documentation_url":null}`))
			return
		}
		t.served.Add(1)
		proxy.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	t.URL = srv.URL
	return t
}

// Served and Refused count the requests let through and answered 429.
func (t *Throttle) Served() int64  { return t.served.Load() }
func (t *Throttle) Refused() int64 { return t.refused.Load() }

// Achieved is the rate let through, from the first request to the last,
// as a share of the rate allowed.
func (t *Throttle) Achieved() float64 {
	t.mu.Lock()
	span := t.last.Sub(t.first)
	t.mu.Unlock()
	if span <= 0 {
		return 0
	}
	return float64(t.served.Load()) / span.Seconds() / t.limit
}

// RefusedShare is the share of all requests answered 429.
func (t *Throttle) RefusedShare() float64 {
	served, refused := t.served.Load(), t.refused.Load()
	if served+refused == 0 {
		return 0
	}
	return float64(refused) / float64(served+refused)
}

// BenchPeople is how many people a bulk benchmark provisions:
// BENCH_PEOPLE, default 1,000.
func BenchPeople(tb testing.TB) int {
	if v := os.Getenv("BENCH_PEOPLE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			tb.Fatalf("BENCH_PEOPLE=%q: want a positive number", v)
		}
		return n
	}
	return 1000
}

// Allowed and AllowedBurst are the rate limit the bulk benchmarks' fakes
// enforce: what the goals of make bench are stated against.
const (
	Allowed      = 40
	AllowedBurst = 10
)
