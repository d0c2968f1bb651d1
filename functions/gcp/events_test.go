package gcp_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestSampleWebhooksProvision sends testdata/events' webhook bodies to
// ProvisionHTTP with the headers docs/triggers.md tells people to configure.
func TestSampleWebhooksProvision(t *testing.T) {
	cases := []struct {
		file, contentType, email string
	}{
		{"testdata/events/zapier.json", "application/json", "katherine@example.com"},
		{"testdata/events/form.txt", "application/x-www-form-urlencoded", "lin.mei@example.com"},
	}
	f := newFixture(t, nil, nil)
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			rec := f.serveHTTP(t, tc.contentType, webhookSecret, string(readRepoFile(t, tc.file)))
			var body map[string]any
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != http.StatusOK || body["status"] != "created" {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			if n := len(f.users(tc.email)); n != 1 {
				t.Errorf("%d Looker users for %s", n, tc.email)
			}
		})
	}
}

// TestPushThroughTheFunctionsFramework sends what Pub/Sub and Eventarc send
// to the built function, so the framework's own conversion is exercised.
func TestPushThroughTheFunctionsFramework(t *testing.T) {
	tg := newTargets(t)
	fn := startFunction(t, tg, "ProvisionPubSub", nil)
	envelope := readRepoFile(t, "testdata/events/pubsub-push.json")

	t.Run("raw push envelope", func(t *testing.T) {
		for range 2 {
			resp := post(t, fn.url+"/projects/onboard-dev/topics/onboard-provision", "application/json", envelope, nil)
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("push answered %d: %s", resp.StatusCode, b)
			}
		}
		if n := len(tg.users("grace@example.com")); n != 1 {
			t.Errorf("%d users after two deliveries of one message, want 1", n)
		}
		received := map[string]string{"message": "Pub/Sub message received", "message_id": "13417208374891234"}
		// The function's output reaches the buffer through a pipe, a little later.
		waitFor(t, 10*time.Second, "both deliveries in the log", func() bool { return len(logLines(fn.logs, received)) >= 2 })
		done := logLines(fn.logs, map[string]string{"message": "request done", "idempotency_key": "13417208374891234"})
		if len(done) != 1 {
			t.Errorf("%d requests done under the message id as idempotency key, want 1 (the second delivery is a duplicate)", len(done))
		}
		if n := len(tg.sendgrid.Messages()); n != 1 {
			t.Errorf("%d welcome emails, want 1", n)
		}
	})

	t.Run("Eventarc CloudEvent", func(t *testing.T) {
		data, _ := json.Marshal(map[string]any{
			"subscription": "projects/onboard-dev/subscriptions/eventarc-trigger",
			"message": map[string]any{
				"data":        base64.StdEncoding.EncodeToString([]byte(`{"email":"dorothy@example.com","name":"Dorothy Vaughan"}`)),
				"messageId":   "555",
				"publishTime": "2026-11-22T10:00:00Z",
			},
		})
		h := http.Header{}
		h.Set("Ce-Id", "555")
		h.Set("Ce-Specversion", "1.0")
		h.Set("Ce-Type", "google.cloud.pubsub.topic.v1.messagePublished")
		h.Set("Ce-Source", "//pubsub.googleapis.com/projects/onboard-dev/topics/onboard-provision")
		if resp := post(t, fn.url+"/", "application/json", data, h); resp.StatusCode != http.StatusOK {
			t.Fatalf("CloudEvent answered %d", resp.StatusCode)
		}
		if n := len(tg.users("dorothy@example.com")); n != 1 {
			t.Errorf("%d users, want 1", n)
		}
	})
}
