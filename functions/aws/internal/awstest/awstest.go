// Package awstest gives the Lambda tests (in-process and the real bootstrap
// binary) the same fakes of the policy's targets, settings and sample
// events, so the two cannot drift apart. The fakes are the sandbox's, from
// the target registry, so a new target is covered without naming it here.
package awstest

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/onboard-dev/onboard/core/sandbox"
	"github.com/onboard-dev/onboard/core/targets"
	"github.com/onboard-dev/onboard/internal/leakcheck"
	"github.com/onboard-dev/onboard/internal/logbuf"
)

// WebhookSecret is distinctive, so a leak into a log or an answer is obvious.
const WebhookSecret = "whsec-AWSTEST-5e0c1b"

// Fakes serve every target (and the mailer) a policy uses, with Env
// pointing onboard at them.
type Fakes struct {
	Env     map[string]string
	secrets map[string]string
	box     *sandbox.Sandbox
}

// Start runs the fakes until the test ends, for testdata/onboard.yaml.
func Start(tb testing.TB) *Fakes {
	tb.Helper()
	return StartFor(tb, "onboard.yaml")
}

// StartFor runs the fakes for testdata/config, seeded with what its
// profiles name.
func StartFor(tb testing.TB, config string) *Fakes {
	tb.Helper()
	cfgPath := Path(tb, "testdata", config)
	cfg, err := targets.LoadConfig(cfgPath)
	if err != nil {
		tb.Fatal(err)
	}
	everything := func(name string) string {
		if name == sandbox.ModeSetting {
			return "1"
		}
		return ""
	}
	box, err := sandbox.Start(cfg, tb.TempDir(), everything)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(box.Close)
	f := &Fakes{box: box, secrets: box.Secrets()}
	f.secrets["ONBOARD_WEBHOOK_SECRET"] = WebhookSecret
	f.Env = maps.Clone(box.Env)
	maps.Copy(f.Env, f.secrets)
	f.Env[targets.ConfigSetting] = cfgPath
	// Idempotency records must not outlive the test: a later run would be
	// answered from them without reaching the fakes.
	f.Env["ONBOARD_STORE"] = "file:" + tb.TempDir()
	return f
}

// Server is the running fake of type T (a *lookertest.Server...); the test
// fails if the policy uses no target faked by one.
func Server[T any](tb testing.TB, f *Fakes) T {
	tb.Helper()
	for _, fake := range f.box.Fakes {
		if s, ok := fake.Server.(T); ok {
			return s
		}
	}
	var none T
	tb.Fatalf("awstest: no fake of type %T", none)
	return none
}

// Leaked reports whether output holds one of the secret settings, in any
// encoding.
func (f *Fakes) Leaked(output string) bool {
	return leakcheck.Find(output, f.secrets) != nil
}

// Secrets are the secret settings the fakes accept, by name.
func (f *Fakes) Secrets() map[string]string { return maps.Clone(f.secrets) }

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
