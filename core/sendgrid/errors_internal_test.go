package sendgrid

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"seconds", http.Header{"Retry-After": {"12"}}, 12 * time.Second},
		{"http date", http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second},
		{"date in the past", http.Header{"Retry-After": {now.Add(-time.Hour).Format(http.TimeFormat)}}, 0},
		{"rate limit reset", http.Header{"X-Ratelimit-Reset": {fmt.Sprint(now.Add(3 * time.Second).Unix())}}, 3 * time.Second},
		{"reset already passed", http.Header{"X-Ratelimit-Reset": {fmt.Sprint(now.Add(-3 * time.Second).Unix())}}, 0},
		{"retry-after wins", http.Header{"Retry-After": {"1"}, "X-Ratelimit-Reset": {fmt.Sprint(now.Add(time.Hour).Unix())}}, time.Second},
		{"garbage falls back", http.Header{"Retry-After": {"soon"}, "X-Ratelimit-Reset": {fmt.Sprint(now.Add(5 * time.Second).Unix())}}, 5 * time.Second},
		{"negative seconds ignored", http.Header{"Retry-After": {"-4"}}, 0},
		{"absent", http.Header{}, 0},
	}
	for _, tc := range cases {
		if got := retryAfter(tc.header, now); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestRetryAfterOnlyForTemporaryStatuses(t *testing.T) {
	h := http.Header{"Retry-After": {"30"}}
	if e := newAPIError(400, h, "", "", time.Now()); e.RetryAfter != 0 {
		t.Fatalf("400 must not advertise a retry delay, got %s", e.RetryAfter)
	}
	if e := newAPIError(503, h, "", "", time.Now()); e.RetryAfter != 30*time.Second {
		t.Fatalf("503: got %s", e.RetryAfter)
	}
}

// The key never reaches net/http error text today, so this path can only be
// exercised directly.
func TestTransportErrorScrubsKeyAndChain(t *testing.T) {
	const key = "SG.secret-xyz"
	cause := fmt.Errorf("dial with %s: %w", key, context.DeadlineExceeded)
	err := newTransportError(cause, key, false)
	for e := error(err); e != nil; e = errors.Unwrap(e) {
		if strings.Contains(e.Error(), key) {
			t.Fatalf("key leaked via %T: %v", e, e)
		}
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrTransport) || !IsTemporary(err) {
		t.Fatalf("classification lost: %v", err)
	}
	plain := newTransportError(errors.New("connection refused"), key, true)
	if !strings.Contains(plain.Error(), "connection refused") || errors.Unwrap(plain) == nil {
		t.Fatalf("a key-free cause should be kept intact: %v", plain)
	}
}

func TestExcerptIsRuneSafe(t *testing.T) {
	long := strings.Repeat("é", maxExcerpt) // 2 bytes per rune
	got := excerpt(long)
	if !utf8.ValidString(got) || len(got) > maxExcerpt+len("…") || !strings.HasSuffix(got, "…") {
		t.Fatalf("excerpt = %q (%d bytes)", got, len(got))
	}
	if excerpt("short") != "short" {
		t.Fatal("short bodies must be kept whole")
	}
}
