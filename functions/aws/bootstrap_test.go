package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/onboard-dev/onboard/core/looker/lookertest"
	"github.com/onboard-dev/onboard/functions/aws/internal/awstest"
	"github.com/onboard-dev/onboard/internal/testproc"
)

// runtimeAPI is the part of the Lambda Runtime API a custom runtime uses,
// served on loopback: it hands out queued events and collects the answers.
type runtimeAPI struct {
	next   chan invocation
	closed chan struct{}

	mu        sync.Mutex
	pending   map[string]invocation
	initError []byte
}

type invocation struct {
	id     string
	event  []byte
	result chan result
}

type result struct {
	kind string // "response" or "error"
	body []byte
}

const functionARN = "arn:aws:lambda:us-east-1:123456789012:function:onboard"

func newRuntimeAPI() *runtimeAPI {
	return &runtimeAPI{next: make(chan invocation), closed: make(chan struct{}), pending: map[string]invocation{}}
}

func (api *runtimeAPI) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		select {
		case inv := <-api.next:
			api.mu.Lock()
			api.pending[inv.id] = inv
			api.mu.Unlock()
			h := w.Header()
			h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
			h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
			h.Set("Lambda-Runtime-Invoked-Function-Arn", functionARN)
			h.Set("Lambda-Runtime-Trace-Id", "Root=1-6761f0a2-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=0")
			h.Set("Content-Type", "application/json")
			_, _ = w.Write(inv.event)
		case <-r.Context().Done():
		case <-api.closed:
			w.WriteHeader(http.StatusGone)
		}
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/{kind}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		api.mu.Lock()
		inv, ok := api.pending[r.PathValue("id")]
		delete(api.pending, r.PathValue("id"))
		api.mu.Unlock()
		kind := r.PathValue("kind")
		if !ok || (kind != "response" && kind != "error") {
			http.Error(w, "unknown invocation", http.StatusBadRequest)
			return
		}
		inv.result <- result{kind: kind, body: body}
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		api.mu.Lock()
		api.initError = body
		api.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})
	return mux
}

// buildBootstrap compiles this package as the Lambda build does, for the
// machine running the test.
func buildBootstrap(t testing.TB) string {
	t.Helper()
	return buildFunction(t, ".")
}

// buildFunction builds the Lambda function in pkg as the deploy does.
func buildFunction(t testing.TB, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc,onboard_nofakes", "-trimpath", "-ldflags=-s -w", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building bootstrap: %v\n%s", err, out)
	}
	return bin
}

// bootstrap is the built function running against a Runtime API on loopback.
type bootstrap struct {
	api    *runtimeAPI
	output *awstest.Buffer // its stdout and stderr
	exited <-chan struct{}
	pid    int
	n      int
}

// startBootstrap builds and runs the function as Lambda does, with env
// (the fakes' settings, say) in its environment.
func startBootstrap(t testing.TB, env map[string]string) *bootstrap {
	t.Helper()
	return startBinary(t, buildBootstrap(t), env)
}

// startBinary runs a built Lambda function against a loopback Runtime API.
func startBinary(t testing.TB, bin string, env map[string]string) *bootstrap {
	t.Helper()
	api := newRuntimeAPI()
	srv := httptest.NewServer(api.handler())
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(api.closed) })

	dir := t.TempDir()
	env = maps.Clone(env)
	maps.Copy(env, map[string]string{
		"AWS_LAMBDA_RUNTIME_API":          strings.TrimPrefix(srv.URL, "http://"),
		"AWS_LAMBDA_FUNCTION_NAME":        "onboard",
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
		"AWS_REGION":                      "us-east-1",
		"HOME":                            dir,
	})
	cmd := exec.Command(bin)
	cmd.Dir = dir
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	b := &bootstrap{api: api, output: &awstest.Buffer{}}
	cmd.Stdout, cmd.Stderr = b.output, b.output
	b.exited = testproc.Start(t, cmd, "bootstrap", b.output)
	b.pid = cmd.Process.Pid
	return b
}

// invoke hands the function one event and waits for its result.
func (b *bootstrap) invoke(t testing.TB, event []byte) result {
	t.Helper()
	b.n++
	inv := invocation{id: fmt.Sprintf("req-%d", b.n), event: event, result: make(chan result, 1)}
	timeout := time.After(time.Minute)
	select {
	case b.api.next <- inv:
	case <-b.exited:
		t.Fatal("bootstrap exited before asking for an invocation")
	case <-timeout:
		t.Fatal("bootstrap never asked for the next invocation")
	}
	select {
	case res := <-inv.result:
		return res
	case <-b.exited:
		t.Fatal("bootstrap exited during an invocation")
	case <-timeout:
		t.Fatal("no answer to the invocation")
	}
	return result{}
}

