package lambdaapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/onboard-dev/onboard/functions/aws/internal/awstest"
	"github.com/onboard-dev/onboard/internal/testpolicy"
)

// FuzzLambdaEvent feeds the bootstrap's one handler any event: SQS
// batches, API Gateway v1 and v2 requests, tasks, and what mutations make
// of them. With every target up, nothing may panic or fail with an internal
// error: an SQS answer names only records of its own batch, an HTTP answer
// is a status onboard gives on purpose with a JSON body, and no secret
// reaches an answer or the log.
func FuzzLambdaEvent(f *testing.F) {
	for _, name := range []string{"sqs.json", "apigw-v1.json", "apigw-v2.json"} {
		f.Add(awstest.Event(f, name))
	}
	for _, seed := range []string{
		`{"Records":[{"messageId":"m1","eventSource":"aws:sqs","body":"{\"email\":\"ada@example.com\"}","attributes":{"MessageGroupId":"g"}},{"messageId":"m2","eventSource":"aws:sqs","body":"[1]","attributes":{"MessageGroupId":"g"}}]}`,
		`{"Records":[{"messageId":" ","eventSource":"aws:sqs","body":"{\"email\":\"a@example.com\",\"email\":\"b@example.com\"}"}]}`,
		`{"version":"2.0","rawPath":"/","requestContext":{"http":{"method":"POST"}},"headers":{"authorization":"Bearer ` + awstest.WebhookSecret + `"},"body":"eyJlbWFpbCI6ImFkYUBleGFtcGxlLmNvbSJ9","isBase64Encoded":true}`,
		`{"httpMethod":"GET","path":"/healthz"}`,
		`{"onboard_task":"aac-keep-alive"}`,
		`{"onboard_task":7}`,
		`[]`,
	} {
		f.Add([]byte(seed))
	}
	fakes := awstest.Start(f)
	h := harnessFor(f, fakes, map[string]string{"ONBOARD_CONFIG": testpolicy.WithoutBreaker(f, awstest.Path(f, "testdata", "onboard.yaml"))}, 4, nil)
	handler := lambda.NewHandler(h.fn.Handle)
	f.Fuzz(func(t *testing.T, event []byte) {
		h.logs.Reset()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		answer, err := handler.Invoke(ctx, event)
		if h.fakes.Leaked(string(answer)) || (err != nil && h.fakes.Leaked(err.Error())) || h.fakes.Leaked(h.logs.String()) {
			t.Fatalf("a secret reached the answer, error or log")
		}
		if err != nil {
			return // an event onboard does not serve fails the invocation, as it should
		}
		checkAnswer(t, event, answer)
	})
}

func checkAnswer(t *testing.T, event, answer []byte) {
	t.Helper()
	var sqs events.SQSEvent
	var failures events.SQSEventResponse
	if json.Unmarshal(event, &sqs) == nil && len(sqs.Records) > 0 && json.Unmarshal(answer, &failures) == nil && failures.BatchItemFailures != nil {
		ids := make([]string, len(sqs.Records))
		for i, r := range sqs.Records {
			ids[i] = r.MessageId
		}
		for _, f := range failures.BatchItemFailures {
			if !slices.Contains(ids, f.ItemIdentifier) {
				t.Fatalf("redelivery asked for %q, which is not in the batch %v", f.ItemIdentifier, ids)
			}
		}
		return
	}
	var resp struct {
		StatusCode      int    `json:"statusCode"`
		Body            string `json:"body"`
		IsBase64Encoded bool   `json:"isBase64Encoded"`
	}
	if json.Unmarshal(answer, &resp) != nil || resp.StatusCode == 0 {
		return // a task's answer
	}
	if resp.StatusCode == http.StatusInternalServerError {
		t.Fatalf("internal error with every target up: %s", resp.Body)
	}
	if resp.Body != "" && !resp.IsBase64Encoded && !json.Valid([]byte(resp.Body)) {
		t.Fatalf("status %d with a body that is not JSON: %q", resp.StatusCode, resp.Body)
	}
}
