package lambdaapi_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onboard-dev/onboard/core/httpapi"
	"github.com/onboard-dev/onboard/core/looker/lookertest"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/functions/aws/internal/awstest"
	"github.com/onboard-dev/onboard/functions/aws/lambdaapi"
	"github.com/onboard-dev/onboard/internal/emulators"
)

func TestMain(m *testing.M) { os.Exit(emulators.Run(m)) }

type harness struct {
	fn     *lambdaapi.Function
	fakes  *awstest.Fakes
	looker *lookertest.Server
	logs   *awstest.Buffer
	inst   *app.Instance
}

// newHarness builds the function against new fakes; env overrides their
// settings, an empty value removing one.
func newHarness(t *testing.T, env map[string]string, concurrency int) *harness {
	t.Helper()
	return harnessFor(t, awstest.Start(t), env, concurrency, nil)
}

// harnessFor builds the function against fakes; stores registers
// ONBOARD_STORE schemes besides "file", as the entry point does.
func harnessFor(t testing.TB, fakes *awstest.Fakes, env map[string]string, concurrency int, stores map[string]state.Backend) *harness {
	t.Helper()
	h := &harness{fakes: fakes, looker: awstest.Server[*lookertest.Server](t, fakes), logs: &awstest.Buffer{}}
	vars := maps.Clone(fakes.Env)
	for k, v := range env {
		vars[k] = v
	}
	redactor := &logging.Redactor{}
	log := logging.New(h.logs, slog.LevelDebug, redactor)
	h.inst = app.Start(app.Options{
		Getenv:         func(k string) string { return vars[k] },
		Log:            log,
		Redactor:       redactor,
		SecretBackends: map[string]app.SecretBackend{"aws": lambdaapi.SecretsManager},
		StoreBackends:  stores,
	})
	h.fn = lambdaapi.New(h.inst, log, concurrency)
	t.Cleanup(func() {
		// The instance builds in the background; a test that ends before it
		// is ready must still wait for it, or it writes into a temp dir
		// being removed.
		if a, err := h.inst.App(context.Background()); err == nil {
			_ = a.Close()
		}
		if t.Failed() {
			t.Logf("logs:\n%s", h.logs)
		}
	})
	return h
}

