package gcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/internal/emulators"
)

// pushRecorder sits between the emulator and the function and records, per
// message id, the status of every delivery: what Pub/Sub itself observes.
type pushRecorder struct {
	proxy *httputil.ReverseProxy

	mu       sync.Mutex
	statuses map[string][]int
}

// newPushRecorder returns the recorder and the URL to push to.
func newPushRecorder(t *testing.T, target string) (*pushRecorder, string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rec := &pushRecorder{proxy: httputil.NewSingleHostReverseProxy(u), statuses: map[string][]int{}}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return rec, srv.URL
}

func (p *pushRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var env struct {
		Message struct {
			ID string `json:"messageId"`
		} `json:"message"`
	}
	_ = json.Unmarshal(body, &env)
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	p.proxy.ServeHTTP(sw, r)
	p.mu.Lock()
	p.statuses[env.Message.ID] = append(p.statuses[env.Message.ID], sw.status)
	p.mu.Unlock()
}

func (p *pushRecorder) deliveries(id string) []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.statuses[id])
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// emulatorOptions connect a Google client to a local emulator.
func emulatorOptions(host string) []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(host),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// uniqueName lets a test run again (-count) against an emulator that lives
// as long as the test binary.
func uniqueName(prefix string) string {
	return prefix + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// TestPubSubEmulatorPushSubscription publishes to the gcloud Pub/Sub
// emulator, which pushes to the built function through a push subscription,
// as a direct Pub/Sub trigger does in production.
func TestPubSubEmulatorPushSubscription(t *testing.T) {
	host := emulators.PubSub(t)
	tg := newTargets(t)
	fn := startFunction(t, tg, "ProvisionPubSub", nil)
	rec, pushURL := newPushRecorder(t, fn.url)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const project = "onboard-test"
	client, err := pubsub.NewClient(ctx, project, emulatorOptions(host)...)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	topicID := uniqueName("provision-")
	topic := "projects/" + project + "/topics/" + topicID
	if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:  "projects/" + project + "/subscriptions/" + topicID + "-push",
		Topic: topic,
		// The path the functions framework reads the topic from.
		PushConfig:         &pubsubpb.PushConfig{PushEndpoint: pushURL + "/" + topic},
		AckDeadlineSeconds: 10,
		// Short backoff so redeliveries come within seconds.
		RetryPolicy: &pubsubpb.RetryPolicy{MinimumBackoff: durationpb.New(time.Second), MaximumBackoff: durationpb.New(2 * time.Second)},
	}); err != nil {
		t.Fatal(err)
	}
	publisher := client.Publisher(topicID)
	defer publisher.Stop()
	publish := func(t *testing.T, body string) string {
		t.Helper()
		id, err := publisher.Publish(ctx, &pubsub.Message{Data: []byte(body)}).Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	const within = 90 * time.Second
	created := func(email string) func() bool {
		return func() bool { return len(tg.users(email)) > 0 }
	}

	t.Run("valid request", func(t *testing.T) {
		id := publish(t, `{"email":"pushed@example.com","name":"Pushed Person"}`)
		waitFor(t, within, "the pushed user", created("pushed@example.com"))
		waitFor(t, within, "the delivery to be answered", func() bool { return len(rec.deliveries(id)) > 0 })
		if got := rec.deliveries(id); !slices.Equal(got, []int{200}) {
			t.Errorf("deliveries answered %v, want [200]", got)
		}
	})

	t.Run("retryable failure is redelivered", func(t *testing.T) {
		tg.looker.InjectFault(lookertest.Fault{Method: "POST", Path: "/users", Status: 503, Times: 1})
		id := publish(t, `{"email":"redelivered@example.com"}`)
		waitFor(t, within, "the redelivered user", created("redelivered@example.com"))
		waitFor(t, within, "the redelivery to be answered", func() bool { return len(rec.deliveries(id)) >= 2 })
		got := rec.deliveries(id)
		if got[0] != http.StatusInternalServerError || got[len(got)-1] != http.StatusOK {
			t.Errorf("deliveries answered %v, want a 500 and then a 200", got)
		}
		if n := len(tg.users("redelivered@example.com")); n != 1 {
			t.Errorf("%d users, want 1", n)
		}
	})

	t.Run("poison message is acknowledged", func(t *testing.T) {
		// A control message that fails once, published with the poison one,
		// shows when the emulator has redelivered what it was going to: had
		// the poison message been refused, it would be back by then too.
		tg.looker.InjectFault(lookertest.Fault{Method: "POST", Path: "/users", Status: 503, Times: 1})
		poison := publish(t, `{"email":"not an email"}`)
		control := publish(t, `{"email":"control@example.com"}`)
		waitFor(t, within, "the control message to be redelivered and succeed", func() bool {
			d := rec.deliveries(control)
			return len(d) >= 2 && d[len(d)-1] == http.StatusOK
		})
		time.Sleep(3 * time.Second) // more than the subscription's maximum backoff
		if got := rec.deliveries(poison); !slices.Equal(got, []int{200}) {
			t.Errorf("poison message deliveries answered %v, want exactly one 200", got)
		}
		dropped := map[string]string{"message": "message dropped: it cannot succeed as sent", "message_id": poison, "severity": "ERROR"}
		waitFor(t, 10*time.Second, "the ERROR line for the dropped message", func() bool { return len(logLines(fn.logs, dropped)) > 0 })
		if n := len(logLines(fn.logs, dropped)); n != 1 {
			t.Errorf("%d ERROR lines for the dropped message %s, want 1", n, poison)
		}
	})
}

// TestDefaultStoreIsFirestore runs the function as deployed, with no
// ONBOARD_STORE: its idempotency records must then be in Firestore, where
// every instance sees them, not in a per-instance file.
func TestDefaultStoreIsFirestore(t *testing.T) {
	host := emulators.Firestore(t)
	tg := newTargets(t)
	const project = "onboard-test"
	prefix := uniqueName("t") + "_"
	fn := startFunction(t, tg, "ProvisionPubSub", map[string]string{
		"ONBOARD_STORE":            "",
		"ONBOARD_GCP_PROJECT":      project,
		"FIRESTORE_EMULATOR_HOST":  host,
		"ONBOARD_FIRESTORE_PREFIX": prefix,
	})
	resp := post(t, fn.url+"/projects/onboard-dev/topics/onboard-provision", "application/json", readRepoFile(t, "testdata/events/pubsub-push.json"), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("push answered %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, err := firestore.NewClient(ctx, project, emulatorOptions(host)...)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	docs, err := client.Collection(prefix + "idempotency").Documents(ctx).GetAll()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, d := range docs {
		key, _ := d.Data()["key"].(string)
		keys = append(keys, key)
	}
	if !slices.ContainsFunc(keys, func(k string) bool { return strings.Contains(k, "13417208374891234") }) {
		t.Errorf("no idempotency record keyed by the message id in Firestore; keys %q", keys)
	}
}
