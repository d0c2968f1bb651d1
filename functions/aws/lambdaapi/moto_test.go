package lambdaapi_test

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/functions/aws/internal/awstest"
	"github.com/onboard-dev/onboard/internal/emulators"
)

// useMotoThroughSDKEnv points AWSConfig at moto the way a deployment
// would point it anywhere: through the SDK's own variables (endpointVar is
// AWS_ENDPOINT_URL or a service-specific one), with fake credentials in
// place of the developer's.
func useMotoThroughSDKEnv(t *testing.T, endpointVar, endpoint string) {
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":                "onboard-test-key-id",
		"AWS_SECRET_ACCESS_KEY":            "onboard-test-secret",
		"AWS_SESSION_TOKEN":                "",
		"AWS_REGION":                       "us-east-1",
		"AWS_ENDPOINT_URL":                 "",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": "",
	} {
		t.Setenv(k, v)
	}
	t.Setenv(endpointVar, endpoint)
}

// uniqueName names a moto resource: moto lives as long as the test binary,
// which may run a test more than once (-count).
func uniqueName(t *testing.T) string {
	name := regexp.MustCompile(`[^A-Za-z0-9_-]`).ReplaceAllString(t.Name(), "-")
	return name + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// withoutSecrets selects ONBOARD_SECRETS=aws and removes the secret values
// from the environment, so a working provision proves each was read from
// Secrets Manager.
func withoutSecrets(env map[string]string) map[string]string {
	env["ONBOARD_SECRETS"] = "aws"
	for _, name := range app.SecretNames() {
		env[name] = ""
	}
	return env
}

func TestSecretsManagerThroughMoto(t *testing.T) {
	endpoint := emulators.Moto(t)
	client := secretsmanager.NewFromConfig(emulators.AWSConfig(t, endpoint))
	create := func(t *testing.T, name, value string) {
		t.Helper()
		if _, err := client.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
			Name: aws.String(name), SecretString: aws.String(value),
		}); err != nil {
			t.Fatal(err)
		}
	}

	modes := []struct {
		name        string
		endpointVar string
		store       func(t *testing.T, secrets map[string]string) map[string]string // creates the secrets, returns the settings naming them
	}{
		{"one JSON secret", "AWS_ENDPOINT_URL", func(t *testing.T, secrets map[string]string) map[string]string {
			doc, _ := json.Marshal(secrets)
			id := "onboard/" + uniqueName(t)
			create(t, id, string(doc))
			return map[string]string{"ONBOARD_AWS_SECRET_ID": id}
		}},
		{"one secret per name", "AWS_ENDPOINT_URL_SECRETS_MANAGER", func(t *testing.T, secrets map[string]string) map[string]string {
			prefix := "onboard/" + uniqueName(t) + "/"
			for name, v := range secrets {
				create(t, prefix+name, v)
			}
			return map[string]string{"ONBOARD_AWS_SECRET_PREFIX": prefix}
		}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			useMotoThroughSDKEnv(t, m.endpointVar, endpoint)
			fakes := awstest.Start(t)
			h := harnessFor(t, fakes, withoutSecrets(m.store(t, fakes.Secrets())), 0, nil)
			out, err := h.invoke(t, awstest.Event(t, "apigw-v2.json"))
			if err != nil {
				t.Fatal(err)
			}
			a := payloadVersions[0].decode(t, out)
			_ = json.Unmarshal([]byte(a.raw), &a.body)
			// 200 needs the webhook secret, "created" the Looker
			// credentials, "sent" the SendGrid key.
			if a.status != 200 || a.body["status"] != "created" || a.body["email"] != "sent" {
				t.Fatalf("answer %d %s", a.status, a.raw)
			}
			if h.fakes.Leaked(h.logs.String()) {
				t.Error("a secret value reached the log")
			}
		})
	}

	t.Run("missing JSON secret", func(t *testing.T) {
		useMotoThroughSDKEnv(t, "AWS_ENDPOINT_URL", endpoint)
		id := "onboard/" + uniqueName(t)
		h := newHarness(t, withoutSecrets(map[string]string{"ONBOARD_AWS_SECRET_ID": id}), 0)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := h.inst.App(ctx); err == nil || !strings.Contains(err.Error(), id) {
			t.Fatalf("start-up error %v, want one naming %s", err, id)
		}
	})
}

