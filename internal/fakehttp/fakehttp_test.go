package fakehttp

import (
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

func TestDropConnection(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { DropConnection(w) }))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got an answer (%d), want the connection dropped", resp.StatusCode)
	}
}

func TestFaultsWearOutInOrder(t *testing.T) {
	var fs Faults[string]
	fs.Add("once", 1)
	fs.Add("always", 0)
	fs.Add("never reached", 0)
	all := func(string) bool { return true }
	for i, want := range []string{"once", "always", "always"} {
		if got, ok := fs.Take(all); !ok || got != want {
			t.Errorf("take %d = %q, %v; want %q", i, got, ok, want)
		}
	}
	if got, ok := fs.Take(func(f string) bool { return f == "once" }); ok {
		t.Errorf("a worn-out fault was taken again: %q", got)
	}
}

func TestFaultsCountOnlyMatches(t *testing.T) {
	var fs Faults[string]
	fs.Add("a", 1)
	if _, ok := fs.Take(func(f string) bool { return f == "b" }); ok {
		t.Fatal("took a fault that does not match")
	}
	if _, ok := fs.Take(func(f string) bool { return f == "a" }); !ok {
		t.Fatal("a request it did not match wore the fault out")
	}
}

func TestReplyWrite(t *testing.T) {
	writeError := func(w http.ResponseWriter, status int) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		io.WriteString(w, "own error")
	}
	for _, tc := range []struct {
		name                 string
		reply                Reply
		status               int
		ct, retryAfter, body string
	}{
		{"defaults", Reply{}, 500, "application/problem+json", "", "own error"},
		{"status and Retry-After", Reply{Status: 429, RetryAfter: "7"}, 429, "application/problem+json", "7", "own error"},
		{"JSON body", Reply{Status: 503, Body: `{"m":1}`}, 503, "application/json", "", `{"m":1}`},
		{"typed body", Reply{Status: 502, Body: "<html/>", ContentType: "text/html"}, 502, "text/html", "", "<html/>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tc.reply.Write(rec, writeError)
			if rec.Code != tc.status || rec.Header().Get("Content-Type") != tc.ct ||
				rec.Header().Get("Retry-After") != tc.retryAfter || rec.Body.String() != tc.body {
				t.Errorf("got %d %q Retry-After %q body %q; want %d %q %q %q", rec.Code, rec.Header().Get("Content-Type"),
					rec.Header().Get("Retry-After"), rec.Body.String(), tc.status, tc.ct, tc.retryAfter, tc.body)
			}
		})
	}
}

func TestReplyDropsConnection(t *testing.T) {
	url, stop := Serve(func(w http.ResponseWriter, _ *http.Request) {
		Reply{Status: 200, Body: "ignored", DropConnection: true}.Write(w, nil)
	})
	defer stop()
	if resp, err := http.Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("got an answer (%d), want the connection dropped", resp.StatusCode)
	}
}

type closer struct{ closed bool }

func (c *closer) Close() { c.closed = true }

func TestCloseAtEnd(t *testing.T) {
	c := &closer{}
	t.Run("sub", func(t *testing.T) {
		if got := CloseAtEnd(t, c); got != c || c.closed {
			t.Fatal("CloseAtEnd must return s and leave it open until the test ends")
		}
	})
	if !c.closed {
		t.Fatal("not closed when the test ended")
	}
}

// decisions runs keys through a fresh chaos of seed, in the given order, and
// returns which fault each request got ("" for none), by key and occurrence.
func decisions(seed uint64, keys []string) map[string][]string {
	c := NewChaos(NewSchedule(seed), Chance[string]{"a", 0.2}, Chance[string]{"b", 0.2})
	out := map[string][]string{}
	for _, k := range keys {
		f, _ := c.Pick(k, func(string) bool { return true })
		out[k] = append(out[k], f)
	}
	return out
}

func TestChaosIsReproducibleWhateverTheOrder(t *testing.T) {
	var keys []string
	for i := range 50 {
		for range 4 {
			keys = append(keys, fmt.Sprint("GET /users/", i))
		}
	}
	shuffled := slices.Clone(keys)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	first, again := decisions(7, keys), decisions(7, shuffled)
	if !maps.EqualFunc(first, again, slices.Equal) {
		t.Error("one seed made different decisions when the requests came in another order")
	}
	if maps.EqualFunc(first, decisions(8, keys), slices.Equal) {
		t.Error("another seed made the same 200 decisions")
	}
}

func TestChaosShares(t *testing.T) {
	c := NewChaos(NewSchedule(42),
		Chance[string]{"writes only", 1}, // matches nothing below: takes no share
		Chance[string]{"a", 0.1},
		Chance[string]{"b", 0.05},
	)
	const n = 20000
	got := map[string]int{}
	for i := range n {
		if f, ok := c.Pick(fmt.Sprint("key-", i%100), func(f string) bool { return f != "writes only" }); ok {
			got[f]++
		}
	}
	if a, b := float64(got["a"])/n, float64(got["b"])/n; a < 0.09 || a > 0.11 || b < 0.04 || b > 0.06 || got["writes only"] != 0 {
		t.Errorf("shares a=%.3f b=%.3f, writes only %d; want 0.1, 0.05 and 0", a, b, got["writes only"])
	}
	if fired := c.Fired(); !slices.Equal(fired, []int{0, got["a"], got["b"]}) {
		t.Errorf("Fired() = %v, want %v", fired, []int{0, got["a"], got["b"]})
	}
}
