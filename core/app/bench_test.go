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

// injectedLatency is added to every outside call (Looker, SendGrid, AAC,
// Periscope), so that the wall time of one provisioning divided by it
// counts the sequential round trips on its critical path.
const injectedLatency = 20 * time.Millisecond

// lookerChain is the round trips of a new Looker user's dependency chain
// (lookup, create, credentials, setup link, email): issue #13's yardstick
// for every profile's wall time.
const lookerChain = 5

// BenchmarkProvisionNewUser provisions a new Looker user per iteration
// (lookup, create, email credential, one concurrent round of grants and
// setup link, welcome email); the goal is 5 round trips.
func BenchmarkProvisionNewUser(b *testing.B) {
	w := newWorld(b, lookertest.Options{})
	// No store: the benchmark measures the flow's round trips, not the state store's.
	measureNewUsers(b, w.instance(b, nil, delayed{injectedLatency}), "", true)
}

// measureNewUsers provisions a new person into profile ("": the default)
// per iteration on a warm engine and reports the round trips on the
// critical path (wall time ÷ injectedLatency) and the wall time against
// Looker's chain (÷ lookerChain latencies). wantEmail says whether the
// profile's targets make onboard send a welcome.
func measureNewUsers(b *testing.B, engine *core.Engine, profile string, wantEmail bool) {
	ctx := context.Background()
	provision := func(id string) {
		req, err := core.Request{Email: "bench-" + id + "@example.com", Name: "Bench User", Profile: profile}.Normalize()
		if err != nil {
			b.Fatal(err)
		}
		res, err := engine.Handle(ctx, req, core.Meta{Trigger: "bench"})
		if err != nil || res.Status != core.StatusCreated || (res.Email == "sent") != wantEmail {
			b.Fatalf("provision %s: %+v %v", profile, res, err)
		}
		for name, r := range res.Targets {
			if r.Status != core.StatusCreated {
				b.Fatalf("provision %s: %s answered %s, want created", profile, name, r.Status)
			}
		}
	}
	// Warm: logins, token refreshes and the lists an instance keeps (Looker's
	// roles, groups and attributes, AAC's workspace, Periscope's groups).
	provision("warm")
	b.ResetTimer()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		provision(fmt.Sprint(i)) // a new person every time
	}
	perOp := float64(time.Since(start)) / float64(b.N)
	b.ReportMetric(math.Round(perOp/float64(injectedLatency)*10)/10, "round-trips/op")
	b.ReportMetric(math.Round(perOp/float64(lookerChain*injectedLatency)*100)/100, "wall/(5×latency)")
}

// delayed adds a fixed latency to every request it carries.
type delayed struct{ latency time.Duration }

func (d delayed) RoundTrip(r *http.Request) (*http.Response, error) {
	time.Sleep(d.latency)
	return http.DefaultTransport.RoundTrip(r)
}
