package gcp_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/functions/gcp"
	"github.com/onboard-dev/onboard/internal/leakcheck"
	"github.com/onboard-dev/onboard/internal/testpolicy"
)

// FuzzPubSubEvent delivers messagePublished CloudEvents (the data a push
// envelope also becomes) to ProvisionPubSub against healthy fakes. Every
// event is acknowledged: with nothing down, no message may ask to be
// redelivered, however malformed. An envelope that cannot be read is
// refused without quoting it (it holds personal data); one that can keeps a
// message id whenever the event has one; a request the engine accepts is
// already normalised, and never leaves two Looker users for one email.
// No secret reaches the log.
//
// The request travels base64-encoded, where mutations rarely keep it JSON,
// so it is fuzzed on its own too: bodyMark in the event stands for it.
func FuzzPubSubEvent(f *testing.F) {
	envelope := func(msg map[string]any) []byte {
		b, err := json.Marshal(map[string]any{"subscription": "projects/onboard-test/subscriptions/provision-push", "message": msg})
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	push := readRepoFile(f, "testdata/events/pubsub-push.json")
	f.Add(push, []byte{}, "13417208374891234")
	var sample struct{ Message struct{ Data []byte } }
	if err := json.Unmarshal(push, &sample); err != nil {
		f.Fatal(err)
	}
	pushWithBody := strings.Replace(string(push), base64.StdEncoding.EncodeToString(sample.Message.Data), bodyMark, 1)
	f.Add([]byte(pushWithBody), sample.Message.Data, "13417208374891234")
	f.Add(envelope(map[string]any{"data": bodyMark, "messageId": "555", "publishTime": "2026-11-22T10:00:00Z"}), []byte(`{"email":"Dorothy@Example.com","name":" Dorothy  Vaughan ","attributes":{"region":"AMER"}}`), "555")
	f.Add(envelope(map[string]any{"data": bodyMark, "message_id": "556"}), []byte(`{"action":"deprovision","email":"dorothy@example.com"}`), "")
	f.Add(envelope(map[string]any{"data": bodyMark, "attributes": map[string]string{"idempotency_key": " hr-4711 "}}), []byte(`{"email":"key@example.com"}`), "557")
	f.Add(envelope(map[string]any{"data": bodyMark}), []byte(`{"email":"cust@example.com","profile":"customer","external_user_id":"c-1","attributes":{"region":"ABCD"}}`), "558")
	f.Add(envelope(map[string]any{"data": bodyMark}), []byte(`[{"email":"bulk@example.com"}]`), "559")
	f.Add(envelope(map[string]any{"attributes": map[string]string{"onboard_task": "aac-keep-alive"}}), []byte{}, "560")
	f.Add(envelope(map[string]any{"data": "{not base64}"}), []byte{}, "561")
	f.Add([]byte(`{"subscription":"s"}`), []byte{}, "562")
	f.Add([]byte(`{"message":null}`), []byte{}, "")
	f.Add([]byte{}, []byte{}, "563")

	fx := newFixture(f, map[string]string{"ONBOARD_CONFIG": testpolicy.WithoutBreaker(f, repoPath(f, "testdata/onboard.yaml"))}, nil)
	secrets := map[string]string{"webhook secret": webhookSecret, "Looker secret": lookerSecret, "SendGrid key": sendgridKey}
	f.Fuzz(func(t *testing.T, payload, body []byte, eventID string) {
		fx.logs.Reset()
		payload = bytes.ReplaceAll(payload, []byte(bodyMark), []byte(base64.StdEncoding.EncodeToString(body)))
		e := cloudevents.NewEvent()
		e.SetID(eventID)
		e.SetType("google.cloud.pubsub.topic.v1.messagePublished")
		e.SetSource("//pubsub.googleapis.com/projects/onboard-test/topics/provision")
		if err := e.SetData(cloudevents.ApplicationJSON, payload); err != nil {
			t.Fatal(err)
		}
		data, attrs, id, derr := gcp.DecodeMessagePublished(e)

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := fx.fns.ProvisionPubSub(ctx, e); err != nil {
			t.Fatalf("asked for redelivery while every target is up: %v", err)
		}
		if found := leakcheck.Find(fx.logs.String(), secrets); found != nil {
			t.Fatalf("the log holds %v:\n%s", found, fx.logs)
		}
		if derr != nil {
			if quoted := quotedRun(derr.Error(), payload); quoted != "" {
				t.Fatalf("the reason %q quotes the event: %q", derr, quoted)
			}
			return
		}
		if id == "" && core.CleanMessageID(e.ID()) != "" {
			t.Fatalf("message decoded without an id, although the event has %q", e.ID())
		}
		if id != core.CleanMessageID(id) {
			t.Fatalf("message id %q is not fit to key a request", id)
		}
		if _, task := attrs["onboard_task"]; task {
			return
		}
		req, rerr := core.DecodeRequest(data)
		if rerr != nil {
			return
		}
		if again, err := req.Normalize(); err != nil || !reflect.DeepEqual(again, req) {
			t.Fatalf("accepted request %+v normalises again to %+v, %v", req, again, err)
		}
		if n := len(fx.users(req.Email)); n > 1 {
			t.Fatalf("%d Looker users for %s", n, req.Email)
		}
	})
}

// bodyMark in a fuzzed event is replaced by the fuzzed request, encoded.
const bodyMark = "@BODY@"

// quotedRun returns a run of input that text repeats, long enough to be
// more than a coincidence ("" when there is none).
func quotedRun(text string, input []byte) string {
	const run = 24
	for i := 0; i+run <= len(input); i++ {
		if s := string(input[i : i+run]); strings.Contains(text, s) {
			return s
		}
	}
	return ""
}
