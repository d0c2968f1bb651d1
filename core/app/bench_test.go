package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/looker"
	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/core/sandbox"
	"github.com/onboard-dev/onboard/core/sendgrid"
	"github.com/onboard-dev/onboard/core/sendgrid/sendgridtest"
)

// injectedLatency is added to every Looker and SendGrid answer, so that the
// wall time of one provisioning divided by it counts the sequential round
// trips on its critical path.
const injectedLatency = 20 * time.Millisecond

// BenchmarkProvisionNewUser provisions a new user per iteration (lookup,
// create, email credential, one concurrent round of grants and setup link,
// welcome email) and reports round trips on the critical path; the target is 5.
func BenchmarkProvisionNewUser(b *testing.B) {
	cfg, err := core.LoadConfig(configPath(b))
	if err != nil {
		b.Fatal(err)
	}
	lk := lookertest.NewServer(lookertest.Options{Latency: injectedLatency})
	defer lk.Close()
	sandbox.Seed(lk, cfg)
	sg := sendgridtest.NewServer(sendgridtest.Options{APIKey: "SG.bench", Latency: injectedLatency})
	defer sg.Close()

	client := looker.New(looker.Config{BaseURL: lk.URL, ClientID: lookertest.DefaultClientID, ClientSecret: lookertest.DefaultClientSecret, Timeout: 10 * time.Second}, nil)
	sgClient, err := sendgrid.New(sendgrid.Config{APIKey: "SG.bench", BaseURL: sg.URL, Timeout: 10 * time.Second, HTTPClient: &http.Client{}})
	if err != nil {
		b.Fatal(err)
	}
	welcomer, err := sendgrid.NewWelcomer(sgClient, cfg.Email.From)
	if err != nil {
		b.Fatal(err)
	}
	quiet := logging.New(io.Discard, slog.LevelError, nil)
	engine := &core.Engine{Config: cfg, Targets: []core.Target{looker.NewTarget(client, cfg.Email.Provider, quiet)}, Mailer: welcomer, Log: quiet}
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