// invoke runs an event through aws-lambda-go's own (un)marshalling, as the
// runtime does.
func (h *harness) invoke(t *testing.T, event any) ([]byte, error) {
	t.Helper()
	payload, ok := event.([]byte)
	if !ok {
		var err error
		if payload, err = json.Marshal(event); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return lambda.NewHandler(h.fn.Handle).Invoke(ctx, payload)
}

func (h *harness) sqs(t *testing.T, records ...events.SQSMessage) []string {
	t.Helper()
	out, err := h.invoke(t, events.SQSEvent{Records: records})
	if err != nil {
		t.Fatalf("SQS batch failed as a whole: %v", err)
	}
	return failedIDs(t, out)
}

func failedIDs(t *testing.T, out []byte) []string {
	t.Helper()
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	ids := []string{}
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

// logLines returns the JSON log records whose key equals value.
func (h *harness) logLines(t *testing.T, key, value string) []map[string]any {
	t.Helper()
	var found []map[string]any
	sc := bufio.NewScanner(strings.NewReader(h.logs.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec[key] == value {
			found = append(found, rec)
		}
	}
	return found
}

// httpCase is one request, sent as an event of each payload version.
type httpCase struct {
	name          string
	method, path  string
	stage         string // empty: the version's usual stage
	route         string // a greedy route such as /onboard/{proxy+}; empty: the default route
	params        map[string]string
	headers       map[string]string
	body          string
	base64Encoded bool

	status int
	check  func(t *testing.T, h *harness, a answer)
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// payloadVersion builds a case's event from a sample and reads the answer.
type payloadVersion struct {
	name   string
	build  func(t *testing.T, c httpCase) []byte
	decode func(t *testing.T, out []byte) answer
}

var payloadVersions = []payloadVersion{
	{
		name: "HTTP API payload 2.0",
		build: func(t *testing.T, c httpCase) []byte {
			var ev events.APIGatewayV2HTTPRequest
			mustUnmarshal(t, awstest.Event(t, "apigw-v2.json"), &ev)
			ev.RouteKey = "$default"
			if c.route != "" {
				ev.RouteKey = "ANY " + c.route
			}
			ev.RequestContext.RouteKey = ev.RouteKey
			ev.RequestContext.Stage = cmpOr(c.stage, "$default")
			ev.RawPath, ev.RequestContext.HTTP.Path = c.path, c.path
			ev.RequestContext.HTTP.Method = c.method
			ev.PathParameters = c.params
			ev.Headers = map[string]string{}
			for k, v := range c.headers {
				ev.Headers[strings.ToLower(k)] = v // HTTP APIs lower-case header names
			}
			ev.Body, ev.IsBase64Encoded = c.body, c.base64Encoded
			return mustMarshal(t, ev)
		},
		decode: func(t *testing.T, out []byte) answer {
			var resp events.APIGatewayV2HTTPResponse
			mustUnmarshal(t, out, &resp)
			a := answer{status: resp.StatusCode, header: http.Header{}, raw: resp.Body}
			for k, v := range resp.Headers {
				a.header.Set(k, v)
			}
			return a
		},
	},
	{
		name: "REST API payload 1.0",
		build: func(t *testing.T, c httpCase) []byte {
			var ev events.APIGatewayProxyRequest
			mustUnmarshal(t, awstest.Event(t, "apigw-v1.json"), &ev)
			ev.Resource = cmpOr(c.route, "/")
			ev.RequestContext.ResourcePath = ev.Resource
			ev.RequestContext.Stage = cmpOr(c.stage, "prod")
			ev.Path = c.path
			ev.HTTPMethod, ev.RequestContext.HTTPMethod = c.method, c.method
			ev.PathParameters = c.params
			ev.Headers, ev.MultiValueHeaders = map[string]string{}, map[string][]string{}
			for k, v := range c.headers {
				ev.Headers[k], ev.MultiValueHeaders[k] = v, []string{v}
			}
			ev.Body, ev.IsBase64Encoded = c.body, c.base64Encoded
			return mustMarshal(t, ev)
		},
		decode: func(t *testing.T, out []byte) answer {
			var resp events.APIGatewayProxyResponse
			mustUnmarshal(t, out, &resp)
			a := answer{status: resp.StatusCode, header: http.Header(resp.MultiValueHeaders), raw: resp.Body}
			if a.header == nil {
				a.header = http.Header{}
			}
			for k, v := range resp.Headers {
				a.header.Set(k, v)
			}
			return a
		},
	},
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
}

func bearer() map[string]string {
	return map[string]string{"Authorization": "Bearer " + awstest.WebhookSecret, "Content-Type": "application/json"}
}

// created checks a 200 "created" answer and that Looker holds the person
// under the names the body carried, which proves the body arrived intact.
func created(email, first, last string) func(*testing.T, *harness, answer) {
	return func(t *testing.T, h *harness, a answer) {
		t.Helper()
		if a.body["status"] != "created" || a.header.Get("X-Request-Id") == "" {
			t.Fatalf("answer %d %v %s", a.status, a.header, a.raw)
		}
		u, ok := h.looker.UserByEmail(email)
		if !ok || u.FirstName != first || u.LastName != last {
			t.Fatalf("Looker user for %s: %+v (found %v)", email, u, ok)
		}
	}
}

func healthy(t *testing.T, _ *harness, a answer) {
	t.Helper()
	if a.body["status"] != "ok" {
		t.Fatalf("healthz answered %s", a.raw)
	}
}

func TestHTTPEvents(t *testing.T) {
	adaBody := `{"email":"ada@example.com","name":"Ada Lovelace","attributes":{"region":"EMEA"}}`
	form := url.Values{"email": {"grace@example.com"}, "name": {"Grace Hopper"}, "attributes[region]": {"AMER"}}.Encode()
	// What a sender rotating secrets sends: a stale signature beside the good
	// one, comma-separated in one header.
	signed := func() map[string]string {
		now := time.Now()
		good := httpapi.Sign(awstest.WebhookSecret, now, []byte(adaBody))
		stale := httpapi.Sign("whsec-previous", now, []byte(adaBody))
		_, staleV1, _ := strings.Cut(stale, ",")
		return map[string]string{"Onboard-Signature": good + "," + staleV1, "Content-Type": "application/json"}
	}

	cases := []httpCase{
		{name: "bearer token", method: "POST", path: "/", headers: bearer(), body: adaBody,
			status: 200, check: created("ada@example.com", "Ada", "Lovelace")},
		{name: "no credential", method: "POST", path: "/", headers: map[string]string{"Content-Type": "application/json"}, body: adaBody,
			status: 401, check: func(t *testing.T, h *harness, a answer) {
				if a.body["error"] != "unauthorized" || len(h.looker.Users()) != 0 {
					t.Fatalf("answer %s, Looker users %v", a.raw, h.looker.Users())
				}
			}},
		{name: "signature with several v1 values", method: "POST", path: "/", headers: signed(), body: adaBody,
			status: 200, check: created("ada@example.com", "Ada", "Lovelace")},
		{name: "base64 form body", method: "POST", path: "/",
			headers:       map[string]string{"Authorization": "Bearer " + awstest.WebhookSecret, "Content-Type": "application/x-www-form-urlencoded"},
			body:          base64.StdEncoding.EncodeToString([]byte(form)),
			base64Encoded: true, status: 200, check: created("grace@example.com", "Grace", "Hopper")},
		{name: "body flagged base64 but not", method: "POST", path: "/", headers: bearer(), body: "{not base64}", base64Encoded: true,
			status: 400, check: func(t *testing.T, h *harness, a answer) {
				if a.body["error"] == nil || len(h.looker.Users()) != 0 {
					t.Fatalf("answer %s", a.raw)
				}
			}},
		{name: "healthz behind a named stage", method: "GET", path: "/prod/healthz", stage: "prod", status: 200, check: healthy},
		{name: "root behind a named stage", method: "POST", path: "/prod", stage: "prod", headers: bearer(), body: adaBody,
			status: 200, check: created("ada@example.com", "Ada", "Lovelace")},
		{name: "healthz behind a greedy route", method: "GET", path: "/v1/onboard/healthz", route: "/onboard/{proxy+}",
			params: map[string]string{"proxy": "healthz"}, status: 200, check: healthy},
		{name: "other paths are not the handler's", method: "GET", path: "/admin", status: 404},
		{name: "SCIM behind a named stage", method: "GET", path: "/prod/scim/v2/Users", stage: "prod", headers: bearer(), status: 401, check: scimAnswer},
		{name: "SCIM behind a greedy route", method: "GET", path: "/v1/onboard/scim/v2/Users", route: "/onboard/{proxy+}",
			params: map[string]string{"proxy": "scim/v2/Users"}, headers: bearer(), status: 401, check: scimAnswer},
	}
	// serve's event routes exist only under `onboard serve`: here an event
	// posted there, with a valid credential, is a 404 that runs nothing.
	for path, event := range map[string]string{"/_local/lambda": "sqs.json", "/_local/pubsub": "pubsub-push.json"} {
		cases = append(cases, httpCase{name: "no " + path, method: "POST", path: path, headers: bearer(), body: string(awstest.Event(t, event)),
			status: 404, check: func(t *testing.T, h *harness, a answer) {
				if n := len(h.looker.Users()); n != 0 {
					t.Fatalf("%d Looker users after POST %s", n, path)
				}
			}})
	}
	for _, v := range payloadVersions {
		t.Run(v.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					h := newHarness(t, nil, 0)
					out, err := h.invoke(t, v.build(t, c))
					if err != nil {
						t.Fatalf("invocation failed: %v", err)
					}
					a := v.decode(t, out)
					_ = json.Unmarshal([]byte(a.raw), &a.body)
					if a.status != c.status {
						t.Fatalf("status %d, want %d: %s", a.status, c.status, a.raw)
					}
					if c.check != nil {
						c.check(t, h, a)
					}
				})
			}
		})
	}
}