// Real ReceiveMessage answers go through the function, and the function's
// answer is applied as Lambda applies it: the records not reported are
// deleted, the reported one comes back after its visibility timeout.
func TestSQSThroughMoto(t *testing.T) {
	const visibility = 2 // seconds
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	q := sqs.NewFromConfig(emulators.AWSConfig(t, emulators.Moto(t)))
	created, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  aws.String(uniqueName(t)),
		Attributes: map[string]string{"VisibilityTimeout": "2"},
	})
	if err != nil {
		t.Fatal(err)
	}
	queue := created.QueueUrl
	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: queue, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	arn := attrs.Attributes[string(types.QueueAttributeNameQueueArn)]

	h := newHarness(t, nil, 0)
	h.looker.FailEmailLookup("bob@example.com", 1) // down for bob's first delivery only

	send := func(body string, attrs map[string]types.MessageAttributeValue) string {
		out, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: queue, MessageBody: aws.String(body), MessageAttributes: attrs})
		if err != nil {
			t.Fatal(err)
		}
		return *out.MessageId
	}
	ada := send(`{"email":"ada@example.com","name":"Ada Lovelace"}`, map[string]types.MessageAttributeValue{
		"idempotency_key": {DataType: aws.String("String"), StringValue: aws.String("crm-ada-7")},
	})
	bob := send(`{"email":"bob@example.com","name":"Bob Bobson"}`, nil)
	poison := send(`{"email":"not an address"}`, nil)

	// receive polls until want distinct messages arrived or the attempts run out.
	receive := func(want int) []types.Message {
		var got []types.Message
		for range 10 {
			out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
				QueueUrl: queue, MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
				MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
				MessageAttributeNames:       []string{"All"},
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range out.Messages {
				if !slices.ContainsFunc(got, func(g types.Message) bool { return *g.MessageId == *m.MessageId }) {
					got = append(got, m)
				}
			}
			if len(got) >= want {
				break
			}
		}
		return got
	}
	// deliver hands messages to the function as Lambda's poller would, then
	// deletes those the answer does not report.
	deliver := func(msgs []types.Message) []string {
		ev := events.SQSEvent{}
		for _, m := range msgs {
			rec := events.SQSMessage{
				MessageId: *m.MessageId, ReceiptHandle: *m.ReceiptHandle, Body: *m.Body, Md5OfBody: aws.ToString(m.MD5OfBody),
				Attributes: m.Attributes, MessageAttributes: map[string]events.SQSMessageAttribute{},
				EventSource: "aws:sqs", EventSourceARN: arn, AWSRegion: "us-east-1",
			}
			for k, v := range m.MessageAttributes {
				rec.MessageAttributes[k] = events.SQSMessageAttribute{DataType: *v.DataType, StringValue: v.StringValue}
			}
			ev.Records = append(ev.Records, rec)
		}
		failed := h.sqs(t, ev.Records...)
		for _, m := range msgs {
			if !slices.Contains(failed, *m.MessageId) {
				if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: queue, ReceiptHandle: m.ReceiptHandle}); err != nil {
					t.Fatal(err)
				}
			}
		}
		return failed
	}

	first := receive(3)
	if len(first) != 3 {
		t.Fatalf("received %d of 3 messages", len(first))
	}
	if failed := deliver(first); !slices.Equal(failed, []string{bob}) {
		t.Fatalf("batchItemFailures %v, want only bob's %s (ada %s, poison %s)", failed, bob, ada, poison)
	}
	if len(h.logLines(t, "idempotency_key", "crm-ada-7")) == 0 {
		t.Error("the idempotency_key message attribute was not used")
	}

	time.Sleep(visibility * time.Second)
	again := receive(1)
	if len(again) != 1 || *again[0].MessageId != bob || again[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("after the visibility timeout the queue held %d messages, want bob's alone on its second receive: %+v", len(again), again)
	}
	if failed := deliver(again); len(failed) != 0 {
		t.Fatalf("bob's redelivery failed again: %v", failed)
	}
	if _, ok := h.looker.UserByEmail("bob@example.com"); !ok {
		t.Fatal("bob was not provisioned on redelivery")
	}
	out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: queue, WaitTimeSeconds: 1, VisibilityTimeout: visibility})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 0 {
		t.Fatalf("the queue still holds %d messages", len(out.Messages))
	}
}
