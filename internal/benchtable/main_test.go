package main

import (
	"strings"
	"testing"
	"time"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/onboard-dev/onboard/core/app
cpu: AMD EPYC
BenchmarkProvisionNewUser-2   	      10	 110000000 ns/op	         5.300 round-trips/op	   1234 B/op	  56 allocs/op
PASS
pkg: github.com/onboard-dev/onboard/cmd/onboard
BenchmarkImportUnderRateLimit-2   	       1	35491694956 ns/op	         5.216 %refused@c16	         0.8256 achieved/allowed@c16
ok  	github.com/onboard-dev/onboard/cmd/onboard	40.018s
`

// The table holds every figure a benchmark reported and none of the
// machine-bound ones, under the machine it ran on.
func TestTable(t *testing.T) {
	var out strings.Builder
	if err := write(&out, strings.NewReader(sample), time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"on 2026-12-04 (linux/amd64, AMD EPYC)",
		"| core/app | ProvisionNewUser | round-trips/op | 5.300 |",
		"| cmd/onboard | ImportUnderRateLimit | %refused@c16 | 5.216 |",
		"| cmd/onboard | ImportUnderRateLimit | achieved/allowed@c16 | 0.8256 |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	for _, absolute := range []string{"ns/op", "B/op", "allocs/op"} {
		if strings.Contains(got, absolute) {
			t.Errorf("table shows %s, which measures the machine:\n%s", absolute, got)
		}
	}
}

// A failed run makes no table: half a table would read as the whole.
func TestFailedRunMakesNoTable(t *testing.T) {
	var out strings.Builder
	err := write(&out, strings.NewReader(sample+"--- FAIL: BenchmarkX\nFAIL\n"), time.Now())
	if err == nil || out.Len() != 0 {
		t.Fatalf("got %v and %q, want an error and no table", err, out.String())
	}
}