// The samples in testdata/events must work as they are.
func TestSampleEvents(t *testing.T) {
	for _, name := range []string{"apigw-v1.json", "apigw-v2.json"} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil, 0)
			out, err := h.invoke(t, awstest.Event(t, name))
			if err != nil {
				t.Fatal(err)
			}
			var resp struct {
				StatusCode int    `json:"statusCode"`
				Body       string `json:"body"`
			}
			mustUnmarshal(t, out, &resp)
			if resp.StatusCode != 200 || !strings.Contains(resp.Body, `"status":"created"`) {
				t.Fatalf("answer %s", out)
			}
		})
	}
	t.Run("sqs.json", func(t *testing.T) {
		h := newHarness(t, nil, 0)
		out, err := h.invoke(t, awstest.Event(t, "sqs.json"))
		if err != nil {
			t.Fatal(err)
		}
		if ids := failedIDs(t, out); len(ids) != 0 {
			t.Fatalf("failures %v", ids)
		}
		if _, ok := h.looker.UserByEmail("ada@example.com"); !ok {
			t.Fatal("ada was not provisioned")
		}
		if len(h.logLines(t, "idempotency_key", "hr-import-2024-12-17-0001")) == 0 {
			t.Error("the idempotency_key message attribute was not used")
		}
	})
}

