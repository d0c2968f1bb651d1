package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	secret := webhookCurl.FindStringSubmatch(banner)[1]
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
	// The same file again is answered from the first run's records (the
	// function keys keyless rows by content): still "created", not redone.
	cmd = w.command("import", "--via", "http://localhost:"+port+"/", file)
	cmd.Env = append(cmd.Env, "ONBOARD_WEBHOOK_SECRET="+secret)
	if out, err := cmd.CombinedOutput(); err != nil || !regexp.MustCompile(`created\s+3`).Match(out) {
		t.Fatalf("the same file again: %v\n%s", err, out)
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

// TestImportViaSQS sends 23 rows: three SendMessageBatch calls (10, 10, 3).
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
	file := writePeopleCSV(t, w.dir, 23)
	creds, _ := cfg.Credentials.Retrieve(ctx)
	cmd := w.command("import", "--via", "sqs:"+*q.QueueUrl, file)
	cmd.Env = append(cmd.Env, "AWS_ENDPOINT_URL="+endpoint, "AWS_REGION="+cfg.Region,
		"AWS_ACCESS_KEY_ID="+creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+creds.SecretAccessKey)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "queued") || !strings.Contains(string(out), "23") {
		t.Fatalf("%v\n%s", err, out)
	}
	keys := map[string]bool{}
	for empty := 0; empty < 2; {
		got, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10,
			MessageAttributeNames: []string{"All"}, VisibilityTimeout: 60})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Messages) == 0 {
			empty++
		}
		for _, m := range got.Messages {
			key := *m.MessageAttributes["idempotency_key"].StringValue
			assertQueuedRequest(t, []byte(*m.Body), key)
			keys[key] = true
		}
	}
	if len(keys) != 23 {
		t.Fatalf("%d distinct messages on the queue, want 23", len(keys))
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
	if !strings.HasPrefix(req.Email, "p0") || req.IdempotencyKey == "" || req.IdempotencyKey != key {
		t.Errorf("queued request %+v with attribute key %q", req, key)
	}
	var raw map[string]any
	_ = json.Unmarshal(body, &raw)
	if raw["attributes"].(map[string]any)["region"] != "EMEA" {
		t.Errorf("attributes lost: %s", body)
	}
}

// writePeopleCSV writes n rows like testdata/import's people files
// (p000@example.com, …) into dir.
func writePeopleCSV(t *testing.T, dir string, n int) string {
	t.Helper()
	lines := []string{"email,name,profile,attr.region"}
	for i := range n {
		lines = append(lines, fmt.Sprintf("p%03d@example.com,Person %d,analyst,EMEA", i, i))
	}
	file := filepath.Join(dir, fmt.Sprintf("people-%d.csv", n))
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// functionStub stands in for the deployed HTTP function: it records every
// request and answers it with answer.
type functionStub struct {
	*httptest.Server
	mu       sync.Mutex
	requests []stubRequest
}

type stubRequest struct {
	method, auth string
	query        url.Values
	items        []core.Request // as decoded by the function, keys included
}

func newFunctionStub(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, items []core.Request)) *functionStub {
	t.Helper()
	s := &functionStub{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var raws []json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&raws); err != nil {
			t.Errorf("not a bulk body: %v", err)
			http.Error(w, "not a bulk body", http.StatusBadRequest)
			return
		}
		items := make([]core.Request, len(raws))
		for i, raw := range raws {
			req, err := core.DecodeRequest(raw)
			if err != nil {
				t.Errorf("item %s: %v", raw, err)
			}
			items[i] = req
		}
		s.mu.Lock()
		s.requests = append(s.requests, stubRequest{method: r.Method, auth: r.Header.Get("Authorization"), query: r.URL.Query(), items: items})
		s.mu.Unlock()
		answer(w, r, items)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *functionStub) recorded() []stubRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func emails(items []core.Request) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Email
	}
	return out
}

