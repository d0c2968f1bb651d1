package gcp_test

import (
	"context"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/functions/gcp"
	"github.com/onboard-dev/onboard/internal/leakcheck"
)

// message builds a messagePublished CloudEvent as Eventarc delivers it.
type message struct {
	id      string // the CloudEvent id (Eventarc uses the message id)
	body    string // the request, base64-encoded into message.data
	attrs   map[string]string
	idKey   string // the key the message id travels under; "" leaves it out
	rawData string // when set, replaces message.data verbatim
	data    any    // when set, replaces the whole event data
}

func (m message) event(t *testing.T) cloudevents.Event {
	t.Helper()
	e := cloudevents.NewEvent()
	e.SetID(m.id)
	e.SetType("google.cloud.pubsub.topic.v1.messagePublished")
	e.SetSource("//pubsub.googleapis.com/projects/onboard-test/topics/provision")
	data := m.data
	if data == nil {
		msg := map[string]any{"data": []byte(m.body), "publishTime": "2026-11-22T09:00:00Z"}
		if m.rawData != "" {
			msg["data"] = m.rawData
		}
		if m.attrs != nil {
			msg["attributes"] = m.attrs
		}
		if m.idKey != "" {
			msg[m.idKey] = m.id
		}
		data = map[string]any{"subscription": "projects/onboard-test/subscriptions/provision-push", "message": msg}
	}
	if err := e.SetData(cloudevents.ApplicationJSON, data); err != nil {
		t.Fatal(err)
	}
	return e
}

func (f *fixture) deliver(t *testing.T, m message) error {
	t.Helper()
	return f.fns.ProvisionPubSub(context.Background(), m.event(t))
}

// idempotencyKeys lists the keys the engine logged for finished requests.
func (f *fixture) idempotencyKeys() []string {
	var keys []string
	for _, l := range logLines(f.logs, map[string]string{"message": "request done", "trigger": "pubsub"}) {
		keys = append(keys, l["idempotency_key"].(string))
	}
	return keys
}

func TestPubSubMessageProvisions(t *testing.T) {
	f := newFixture(t, nil, nil)
	err := f.deliver(t, message{id: "1001", idKey: "messageId", body: `{"email":"Ada@Example.com","name":"Ada Lovelace","attributes":{"region":"EMEA"}}`})
	if err != nil {
		t.Fatalf("delivery: %v", err)
	}
	users := f.users("ada@example.com")
	if len(users) != 1 || users[0].FirstName != "Ada" || users[0].LastName != "Lovelace" {
		t.Fatalf("Looker users %+v", users)
	}
	if n := len(f.sendgrid.Messages()); n != 1 {
		t.Errorf("%d welcome emails, want 1", n)
	}
	if got := logLines(f.logs, map[string]string{"message": "Pub/Sub message received", "message_id": "1001", "publish_time": "2026-11-22T09:00:00Z", "subscription": "projects/onboard-test/subscriptions/provision-push"}); len(got) != 1 {
		t.Errorf("no debug line with the decoded envelope:\n%s", f.logs)
	}
}

func TestPubSubIdempotencyKey(t *testing.T) {
	cases := []struct {
		name string
		msg  message
		want string
	}{
		{"message id", message{id: "2001", idKey: "messageId"}, "2001"},
		{"legacy message_id spelling", message{id: "2002", idKey: "message_id"}, "2002"},
		{"event id when the data has none", message{id: "2003"}, "2003"},
		{"attribute", message{id: "2004", idKey: "messageId", attrs: map[string]string{"idempotency_key": "hr-4711"}}, "hr-4711"},
		{"body beats attribute", message{id: "2005", idKey: "messageId", attrs: map[string]string{"idempotency_key": "hr-4712"}, body: `{"email":"key@example.com","idempotency_key":"zap-1"}`}, "zap-1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil, nil)
			if tc.msg.body == "" {
				tc.msg.body = `{"email":"key@example.com"}`
			}
			if err := f.deliver(t, tc.msg); err != nil {
				t.Fatal(err)
			}
			if keys := f.idempotencyKeys(); len(keys) != 1 || keys[0] != tc.want {
				t.Errorf("idempotency keys %q, want [%s]\n%s", keys, tc.want, f.logs)
			}
		})
	}
}