func TestSQSPartialBatchFailure(t *testing.T) {
	h := newHarness(t, nil, 0)
	h.looker.FailEmailLookup("bob@example.com", 0)

	ada := awstest.SQSRecord("m-ada", `{"email":"ada@example.com","name":"Ada Lovelace"}`)
	ada.MessageAttributes["idempotency_key"] = awstest.StringAttribute("crm-ada-1")
	bob := awstest.SQSRecord("m-bob", `{"email":"bob@example.com","name":"Bob Bobson"}`)
	poison := awstest.SQSRecord("m-poison", `{"email":"not an address"}`)

	if got := h.sqs(t, ada, bob, poison); !slices.Equal(got, []string{"m-bob"}) {
		t.Fatalf("batchItemFailures %v, want only m-bob", got)
	}
	if _, ok := h.looker.UserByEmail("ada@example.com"); !ok {
		t.Error("ada was not provisioned")
	}
	if _, ok := h.looker.UserByEmail("bob@example.com"); ok {
		t.Error("bob was provisioned despite Looker's 503")
	}
	if len(h.logLines(t, "idempotency_key", "crm-ada-1")) == 0 {
		t.Error("the idempotency_key message attribute was not used")
	}
	dropped := false
	for _, rec := range h.logLines(t, "message_id", "m-poison") {
		dropped = dropped || rec["severity"] == "ERROR"
	}
	if !dropped {
		t.Error("the poison message was not logged at ERROR")
	}
}

// In a FIFO batch a retried record holds back the rest of its message group,
// and only that group.
func TestSQSFIFOGroupStopsAtFirstRetry(t *testing.T) {
	h := newHarness(t, nil, 0)
	h.looker.FailEmailLookup("bob@example.com", 0)
	record := func(id, email, group string) events.SQSMessage {
		r := awstest.SQSRecord(id, fmt.Sprintf(`{"email":%q}`, email))
		r.EventSourceARN += ".fifo"
		r.Attributes["MessageGroupId"] = group
		return r
	}
	got := h.sqs(t,
		record("f1", "bob@example.com", "g1"),
		record("f2", "dave@example.com", "g2"),
		record("f3", "carol@example.com", "g1"),
	)
	if !slices.Equal(got, []string{"f1", "f3"}) {
		t.Fatalf("batchItemFailures %v, want f1 and f3", got)
	}
	if n := h.looker.Count("GET", "/users/credential/email/carol@example.com"); n != 0 {
		t.Errorf("carol was processed (%d lookups) although bob before her in g1 failed", n)
	}
	if _, ok := h.looker.UserByEmail("dave@example.com"); !ok {
		t.Error("dave's group was held back by another group's failure")
	}
}