// TestImportViaHTTPSendsBulkBodies checks what reaches the function: rows
// in bodies of 50 in file order, each with its content key, and only the
// rows answered as retryable sent again.
func TestImportViaHTTPSendsBulkBodies(t *testing.T) {
	const secret = "stub-webhook-secret-7f3a"
	const retried, refused = "p010@example.com", "p060@example.com"
	var mu sync.Mutex
	seen := map[string]int{}
	stub := newFunctionStub(t, func(w http.ResponseWriter, _ *http.Request, items []core.Request) {
		answers := make([]map[string]any, len(items))
		mu.Lock()
		for i, it := range items {
			seen[it.Email]++
			switch {
			case it.Email == retried && seen[it.Email] == 1:
				answers[i] = map[string]any{"http_status": 503, "retry_after": 1, "error": "looker: temporarily unavailable, retry later"}
			case it.Email == refused:
				answers[i] = map[string]any{"http_status": 502, "error": "looker: role analyst-plus does not exist"}
			default:
				answers[i] = map[string]any{"http_status": 200, "status": "created"}
			}
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMultiStatus)
		_ = json.NewEncoder(w).Encode(answers)
	})
	w := newImportWorld(t, 0)
	file := writePeopleCSV(t, w.dir, 120)
	cmd := w.command("import", "--via", stub.URL+"/?tenant=acme", "--concurrency", "4", file)
	cmd.Env = append(cmd.Env, "ONBOARD_WEBHOOK_SECRET="+secret)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1 (one refused row)\n%s\n%s", err, &stdout, &stderr)
	}

	var bodies [][]string
	for _, r := range stub.recorded() {
		if r.method != http.MethodPost || r.auth != "Bearer "+secret || r.query.Get("tenant") != "acme" || r.query.Has("force") {
			t.Errorf("%s ?%s with Authorization %q", r.method, r.query.Encode(), r.auth)
		}
		for _, it := range r.items {
			if it.IdempotencyKey != "" {
				t.Errorf("%s sent with key %q, want none: the function keys it by content and the person's history", it.Email, it.IdempotencyKey)
			}
		}
		bodies = append(bodies, emails(r.items))
	}
	firstSent := slices.IndexFunc(bodies, func(b []string) bool { return len(b) > 1 && slices.Contains(b, retried) })
	resent := slices.IndexFunc(bodies, func(b []string) bool { return slices.Equal(b, []string{retried}) })
	if firstSent < 0 || resent < firstSent {
		t.Fatalf("%s was not resent alone after its first body: %v", retried, bodies)
	}
	firstSends := slices.Delete(slices.Clone(bodies), resent, resent+1)
	var sizes []int
	var sent, want []string
	for _, b := range firstSends {
		sizes = append(sizes, len(b))
		sent = append(sent, b...)
	}
	for i := range 120 {
		want = append(want, fmt.Sprintf("p%03d@example.com", i))
	}
	if !slices.Equal(sizes, []int{50, 50, 20}) || !slices.Equal(sent, want) {
		t.Errorf("bodies of %v rows, want 50, 50 and 20 in file order:\n%v", sizes, firstSends)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen[retried] != 2 || seen[refused] != 1 {
		t.Errorf("%s sent %d times (want 2), %s %d times (want 1)", retried, seen[retried], refused, seen[refused])
	}
	if !regexp.MustCompile(`created +119`).MatchString(stdout.String()) || !regexp.MustCompile(`failed +1\b`).MatchString(stdout.String()) {
		t.Errorf("summary:\n%s", &stdout)
	}
	if !strings.Contains(stderr.String(), "import: 120/120 rows done, 1 failed") {
		t.Errorf("progress does not count each row once:\n%s", &stderr)
	}
	failures, err := os.ReadFile(filepath.Join(w.dir, "people-120.failures.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(failures)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], refused) || !strings.Contains(lines[1], "analyst-plus does not exist") {
		t.Errorf("failures file:\n%s", failures)
	}

	// --force never leaves this machine: a deployed function takes no
	// force from a URL or a body, so asking for it via the function is an
	// error before anything is sent.
	forced := newFunctionStub(t, func(w http.ResponseWriter, _ *http.Request, items []core.Request) {
		w.WriteHeader(http.StatusMultiStatus)
		_ = json.NewEncoder(w).Encode(slices.Repeat([]map[string]any{{"http_status": 200, "status": "unchanged"}}, len(items)))
	})
	cmd = w.command("import", "--via", forced.URL+"/?tenant=acme", "--force", w.csv(t, "people-3.csv"))
	cmd.Env = append(cmd.Env, "ONBOARD_WEBHOOK_SECRET="+secret)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--force") || len(forced.recorded()) != 0 {
		t.Fatalf("--force with --via: %v, %d bodies sent\n%s", err, len(forced.recorded()), out)
	}
}

