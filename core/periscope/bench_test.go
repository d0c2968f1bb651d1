package periscope

import (
	"fmt"
	"testing"

	"github.com/onboard-dev/onboard/core"
)

// BenchmarkCallsPerPersonPerSite provisions new people into a profile of
// two sites and two groups, on a warm instance: the Periscope calls one
// person costs on one site (the lookup, the create; the groups' list is
// kept from the first person).
func BenchmarkCallsPerPersonPerSite(b *testing.B) {
	f := newFixture(b, setup{})
	if res, err := f.handle(b, `{"email":"warm@example.com"}`); err != nil || res.Status != core.StatusCreated {
		b.Fatalf("warm-up: %+v %v", res, err)
	}
	before := len(f.fake.Requests())
	n := 0
	for b.Loop() {
		if res, err := f.handle(b, fmt.Sprintf(`{"email":"person%d@example.com"}`, n)); err != nil || res.Status != core.StatusCreated {
			b.Fatalf("%+v %v", res, err)
		}
		n++
	}
	const sites = 2
	b.ReportMetric(float64(len(f.fake.Requests())-before)/float64(n)/sites, "calls/person/site")
}
