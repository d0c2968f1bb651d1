// Package awstest gives the Lambda tests (in-process and the real bootstrap
// binary) the same fake Looker and SendGrid, settings and sample events, so
// the two cannot drift apart.
package awstest

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onboard-dev/onboard/core/looker"

	"github.com/aws/aws-lambda-go/events"

	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/core/sendgrid/sendgridtest"
	"github.com/onboard-dev/onboard/core/targets"
	"github.com/onboard-dev/onboard/internal/leakcheck"
	"github.com/onboard-dev/onboard/internal/logbuf"
)

// Distinctive secret values, so a leak into a log or an answer is obvious.
const (
	WebhookSecret = "whsec-AWSTEST-5e0c1b"
	LookerSecret  = "looker-AWSTEST-a81f3d"
	SendGridKey   = "SG.AWSTEST-90d2c4e7"
)

// Fakes are a fake Looker seeded for testdata/onboard.yaml and a fake
// SendGrid, with Env pointing onboard at them.
type Fakes struct {
	Looker   *lookertest.Server
	SendGrid *sendgridtest.Server
	Env      map[string]string
}

// Start runs the fakes until the test ends, for testdata/onboard.yaml.
func Start(tb testing.TB) *Fakes {
	tb.Helper()
	return StartFor(tb, "onboard.yaml")
}

// StartFor runs the fakes for testdata/config: Looker holds the roles,
// groups and attributes its profiles name.
func StartFor(tb testing.TB, config string) *Fakes {
	tb.Helper()
	cfgPath := Path(tb, "testdata", config)
	cfg, err := targets.LoadConfig(cfgPath)
	if err != nil {
		tb.Fatal(err)
	}
	f := &Fakes{
		Looker:   lookertest.NewTestServer(tb, lookertest.Options{ClientSecret: LookerSecret}),
		SendGrid: sendgridtest.NewTestServer(tb, sendgridtest.Options{APIKey: SendGridKey}),
	}
	looker.SeedFake(f.Looker, cfg)
	f.Env = Secrets()
	f.Env["ONBOARD_CONFIG"] = cfgPath
	f.Env["LOOKERSDK_BASE_URL"] = f.Looker.URL
	f.Env["SENDGRID_BASE_URL"] = f.SendGrid.URL
	// Idempotency records must not outlive the test: a later run would be
	// answered from them without reaching the fakes.
	f.Env["ONBOARD_STORE"] = "file:" + tb.TempDir()
	return f
}

// Leaked reports whether output holds one of the distinctive secret values,
// in any encoding.
func Leaked(output string) bool {
	return leakcheck.Find(output, map[string]string{"webhook secret": WebhookSecret, "Looker secret": LookerSecret, "SendGrid key": SendGridKey}) != nil
}

// Secrets are the secret settings the fakes accept.
func Secrets() map[string]string {
	return map[string]string{
		"LOOKERSDK_CLIENT_ID":     lookertest.DefaultClientID,
		"LOOKERSDK_CLIENT_SECRET": LookerSecret,
		"SENDGRID_API_KEY":        SendGridKey,
		"ONBOARD_WEBHOOK_SECRET":  WebhookSecret,
	}
}

// FailLookup makes Looker answer 503 to the email lookup of one address
// only, for times requests (0: all), with a Retry-After longer than the
// client will sleep, so the failure reaches the engine at once as retryable.
func (f *Fakes) FailLookup(email string, times int) {
	f.Looker.InjectFault(lookertest.Fault{
		Method: "GET", Path: "/users/credential/email/" + email,
		Status: http.StatusServiceUnavailable, RetryAfter: "120", Times: times,
	})
}

// Path returns the absolute path of a file given relative to the module root.
func Path(tb testing.TB, elem ...string) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(append([]string{dir}, elem...)...)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("awstest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// SecretPlaceholder stands for the webhook secret in the sample events.
const SecretPlaceholder = "REPLACE_WITH_ONBOARD_WEBHOOK_SECRET"

// Event returns a sample event from testdata/events, carrying WebhookSecret
// where the sample has SecretPlaceholder.
func Event(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(Path(tb, "testdata", "events", name))
	if err != nil {
		tb.Fatal(err)
	}
	return []byte(strings.ReplaceAll(string(b), SecretPlaceholder, WebhookSecret))
}

// SQSRecord is a standard queue's record as Lambda delivers it.
func SQSRecord(id, body string) events.SQSMessage {
	return events.SQSMessage{
		MessageId:         id,
		ReceiptHandle:     "rh-" + id,
		Body:              body,
		Attributes:        map[string]string{"ApproximateReceiveCount": "1"},
		MessageAttributes: map[string]events.SQSMessageAttribute{},
		EventSource:       "aws:sqs",
		EventSourceARN:    "arn:aws:sqs:us-east-1:123456789012:onboard-requests",
		AWSRegion:         "us-east-1",
	}
}

// StringAttribute is an SQS message attribute of type String.
func StringAttribute(v string) events.SQSMessageAttribute {
	return events.SQSMessageAttribute{DataType: "String", StringValue: &v}
}

// Buffer collects logs written from several goroutines or a child process.
type Buffer = logbuf.Buffer
