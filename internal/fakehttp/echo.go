package fakehttp

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// EchoMarker starts every echo, so a test can tell an echo got through.
const EchoMarker = "echo of the refused request:"

// EchoingProxy starts, for the test's duration, a reverse proxy to upstream
// that answers the requests refuse picks (it returns the status to answer
// with; 0 passes the request on) with an error body echoing the request:
// method, path, every header and the body, as is and base64-encoded. That is
// what a misconfigured gateway, a WAF or a debug build does with a request
// it refuses, and what tests use to prove that nothing an upstream echoes
// reaches an answer, a log or the audit log. The echo sits under the keys
// vendors' error bodies use: "message", "error" and "errors"[].message.
func EchoingProxy(tb testing.TB, upstream string, refuse func(*http.Request) int) string {
	tb.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		tb.Fatalf("EchoingProxy: upstream %q: %v", upstream, err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		status := refuse(r)
		if status == 0 {
			proxy.ServeHTTP(w, r)
			return
		}
		echo := dumpRequest(r, body)
		echo += "\nbase64: " + base64.StdEncoding.EncodeToString([]byte(echo))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"message": echo,
			"error":   echo,
			"errors":  []map[string]string{{"message": echo}},
		})
	}))
	tb.Cleanup(srv.Close)
	return srv.URL
}

func dumpRequest(r *http.Request, body []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s\n", EchoMarker, r.Method, r.URL.RequestURI())
	for _, k := range slices.Sorted(maps.Keys(r.Header)) {
		fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(r.Header[k], ", "))
	}
	b.WriteString("\n")
	b.Write(body)
	return b.String()
}
