package app

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/looker/lookertest"
)

// injectedLatency is added to every Looker and SendGrid answer, so that the
// wall time of one provisioning divided by it counts the sequential round
// trips on its critical path.
const injectedLatency = 20 * time.Millisecond

// BenchmarkProvisionNewUser provisions a new user per iteration (lookup,
// create, email credential, one concurrent round of grants and setup link,
// welcome email) and reports round trips on the critical path; the target is 5.
func BenchmarkProvisionNewUser(b *testing.B) {
	w := newWorld(b, lookertest.Options{})
	// No store: the benchmark measures the flow's round trips, not the state store's.
	engine := w.instance(b, nil, delayed{injectedLatency})
	ctx := context.Background()
	provision := func(i int) {
		req, _ := core.Request{Email: fmt.Sprintf("bench-%d@example.com", i), Name: "Bench User"}.Normalize()
		res, err := engine.Handle(ctx, req, core.Meta{Trigger: "bench"})
		if err != nil || res.Status != core.StatusCreated || res.Email != "sent" {
			b.Fatalf("provision: %+v %v", res, err)
		}
	}
	provision(-1) // warm: login and the role/group/attribute lists, as a warm instance has them
	b.ResetTimer()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		provision(i)
	}
	perOp := time.Since(start) / time.Duration(b.N)
	b.ReportMetric(math.Round(float64(perOp)/float64(injectedLatency)*10)/10, "round-trips/op")
}

// delayed adds a fixed latency to every request, Looker's and SendGrid's alike.
type delayed struct{ latency time.Duration }

func (d delayed) RoundTrip(r *http.Request) (*http.Response, error) {
	time.Sleep(d.latency)
	return http.DefaultTransport.RoundTrip(r)
}
