// Package coldstart compares a function's cold start with a hello-world's,
// for the ColdStart benchmarks of each platform's entry point.
package coldstart

import (
	"slices"
	"testing"
	"time"
)

// Starts is how many cold starts of each function one comparison takes.
// A single start on a shared two-core machine swings by a factor of two
// (a neighbour's fsync, a descheduled process): the median of fifteen
// stays within a few percent from run to run.
const Starts = 15

// Compare starts the function and the hello-world Starts times each, in
// turn so that both see the same machine, and reports the median cost of
// the function's start against the median of the hello-world's first
// answer, the ratio the cold-start goal is set in. function returns one
// start's cost, its first answer less a warm one; hello its first answer.
func Compare(b *testing.B, function, hello func() time.Duration) {
	b.Helper()
	costs, hellos := make([]time.Duration, 0, Starts), make([]time.Duration, 0, Starts)
	for range Starts {
		costs = append(costs, function())
		hellos = append(hellos, hello())
	}
	cost, first := median(costs), median(hellos)
	b.Logf("start-up cost %s, hello-world's first answer %s (medians of %d starts; costs %v)", cost, first, Starts, costs)
	b.ReportMetric(float64(cost)/float64(first), "cold-start-cost/hello-world")
}

func median(ds []time.Duration) time.Duration {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	if n := len(ds); n%2 == 0 {
		return (ds[n/2-1] + ds[n/2]) / 2
	}
	return ds[len(ds)/2]
}
