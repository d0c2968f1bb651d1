package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/functions/aws/internal/awstest"
	"github.com/onboard-dev/onboard/internal/coldstart"
	"github.com/onboard-dev/onboard/internal/fakehttp"
)

// sqsBatchSize is how many records one invocation carries: an SQS event
// source with a batching window delivers up to 10,000.
const sqsBatchSize = 100

// BenchmarkSQSStreamUnderRateLimit runs new people through the built
// Lambda bootstrap (a loopback Runtime API) as a stream of SQS batches of
// 100, against a fake Looker allowing 40 calls a second (429 with
// Retry-After beyond), with no LOOKERSDK_MAX_RPS cap. Records the function
// asks to have redelivered go into a later batch, as SQS would. It
// reports the rate achieved as a share of the rate allowed, the share of
// Looker calls refused with 429, and the function's peak RSS.
func BenchmarkSQSStreamUnderRateLimit(b *testing.B) {
	people := fakehttp.BenchPeople(b)
	fakes := awstest.Start(b)
	looker := awstest.Server[*lookertest.Server](b, fakes)
	throttle := fakehttp.NewThrottle(b, looker.URL, fakehttp.Allowed, fakehttp.AllowedBurst)
	env := maps.Clone(fakes.Env)
	env["LOOKERSDK_BASE_URL"] = throttle.URL
	env["LOOKERSDK_MAX_RPS"] = "0"
	env["ONBOARD_LOG_LEVEL"] = "error"
	fn := startBootstrap(b, env)
	for b.Loop() {
		var queue []string
		for i := range people {
			queue = append(queue, fmt.Sprintf("stream-%d@example.com", i))
		}
		for delivery := 0; len(queue) > 0; delivery++ {
			if delivery > 10*people/sqsBatchSize {
				b.Fatalf("%d people still queued after %d deliveries", len(queue), delivery)
			}
			n := min(sqsBatchSize, len(queue))
			batch := queue[:n]
			queue = queue[n:]
			var ev events.SQSEvent
			byID := map[string]string{}
			for i, email := range batch {
				id := fmt.Sprintf("d%d-m%d", delivery, i)
				byID[id] = email
				ev.Records = append(ev.Records, awstest.SQSRecord(id, `{"email":"`+email+`"}`))
			}
			payload, _ := json.Marshal(ev)
			var resp events.SQSEventResponse
			response(b, fn.invoke(b, payload), &resp)
			for _, f := range resp.BatchItemFailures {
				queue = append(queue, byID[f.ItemIdentifier])
			}
		}
	}
	if n := len(looker.Users()); n != people {
		b.Errorf("%d users made in Looker, want %d", n, people)
	}
	b.ReportMetric(throttle.Achieved(), "achieved/allowed")
	b.ReportMetric(throttle.RefusedShare()*100, "%refused")
	b.ReportMetric(peakRSSMiB(b, fn.pid), "peak-RSS-MiB")
}

// createStore makes the state store env names, as a deployment's exists
// before its first cold start (make deploy creates the table): a cold
// start opens the store, it never creates it.
func createStore(tb testing.TB, env map[string]string) {
	tb.Helper()
	s, err := app.OpenStore(tb.Context(), func(k string) string { return env[k] }, app.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	_ = s.Close()
}

// peakRSSMiB reads a running process's high-water resident memory (Linux).
func peakRSSMiB(tb testing.TB, pid int) float64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatalf("reading the function's memory: %v", err)
	}
	for line := range strings.Lines(string(status)) {
		if kib, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kib), "kB")), 64)
			if err != nil {
				tb.Fatal(err)
			}
			return n / 1024
		}
	}
	tb.Fatal("no VmHWM in /proc status")
	return 0
}

// BenchmarkColdStart starts the built bootstrap as Lambda would and times
// its first answer (a new user, through fakes answering at once) less a
// warm answer: the cost of starting. It reports that cost against the
// first answer of the smallest aws-lambda-go function, built the same
// way: the start-up onboard adds to a Lambda's.
func BenchmarkColdStart(b *testing.B) {
	onboard, hello := buildBootstrap(b), buildFunction(b, "./testdata/hellolambda")
	event := func(email string) []byte {
		payload, _ := json.Marshal(events.SQSEvent{Records: []events.SQSMessage{awstest.SQSRecord("m-"+email, `{"email":"`+email+`"}`)}})
		return payload
	}
	for b.Loop() {
		coldstart.Compare(b, func() time.Duration {
			fakes := awstest.Start(b)
			env := maps.Clone(fakes.Env)
			env["ONBOARD_LOG_LEVEL"] = "error"
			createStore(b, env)
			start := time.Now()
			fn := startBinary(b, onboard, env)
			var resp events.SQSEventResponse
			response(b, fn.invoke(b, event("cold@example.com")), &resp)
			cold := time.Since(start)
			warmStart := time.Now()
			response(b, fn.invoke(b, event("warm@example.com")), &resp)
			return cold - time.Since(warmStart)
		}, func() time.Duration {
			start := time.Now()
			h := startBinary(b, hello, map[string]string{})
			if res := h.invoke(b, []byte(`{}`)); res.kind != "response" {
				b.Fatalf("hello-world: %s %s", res.kind, res.body)
			}
			return time.Since(start)
		})
	}
}
