// Package lambdaapi is onboard's AWS Lambda face. One function serves API
// Gateway HTTP APIs (payload 2.0), REST APIs (payload 1.0), SQS batches and
// scheduled tasks, told apart by the event's shape, so one deployment
// artefact covers every AWS trigger. It only translates: HTTP events go
// through the same http.Handler as every other HTTP trigger, SQS records go
// to the engine, tasks to the app.
package lambdaapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/runner"
)

// DefaultConcurrency bounds how many SQS records of one batch run at once:
// enough to hide the targets' latency, few enough that one batch of ten
// cannot trip a target's rate limit on its own.
const DefaultConcurrency = 8

// responseMargin is kept free before the invocation's deadline: records still
// running then are reported for redelivery, because a function that times out
// has its whole batch redelivered, the records that succeeded included.
const responseMargin = time.Second

// errNotReady fails the invocation rather than answering, so the event
// comes back (SQS redelivers the batch, Lambda retries a scheduled task)
// and the failure shows in the function's Errors metric.
var errNotReady = errors.New("onboard is not ready: it failed to start (see the start-up log) or the invocation ended first")

// Function is the Lambda handler. Use it as lambda.Start(f.Handle).
type Function struct {
	instance    *app.Instance
	log         *slog.Logger
	concurrency int
	v1          *httpadapter.HandlerAdapter
	v2          *httpadapter.HandlerAdapterV2
}

// New returns the handler for an instance. log (not nil; the instance's own
// logger, normally) receives what the engine cannot log itself: unreadable
// events and panics. concurrency <= 0 means DefaultConcurrency.
func New(instance *app.Instance, log *slog.Logger, concurrency int) *Function {
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	return &Function{
		instance:    instance,
		log:         log,
		concurrency: concurrency,
		v1:          httpadapter.New(instance),
		v2:          httpadapter.NewV2(keepRawHeaders(instance)),
	}
}

// probe holds just enough of an event to tell the sources apart; JSON field
// matching is case-insensitive, so SNS's "EventSource" is seen too.
type probe struct {
	Records []struct {
		EventSource string `json:"eventSource"`
	} `json:"Records"`
	Version        string `json:"version"`
	HTTPMethod     string `json:"httpMethod"`
	RequestContext struct {
		HTTP json.RawMessage `json:"http"`
	} `json:"requestContext"`
	// Task is the constant input of an EventBridge schedule:
	// {"onboard_task":"aac-keep-alive"}.
	Task json.RawMessage `json:"onboard_task"`
}

// Handle serves one invocation. Its error fails the whole invocation, so it
// is only returned for events this function cannot serve at all: a problem
// with one SQS record never fails the others.
//
// Lambda hands the error's text to the invoker and the log, so it passes
// through the redactor. Answers need no pass of their own: HTTP bodies come
// from the HTTP handler, which masks them, and SQS and task results hold
// only message ids and names.
func (f *Function) Handle(ctx context.Context, event json.RawMessage) (any, error) {
	out, err := f.handle(ctx, event)
	return out, f.instance.RedactError(err)
}

func (f *Function) handle(ctx context.Context, event json.RawMessage) (any, error) {
	var p probe
	// The decoder's error is not wrapped: it quotes the event, which may hold
	// a credential.
	if json.Unmarshal(event, &p) != nil {
		return nil, errors.New("onboard: the event is not a JSON object")
	}
	switch {
	case len(p.Records) > 0:
		for _, r := range p.Records {
			if r.EventSource != "aws:sqs" {
				return nil, fmt.Errorf("onboard: records from %q are not supported; connect an SQS queue or an API Gateway", r.EventSource)
			}
		}
		var ev events.SQSEvent
		if json.Unmarshal(event, &ev) != nil {
			return nil, errors.New("onboard: malformed SQS event")
		}
		return f.sqs(ctx, ev)
	case p.Version == "2.0" && len(p.RequestContext.HTTP) > 0:
		var ev events.APIGatewayV2HTTPRequest
		if json.Unmarshal(event, &ev) != nil {
			return nil, errors.New("onboard: malformed API Gateway (payload 2.0) event")
		}
		return f.httpV2(ctx, ev), nil
	case p.HTTPMethod != "":
		var ev events.APIGatewayProxyRequest
		if json.Unmarshal(event, &ev) != nil {
			return nil, errors.New("onboard: malformed API Gateway (payload 1.0) event")
		}
		return f.httpV1(ctx, ev), nil
	case len(p.Task) > 0:
		var name string
		if json.Unmarshal(p.Task, &name) != nil {
			return nil, errors.New("onboard: onboard_task must be a string naming a task: " + strings.Join(app.Tasks(), ", "))
		}
		return f.task(ctx, name)
	}
	return nil, errors.New(`onboard: unrecognised event; expected an API Gateway HTTP or REST API event, an SQS batch or a scheduled task ({"onboard_task":"..."})`)
}

// taskResult is what a task invocation answers, for `aws lambda invoke`.
type taskResult struct {
	Task    string `json:"task"`
	Outcome string `json:"outcome"`
}

// task runs a scheduled task. Unlike Pub/Sub, a failure here cannot loop:
// Lambda retries an asynchronous invocation twice, then drops it. So an
// unknown name fails the invocation too, which puts it in the Errors metric
// where a mistyped schedule is seen.
func (f *Function) task(ctx context.Context, name string) (any, error) {
	a, err := f.instance.ForRequest(ctx)
	if err != nil {
		return nil, errNotReady
	}
	if err := a.RunTask(ctx, name, f.log.With("trigger", "schedule")); err != nil {
		return nil, fmt.Errorf("onboard: %w", err)
	}
	return taskResult{Task: name, Outcome: "done"}, nil
}