// A body refused as a whole fails every row in it, without resending, and
// the secret stays out of everything the import writes even when the
// answer echoes it.
func TestImportViaHTTPWholeBodyFailures(t *testing.T) {
	const secret = "stub-webhook-secret-91c2"
	for name, answer := range map[string]func(w http.ResponseWriter, r *http.Request, items []core.Request){
		"401": func(w http.ResponseWriter, r *http.Request, _ []core.Request) {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "unauthorized: " + r.Header.Get("Authorization")})
		},
		"207 short": func(w http.ResponseWriter, _ *http.Request, items []core.Request) {
			w.WriteHeader(http.StatusMultiStatus)
			_ = json.NewEncoder(w).Encode(slices.Repeat([]map[string]any{{"http_status": 200, "status": "created"}}, len(items)-1))
		},
	} {
		t.Run(name, func(t *testing.T) {
			stub := newFunctionStub(t, answer)
			w := newImportWorld(t, 0)
			file := writePeopleCSV(t, w.dir, 60)
			cmd := w.command("import", "--via", stub.URL, file)
			cmd.Env = append(cmd.Env, "ONBOARD_WEBHOOK_SECRET="+secret)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); cmd.ProcessState.ExitCode() != 1 {
				t.Fatalf("exit %v, want 1\n%s\n%s", err, &stdout, &stderr)
			}
			if n := len(stub.recorded()); n != 2 {
				t.Errorf("%d requests for two bodies: a whole-body refusal was resent", n)
			}
			if !regexp.MustCompile(`failed +60`).MatchString(stdout.String()) {
				t.Errorf("summary:\n%s", &stdout)
			}
			failures, err := os.ReadFile(filepath.Join(w.dir, "people-60.failures.csv"))
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(failures), "\n"); n != 61 {
				t.Errorf("failures file has %d lines, want a header and 60 rows:\n%s", n, failures)
			}
			for what, text := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String(), "failures file": string(failures)} {
				if strings.Contains(text, secret) {
					t.Errorf("the webhook secret is in the %s:\n%s", what, text)
				}
			}
		})
	}
}

// Rows with long attribute values fill 1 MiB before 50 rows: such a body is
// cut short rather than refused with 413 as a whole.
func TestBulkBodiesStayUnderTheBodyLimit(t *testing.T) {
	attrs := map[string]string{}
	for i := range 40 {
		attrs[fmt.Sprintf("a%02d", i)] = strings.Repeat("<", 250) // JSON escapes each as \u003c
	}
	rows := make([]row, 120)
	for i := range rows {
		rows[i] = row{line: i + 2, req: core.Request{Email: fmt.Sprintf("p%03d@example.com", i), Attributes: attrs}}
	}
	var sent []row
	units := (&httpSender{}).units(rows)
	for _, u := range units {
		items := make([]json.RawMessage, len(u))
		for i, r := range u {
			items[i] = wireRequest(r)
		}
		body, _ := json.Marshal(items)
		if len(body) > core.MaxBodyBytes || len(u) > bulkBodyRows {
			t.Errorf("a body of %d rows is %d bytes", len(u), len(body))
		}
		sent = append(sent, u...)
	}
	if len(units) <= 3 || len(sent) != len(rows) || !slices.EqualFunc(sent, rows, func(a, b row) bool { return a.line == b.line }) {
		t.Errorf("%d bodies carried %d rows, want more than 3 bodies carrying all 120 in order", len(units), len(sent))
	}
}

