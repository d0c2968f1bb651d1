// Package testpolicy writes variants of the example policy for tests.
package testpolicy

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// WithoutBreaker returns the path of a copy of the example policy at
// example whose deprovision breaker no test run can trip. A fuzz run
// deprovisions thousands of people within the hour; past the example's
// max_deprovision every later deprovision would be a retryable 503, which
// would hide the failures the run is looking for.
func WithoutBreaker(tb testing.TB, example string) string {
	tb.Helper()
	data, err := os.ReadFile(example)
	if err != nil {
		tb.Fatal(err)
	}
	const limit = "\nmax_deprovision: 10\n"
	if !bytes.Contains(data, []byte(limit)) {
		tb.Fatalf("%s no longer says %q", example, limit)
	}
	path := filepath.Join(tb.TempDir(), "onboard.yaml")
	if err := os.WriteFile(path, bytes.Replace(data, []byte(limit), []byte("\nmax_deprovision: 1000000000\n"), 1), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}