// interceptLookups serves the fake Looker through a proxy that calls hold
// before forwarding each email lookup, and returns the proxy's URL.
func interceptLookups(t *testing.T, fakes *awstest.Fakes, hold func(r *http.Request)) string {
	t.Helper()
	target, err := url.Parse(awstest.Server[*lookertest.Server](t, fakes).URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/users/credential/email/") {
			hold(r)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Records run concurrently, but never more than the bound: the Looker
// lookups are held until that many are in flight at once, then a moment
// longer to see whether any more arrive.
func TestSQSConcurrencyIsBounded(t *testing.T) {
	const bound, records = 3, 6
	var (
		mu                sync.Mutex
		inFlight, maxSeen int
		release           = make(chan struct{})
	)
	fakes := awstest.Start(t)
	gate := interceptLookups(t, fakes, func(*http.Request) {
		mu.Lock()
		inFlight++
		maxSeen = max(maxSeen, inFlight)
		wave := release
		if inFlight == bound {
			// Held a little longer, so that records beyond the bound, if
			// they could start, would show up now.
			time.AfterFunc(200*time.Millisecond, func() { close(wave) })
			release = make(chan struct{})
		}
		mu.Unlock()
		select {
		case <-wave:
		case <-time.After(3 * time.Second): // never reaching the bound must not hang the test
		}
		mu.Lock()
		inFlight--
		mu.Unlock()
	})
	h := harnessFor(t, fakes, map[string]string{"LOOKERSDK_BASE_URL": gate}, bound, nil)

	var batch []events.SQSMessage
	for i := range records {
		batch = append(batch, awstest.SQSRecord(fmt.Sprintf("m%d", i), fmt.Sprintf(`{"email":"user%d@example.com"}`, i)))
	}
	if got := h.sqs(t, batch...); len(got) != 0 {
		t.Fatalf("batchItemFailures %v", got)
	}
	if maxSeen != bound {
		t.Fatalf("at most %d records ran at once, want exactly %d", maxSeen, bound)
	}
	if n := len(h.looker.Users()); n != records {
		t.Fatalf("%d users provisioned, want %d", n, records)
	}
}

// A record still running as the invocation nears its deadline is handed
// back, and the others' outcome is still reported: a timed-out invocation
// would redeliver them all.
func TestSQSAnswersBeforeTheDeadline(t *testing.T) {
	fakes := awstest.Start(t)
	slow := interceptLookups(t, fakes, func(r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/slow@example.com") {
			<-r.Context().Done()
		}
	})
	h := harnessFor(t, fakes, map[string]string{"LOOKERSDK_BASE_URL": slow}, 0, nil)
	if _, err := h.inst.App(context.Background()); err != nil {
		t.Fatal(err)
	}
	payload := mustMarshal(t, events.SQSEvent{Records: []events.SQSMessage{
		awstest.SQSRecord("m-fast", `{"email":"fast@example.com"}`),
		awstest.SQSRecord("m-slow", `{"email":"slow@example.com"}`),
	}})
	const budget = 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	out, err := lambda.NewHandler(h.fn.Handle).Invoke(ctx, payload)
	if err != nil {
		t.Fatalf("invocation failed: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the answer came after the deadline")
	}
	if got := failedIDs(t, out); !slices.Equal(got, []string{"m-slow"}) {
		t.Fatalf("batchItemFailures %v, want m-slow alone", got)
	}
	if _, ok := h.looker.UserByEmail("fast@example.com"); !ok {
		t.Fatal("the fast record was not provisioned")
	}
}

func TestUnsupportedEventsFailTheInvocation(t *testing.T) {
	h := newHarness(t, nil, 0)
	for name, event := range map[string]string{
		"not an object": `[1,2]`,
		"unknown shape": `{"detail-type":"Scheduled Event","source":"aws.events"}`,
		"SNS records":   `{"Records":[{"EventSource":"aws:sns","Sns":{"Message":"{}"}}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			out, err := h.invoke(t, []byte(event))
			if err == nil {
				t.Fatalf("answered %s, want an error", out)
			}
			if name == "unknown shape" && !strings.Contains(err.Error(), "onboard_task") {
				t.Errorf("error %q does not mention the scheduled task shape", err)
			}
		})
	}
}

// An instance that could not start fails an SQS invocation as a whole (the
// records are all redelivered) and answers HTTP with a 503.
func TestInstanceThatFailedToStart(t *testing.T) {
	h := newHarness(t, map[string]string{"ONBOARD_CONFIG": "/nonexistent/onboard.yaml"}, 0)
	if _, err := h.invoke(t, events.SQSEvent{Records: []events.SQSMessage{awstest.SQSRecord("m1", `{"email":"ada@example.com"}`)}}); err == nil {
		t.Error("SQS invocation succeeded")
	}
	out, err := h.invoke(t, awstest.Event(t, "apigw-v2.json"))
	if err != nil {
		t.Fatal(err)
	}
	if a := payloadVersions[0].decode(t, out); a.status != 503 || a.header.Get("Retry-After") == "" {
		t.Fatalf("answer %d %v %s", a.status, a.header, a.raw)
	}
}

// Lambda hands an invocation's error to the invoker and its log, so its
// text passes through the redactor: here an invoker's input echoed into
// the error happens to be a secret the instance holds.
func TestInvocationErrorsAreRedacted(t *testing.T) {
	h := newHarness(t, nil, 0)
	_, err := h.invoke(t, map[string]string{"onboard_task": awstest.WebhookSecret})
	if err == nil || !strings.Contains(err.Error(), "unknown task") {
		t.Fatalf("got %v, want the unknown task refused", err)
	}
	if h.fakes.Leaked(err.Error()) {
		t.Errorf("the invocation error holds a secret: %s", err)
	}
}

// scimAnswer checks that the SCIM front door answered (here refusing the
// webhook's secret, which is not the SCIM token), in SCIM's own form.
func scimAnswer(t *testing.T, _ *harness, a answer) {
	if ct := a.header.Get("Content-Type"); ct != "application/scim+json" || !strings.Contains(a.raw, "urn:ietf:params:scim:api:messages:2.0:Error") {
		t.Fatalf("not a SCIM answer: %s %s", ct, a.raw)
	}
}