// --via over plain http is refused unless it stays on this machine, since
// the webhook secret travels in a header; a URL's credentials never reach
// an error.
func TestImportViaRefusesCleartextAndHidesURLCredentials(t *testing.T) {
	w := newImportWorld(t, 0)
	file := w.csv(t, "people-3.csv")
	cmd := w.command("import", "--via", "http://user:pa55word-VIACHECK@onboard.example.com/", file)
	cmd.Env = append(cmd.Env, "ONBOARD_WEBHOOK_SECRET=whsec-VIACHECK")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "use https") {
		t.Fatalf("plain http to another host: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "pa55word-VIACHECK") || strings.Contains(string(out), "whsec-VIACHECK") {
		t.Errorf("a credential reached the output:\n%s", out)
	}
	if n := len(w.looker.Requests()); n != 0 {
		t.Errorf("a refused import made %d Looker calls", n)
	}
}

// --via https:// sends the webhook secret, so a redirect to another scheme
// or host is refused before anything is sent there, with an error naming
// the target (without its URL credentials); one within the same origin is
// followed.
func TestImportViaHTTPSRefusesRedirectsElsewhere(t *testing.T) {
	const secret = "whsec-REDIRECTCHECK-5d1e"
	t.Setenv("ONBOARD_WEBHOOK_SECRET", secret)
	elsewhere := newFunctionStub(t, func(w http.ResponseWriter, _ *http.Request, items []core.Request) {
		w.WriteHeader(http.StatusMultiStatus)
		_ = json.NewEncoder(w).Encode(slices.Repeat([]map[string]any{{"http_status": 200, "status": "created"}}, len(items)))
	})
	cleartext := strings.Replace(elsewhere.URL, "http://", "http://user:pa55-REDIRECTCHECK@", 1) + "/stolen"
	var reachedOtherHost atomic.Int32
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reachedOtherHost.Add(1)
		w.WriteHeader(http.StatusMultiStatus)
		_, _ = w.Write([]byte(`[{"http_status":200,"status":"created"}]`))
	}))
	t.Cleanup(other.Close)
	otherHost := other.URL + "/other" // https too, on another port: another origin
	var function *httptest.Server
	function = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-http":
			http.Redirect(w, r, cleartext, http.StatusTemporaryRedirect)
		case "/to-other-host":
			http.Redirect(w, r, otherHost, http.StatusPermanentRedirect)
		case "/moved":
			http.Redirect(w, r, function.URL+"/here", http.StatusPermanentRedirect)
		case "/here":
			if r.Header.Get("Authorization") != "Bearer "+secret {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.WriteHeader(http.StatusMultiStatus)
			_, _ = w.Write([]byte(`[{"http_status":200,"status":"created"}]`))
		}
	}))
	t.Cleanup(function.Close)
	rows := []row{{line: 2, req: core.Request{Email: "ada@example.com"}}}
	send := func(path string) rowResult {
		t.Helper()
		s, err := openVia(context.Background(), function.URL+path)
		if err != nil {
			t.Fatal(err)
		}
		s.(*httpSender).client.Transport = function.Client().Transport // trusts the test certificate
		return s.send(context.Background(), rows)[0]
	}

	for path, target := range map[string]string{"/to-http": elsewhere.URL + "/stolen", "/to-other-host": otherHost} {
		got := send(path)
		if got.err == nil || got.err.Retryable() || !strings.Contains(got.err.Error(), "redirected to "+target) {
			t.Errorf("%s: %+v, want a permanent error naming %s", path, got, target)
			continue
		}
		if msg := got.err.Error(); strings.Contains(msg, "pa55-REDIRECTCHECK") || strings.Contains(msg, secret) {
			t.Errorf("%s: a credential reached the error: %s", path, msg)
		}
	}
	if n := len(elsewhere.recorded()); n != 0 {
		t.Errorf("%d requests followed the redirect to http://, the first with Authorization %q", n, elsewhere.recorded()[0].auth)
	}
	if n := reachedOtherHost.Load(); n != 0 {
		t.Errorf("%d requests followed the redirect to another host", n)
	}
	if got := send("/moved"); got.err != nil || got.status != core.StatusCreated {
		t.Errorf("a redirect within the same origin: %+v, want it followed", got)
	}
}