// httpV2 serves an HTTP API event (payload format 2.0).
func (f *Function) httpV2(ctx context.Context, ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	path := ev.RawPath
	if path == "" {
		path = ev.RequestContext.HTTP.Path
	}
	ev.RawPath = handlerPath(path, ev.RequestContext.Stage, ev.RouteKey, ev.PathParameters)
	resp, err := f.v2.ProxyWithContext(context.WithValue(ctx, rawHeadersKey{}, ev.Headers), ev)
	if err != nil {
		f.unreadable(err)
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusBadRequest, Headers: map[string]string{"Content-Type": "application/json"}, Body: unreadableBody}
	}
	return resp
}

// httpV1 serves a REST API event, or an HTTP API event in payload format 1.0.
func (f *Function) httpV1(ctx context.Context, ev events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	ev.Path = handlerPath(ev.Path, ev.RequestContext.Stage, ev.Resource, ev.PathParameters)
	resp, err := f.v1.ProxyWithContext(ctx, ev)
	if err != nil {
		f.unreadable(err)
		return events.APIGatewayProxyResponse{StatusCode: http.StatusBadRequest, Headers: map[string]string{"Content-Type": "application/json"}, Body: unreadableBody}
	}
	return resp
}

// unreadableBody answers an event the adapter cannot turn into a request: a
// body that is not base64 although flagged so, or an unusable method or path.
const unreadableBody = `{"error":"the request could not be read"}` + "\n"

func (f *Function) unreadable(err error) {
	f.log.Warn("API Gateway event could not be turned into an HTTP request", "error", err.Error())
}

// handlerPath maps the path API Gateway saw to the one the handler answers
// ("/" and "/healthz"). Behind a greedy route such as /{proxy+} (or
// /onboard/{proxy+}) the greedy parameter is exactly that path, whatever
// custom domain mapping or stage sits in front. Otherwise the path is used as
// is, minus a leading stage name: HTTP APIs include a named stage in rawPath,
// and payload 1.0 events do in some set-ups.
func handlerPath(path, stage, route string, params map[string]string) string {
	if name, ok := greedyParam(route); ok {
		if v, ok := params[name]; ok {
			return "/" + strings.TrimPrefix(v, "/")
		}
	}
	if stage != "" && stage != "$default" {
		if rest, ok := strings.CutPrefix(path, "/"+stage); ok && (rest == "" || rest[0] == '/') {
			path = rest
		}
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return path
}

// greedyParam returns the name of a route's trailing {name+} segment. route
// is a REST resource ("/{proxy+}") or an HTTP API route key ("ANY /{proxy+}").
func greedyParam(route string) (string, bool) {
	last := route[strings.LastIndexByte(route, '/')+1:]
	if name, ok := strings.CutSuffix(last, "+}"); ok && strings.HasPrefix(name, "{") {
		return name[1:], true
	}
	return "", false
}

type rawHeadersKey struct{}

// keepRawHeaders gives the handler each header exactly as API Gateway
// delivered it. The 2.0 adapter splits every header it does not know to be
// single-valued on commas, which would cut "Onboard-Signature: t=…,v1=…" in
// two and fail its verification. A plain net/http server does not split
// either, so Lambda and Cloud Functions see the same headers.
func keepRawHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if raw, ok := r.Context().Value(rawHeadersKey{}).(map[string]string); ok {
			for k, v := range raw {
				r.Header[textproto.CanonicalMIMEHeaderKey(k)] = []string{v}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// sqs processes a batch and returns the records SQS should deliver again.
// Records run concurrently (bounded), except that records of one FIFO message
// group run in order, and once one of them must be retried the rest of its
// group is returned unprocessed, so a group is never applied out of order.
// Records that can never succeed are logged by the engine and not returned,
// so a poison message is deleted rather than retried until it expires.
func (f *Function) sqs(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	a, err := f.instance.ForRequest(ctx)
	if err != nil {
		// Every record would fail alike. Failing the invocation redelivers
		// them all, as reporting each would, and also shows in the
		// function's Errors metric and alarms.
		return events.SQSEventResponse{}, errNotReady
	}
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-responseMargin))
		defer cancel()
	}

	// One event batch, so targets that serve many people in one call (AAC)
	// make that call once for the records that can run together; a FIFO
	// message group's records run in order.
	items := make([]runner.Item, len(ev.Records))
	for i, r := range ev.Records {
		attrs := map[string]string{}
		for k, v := range r.MessageAttributes {
			if v.StringValue != nil {
				attrs[k] = *v.StringValue
			}
		}
		req, err := core.DecodeMessage([]byte(r.Body), attrs)
		items[i] = runner.Item{Request: req, Err: err, Group: r.Attributes["MessageGroupId"],
			Meta: core.Meta{RequestID: core.NewRequestID(), MessageID: core.CleanMessageID(r.MessageId), Trigger: "sqs"}}
	}
	outcomes := runner.Run(ctx, a.Engine, items, f.concurrency, nil)
	retry := make([]bool, len(ev.Records))
	for i, o := range outcomes {
		retry[i] = runner.ForMessage(a.Engine, items[i].Meta, o).Retry
	}

	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	for i, r := range ev.Records {
		if retry[i] {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
		}
	}
	f.log.Info("SQS batch done", "records", len(ev.Records), "redeliver", len(resp.BatchItemFailures))
	return resp, nil
}