// response decodes a successful invocation's result into v.
func response(t testing.TB, res result, v any) {
	t.Helper()
	if res.kind != "response" {
		t.Fatalf("invocation %s: %s", res.kind, res.body)
	}
	if err := json.Unmarshal(res.body, v); err != nil {
		t.Fatalf("answer %s: %v", res.body, err)
	}
}

func TestBootstrapEndToEnd(t *testing.T) {
	fakes := awstest.Start(t)
	lookerFake := awstest.Server[*lookertest.Server](t, fakes)
	lookerFake.FailEmailLookup("bob@example.com", 0)
	fn := startBootstrap(t, fakes.Env)
	t.Run("HTTP API event", func(t *testing.T) {
		var resp events.APIGatewayV2HTTPResponse
		response(t, fn.invoke(t, awstest.Event(t, "apigw-v2.json")), &resp)
		if resp.StatusCode != 200 || !strings.Contains(resp.Body, `"status":"created"`) || resp.Headers["X-Request-Id"] == "" {
			t.Fatalf("answer %+v", resp)
		}
		if _, ok := lookerFake.UserByEmail("ada@example.com"); !ok {
			t.Fatal("ada was not provisioned")
		}
	})

	t.Run("SQS event", func(t *testing.T) {
		batch := events.SQSEvent{Records: []events.SQSMessage{
			awstest.SQSRecord("m-carol", `{"email":"carol@example.com","name":"Carol Shaw"}`),
			awstest.SQSRecord("m-bob", `{"email":"bob@example.com","name":"Bob Bobson"}`),
			awstest.SQSRecord("m-poison", `{"email":"not an address"}`),
		}}
		payload, _ := json.Marshal(batch)
		var resp events.SQSEventResponse
		response(t, fn.invoke(t, payload), &resp)
		if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "m-bob" {
			t.Fatalf("answer %+v, want m-bob alone", resp)
		}
		if _, ok := lookerFake.UserByEmail("carol@example.com"); !ok {
			t.Fatal("carol was not provisioned")
		}
	})

	t.Run("unrecognised event", func(t *testing.T) {
		res := fn.invoke(t, []byte(`{"source":"aws.events","detail-type":"Scheduled Event"}`))
		var body struct {
			ErrorMessage string `json:"errorMessage"`
		}
		_ = json.Unmarshal(res.body, &body)
		if res.kind != "error" || !strings.Contains(body.ErrorMessage, "unrecognised event") {
			t.Fatalf("invocation %s: %s", res.kind, res.body)
		}
	})

	t.Run("still serving after a failed invocation", func(t *testing.T) {
		ev := awstest.Event(t, "apigw-v2.json")
		var req events.APIGatewayV2HTTPRequest
		_ = json.Unmarshal(ev, &req)
		req.RawPath, req.RequestContext.HTTP.Method, req.Body = "/healthz", "GET", ""
		payload, _ := json.Marshal(req)
		var resp events.APIGatewayV2HTTPResponse
		response(t, fn.invoke(t, payload), &resp)
		if resp.StatusCode != 200 || !strings.Contains(resp.Body, `"ok"`) {
			t.Fatalf("answer %+v", resp)
		}
	})

	fn.api.mu.Lock()
	defer fn.api.mu.Unlock()
	if fn.api.initError != nil {
		t.Errorf("init error reported: %s", fn.api.initError)
	}
	if fakes.Leaked(fn.output.String()) {
		t.Error("a secret value reached the function's output")
	}
}

// The deployed function ignores ONBOARD_INSECURE_NO_AUTH=1: with no webhook
// secret an HTTP event without a credential is refused, and the log says
// why at ERROR.
func TestBootstrapIgnoresInsecureNoAuth(t *testing.T) {
	fakes := awstest.Start(t)
	env := maps.Clone(fakes.Env)
	delete(env, "ONBOARD_WEBHOOK_SECRET")
	env["ONBOARD_INSECURE_NO_AUTH"] = "1"
	fn := startBootstrap(t, env)

	var req events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(awstest.Event(t, "apigw-v2.json"), &req); err != nil {
		t.Fatal(err)
	}
	for k := range req.Headers {
		if strings.EqualFold(k, "Authorization") {
			delete(req.Headers, k)
		}
	}
	payload, _ := json.Marshal(req)
	var resp events.APIGatewayV2HTTPResponse
	response(t, fn.invoke(t, payload), &resp)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Body, `"unauthorized"`) {
		t.Fatalf("no credential: %d %s", resp.StatusCode, resp.Body)
	}
	if _, ok := awstest.Server[*lookertest.Server](t, fakes).UserByEmail("ada@example.com"); ok {
		t.Error("a refused request provisioned ada")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(fn.output.String(), `"severity":"ERROR","message":"ONBOARD_INSECURE_NO_AUTH=1 is ignored`) {
		if time.Now().After(deadline) {
			t.Fatalf("no ERROR line saying the setting is ignored:\n%s", fn.output)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
