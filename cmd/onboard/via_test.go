package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/internal/emulators"
)

func TestMain(m *testing.M) { os.Exit(emulators.Run(m)) }

// TestImportViaHTTP sends a file's rows to a running bundle (a sandbox
// `onboard serve` standing in for the deployed function).
func TestImportViaHTTP(t *testing.T) {
	w := newImportWorld(t, 0)
	port := freePort(t)
	_, banner := startServe(t, w.bin, t.TempDir(), port)
	secret := regexp.MustCompile(`Bearer ([a-z0-9-]+)`).FindStringSubmatch(banner)[1]
	file := w.csv(t, "people-3.csv")
	cmd := w.command("import", "--via", "http://localhost:"+port+"/", file)
	cmd.Env = append(cmd.Env, "ONBOARD_WEBHOOK_SECRET="+secret)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "created") || !strings.Contains(string(out), "3") {
		t.Fatalf("%v\n%s", err, out)
	}
	// Rows went to the other process: this process's fake Looker saw nothing.
	if n := len(w.looker.Requests()); n != 0 {
		t.Errorf("a --via import ran %d Looker calls locally", n)
	}
	cmd = w.command("import", "--via", "http://localhost:"+port+"/", file)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "ONBOARD_WEBHOOK_SECRET") {
		t.Errorf("without the webhook secret: %v\n%s", err, out)
	}
}

func TestImportViaPubSub(t *testing.T) {
	host := emulators.PubSub(t)
	t.Setenv("PUBSUB_EMULATOR_HOST", host)
	ctx := context.Background()
	client, err := pubsub.NewClient(ctx, "onboard-cli")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	topic := fmt.Sprintf("projects/onboard-cli/topics/import-%d", time.Now().UnixNano())
	if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	sub := strings.Replace(topic, "/topics/", "/subscriptions/", 1)
	if _, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{Name: sub, Topic: topic}); err != nil {
		t.Fatal(err)
	}
	w := newImportWorld(t, 0)
	file := w.csv(t, "people-3.csv")
	cmd := w.command("import", "--via", "pubsub:"+topic, file)
	cmd.Env = append(cmd.Env, "PUBSUB_EMULATOR_HOST="+host)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "queued") {
		t.Fatalf("%v\n%s", err, out)
	}
	pulled, err := client.SubscriptionAdminClient.Pull(ctx, &pubsubpb.PullRequest{Subscription: sub, MaxMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(pulled.ReceivedMessages) != 3 {
		t.Fatalf("%d messages on the topic, want 3", len(pulled.ReceivedMessages))
	}
	for _, m := range pulled.ReceivedMessages {
		assertQueuedRequest(t, m.Message.Data, m.Message.Attributes["idempotency_key"])
	}
}

func TestImportViaSQS(t *testing.T) {
	endpoint := emulators.Moto(t)
	cfg := emulators.AWSConfig(t, endpoint)
	client := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
	ctx := context.Background()
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprintf("import-%d", time.Now().UnixNano()))})
	if err != nil {
		t.Fatal(err)
	}
	w := newImportWorld(t, 0)
	file := w.csv(t, "people-3.csv")
	creds, _ := cfg.Credentials.Retrieve(ctx)
	cmd := w.command("import", "--via", "sqs:"+*q.QueueUrl, file)
	cmd.Env = append(cmd.Env, "AWS_ENDPOINT_URL="+endpoint, "AWS_REGION="+cfg.Region,
		"AWS_ACCESS_KEY_ID="+creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+creds.SecretAccessKey)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "queued") {
		t.Fatalf("%v\n%s", err, out)
	}
	got, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Messages) != 3 {
		t.Fatalf("%d messages on the queue, want 3", len(got.Messages))
	}
	for _, m := range got.Messages {
		assertQueuedRequest(t, []byte(*m.Body), *m.MessageAttributes["idempotency_key"].StringValue)
	}
}

// assertQueuedRequest checks a queued row is the request schema with a
// content-derived key, so a second import of the file is deduplicated.
func assertQueuedRequest(t *testing.T, body []byte, key string) {
	t.Helper()
	req, err := core.DecodeRequest(body)
	if err != nil {
		t.Fatalf("queued body %s: %v", body, err)
	}
	if !strings.HasPrefix(req.Email, "p00") || req.IdempotencyKey == "" || req.IdempotencyKey != key {
		t.Errorf("queued request %+v with attribute key %q", req, key)
	}
	var raw map[string]any
	_ = json.Unmarshal(body, &raw)
	if raw["attributes"].(map[string]any)["region"] != "EMEA" {
		t.Errorf("attributes lost: %s", body)
	}
}