func TestPubSubPoisonMessageIsAcknowledged(t *testing.T) {
	cases := []struct {
		name string
		msg  message
		log  string
	}{
		{"invalid email", message{id: "3001", idKey: "messageId", body: `{"email":"Ada <ada@example.com>"}`}, "message dropped: it cannot succeed as sent"},
		{"domain not allowed", message{id: "3002", idKey: "messageId", body: `{"email":"eve@evil-example.com"}`}, "message dropped: it cannot succeed as sent"},
		{"unknown field", message{id: "3003", idKey: "messageId", body: `{"email":"a@example.com","roles":["Admin"]}`}, "message dropped: it cannot succeed as sent"},
		{"data not base64", message{id: "3004", idKey: "messageId", rawData: "{not base64}"}, "Pub/Sub event dropped: it is not a readable Pub/Sub message"},
		{"no message", message{id: "3005", data: map[string]any{"subscription": "s"}}, "Pub/Sub event dropped: it is not a readable Pub/Sub message"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil, nil)
			if err := f.deliver(t, tc.msg); err != nil {
				t.Fatalf("a message that cannot succeed must be acknowledged, got %v", err)
			}
			if got := logLines(f.logs, map[string]string{"message": tc.log, "severity": "ERROR"}); len(got) != 1 {
				t.Errorf("want one ERROR line %q:\n%s", tc.log, f.logs)
			}
			if n := f.looker.Count("POST", "/users"); n != 0 {
				t.Errorf("%d users created from a poison message", n)
			}
			if tc.msg.rawData != "" && strings.Contains(f.logs.String(), tc.msg.rawData) {
				t.Errorf("the log quotes the message payload:\n%s", f.logs)
			}
		})
	}
}

func TestPubSubRetryableFailureAsksForRedelivery(t *testing.T) {
	f := newFixture(t, nil, nil)
	// A create is not retried inside the client (Looker may have acted), so
	// the 503 reaches the engine and the message must come back.
	f.looker.InjectFault(lookertest.Fault{Method: "POST", Path: "/users", Status: 503, Times: 1})
	m := message{id: "4001", idKey: "messageId", body: `{"email":"retry@example.com"}`}
	err := f.deliver(t, m)
	if err == nil || !strings.Contains(err.Error(), "4001") {
		t.Fatalf("want an error naming the message, got %v", err)
	}
	if len(f.users("retry@example.com")) != 0 {
		t.Fatal("a failed create left a user behind")
	}
	if err := f.deliver(t, m); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if n := len(f.users("retry@example.com")); n != 1 {
		t.Errorf("%d users after the redelivery, want 1", n)
	}
}

func TestPubSubWaitsForAFixWhenTheInstanceCannotStart(t *testing.T) {
	logs := &logBuffer{}
	instance := startInstance(map[string]string{"ONBOARD_CONFIG": t.TempDir() + "/missing.yaml"}, nil, logs)
	err := gcp.New(instance).ProvisionPubSub(context.Background(), message{id: "5001", idKey: "messageId", body: `{"email":"a@example.com"}`}.event(t))
	if err == nil {
		t.Fatal("a message that arrives while the configuration is broken must be redelivered, not dropped")
	}
	if got := logLines(logs, map[string]string{"message": "onboard failed to start", "severity": "ERROR"}); len(got) != 1 {
		t.Errorf("the start-up failure is not logged:\n%s", logs)
	}
}

// A nack's error text goes into the framework's answer and log, so it passes
// through the redactor: here the message id it names happens to be a
// secret the instance holds.
func TestPubSubNackErrorIsRedacted(t *testing.T) {
	f := newFixture(t, nil, nil)
	f.looker.InjectFault(lookertest.Fault{Method: "POST", Path: "/users", Status: 503, Times: 1})
	err := f.deliver(t, message{id: webhookSecret, idKey: "messageId", body: `{"email":"nack@example.com"}`})
	if err == nil || !strings.Contains(err.Error(), "redelivered") {
		t.Fatalf("got %v, want a nack", err)
	}
	if found := leakcheck.Find(err.Error(), map[string]string{"webhook secret": webhookSecret}); found != nil {
		t.Errorf("the nack error holds %v: %s", found, err)
	}
}
