package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/httpapi"
)

// statusQueued is a row handed to a deployed bundle's queue: the bundle
// runs it later, so the CLI only knows it was accepted.
const statusQueued core.Status = "queued"

// sender delivers rows somewhere other than the local engine, a unit of
// rows per send.
type sender interface {
	// units splits rows, in file order, into what one send carries.
	units(rows []row) [][]row
	// sendsInFlight turns --concurrency, rows worked on at once, into sends
	// at once.
	sendsInFlight(concurrency int) int
	// send returns one result per row of unit, in order.
	send(ctx context.Context, unit []row) []rowResult
	close()
}

// openVia parses --via: an https URL (the HTTP function), pubsub:TOPIC or
// sqs:QUEUE_URL. Each row carries its content's fingerprint as idempotency
// key, so importing the same file again is deduplicated by the bundle.
func openVia(ctx context.Context, via string) (sender, error) {
	switch {
	case strings.HasPrefix(via, "http://") || strings.HasPrefix(via, "https://"):
		u, err := url.Parse(via)
		if err != nil {
			return nil, errors.New("--via: not a URL") // its text would repeat the URL, credentials and all
		}
		shown := u.Redacted()
		if u.Scheme == "http" && !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("--via %s: use https: the webhook secret would cross the network in clear text", shown)
		}
		secret := os.Getenv(app.SettingWebhookSecret)
		if secret == "" {
			return nil, fmt.Errorf("--via %s: set ONBOARD_WEBHOOK_SECRET to the deployed function's webhook secret", shown)
		}
		// A full body takes a while (GCP's function allows it 5 minutes);
		// giving up sooner only resends rows the function is still running.
		return &httpSender{url: u.String(), secret: secret,
			client: &http.Client{Timeout: 5 * time.Minute, CheckRedirect: sameOriginRedirects}}, nil
	case strings.HasPrefix(via, "pubsub:"):
		topic := strings.TrimPrefix(via, "pubsub:")
		parts := strings.Split(topic, "/")
		if len(parts) != 4 || parts[0] != "projects" || parts[2] != "topics" || parts[1] == "" || parts[3] == "" {
			return nil, fmt.Errorf("--via %s: want pubsub:projects/PROJECT/topics/TOPIC", via)
		}
		client, err := pubsub.NewClient(ctx, parts[1])
		if err != nil {
			return nil, fmt.Errorf("--via %s: %w", via, err)
		}
		return &pubsubSender{client: client, publisher: client.Publisher(topic)}, nil
	case strings.HasPrefix(via, "sqs:"):
		queue := strings.TrimPrefix(via, "sqs:")
		if !strings.HasPrefix(queue, "https://") && !strings.HasPrefix(queue, "http://") {
			return nil, fmt.Errorf("--via %s: want sqs:https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE", via)
		}
		cfg, err := loadAWSConfig(ctx, os.Getenv)
		if err != nil {
			return nil, fmt.Errorf("--via %s: %w", via, err)
		}
		return &sqsSender{client: sqs.NewFromConfig(cfg), queue: queue}, nil
	}
	return nil, fmt.Errorf("--via %q: use http(s)://FUNCTION_URL, pubsub:projects/P/topics/T or sqs:QUEUE_URL", via)
}

// maxRedirects is how many same-origin redirects one send follows, as many
// as net/http's default.
const maxRedirects = 10

// redirectRefused is a redirect --via does not follow: the request carries
// the webhook secret and people's data, which must reach only the origin
// the admin named.
type redirectRefused struct{ target string }

func (e *redirectRefused) Error() string {
	return fmt.Sprintf("--via was redirected to %s: onboard follows a redirect only within the same scheme, host and port, so the webhook secret goes nowhere else; put the URL you mean in --via", e.target)
}

// sameOriginRedirects is the HTTP client's redirect policy for --via.
func sameOriginRedirects(req *http.Request, via []*http.Request) error {
	origin := via[0].URL
	if !strings.EqualFold(req.URL.Scheme, origin.Scheme) || !strings.EqualFold(req.URL.Host, origin.Host) {
		target := *req.URL
		target.User = nil
		return &redirectRefused{target: target.String()}
	}
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	return nil
}

// isLoopback is a host on this machine: a local `onboard serve`.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// wireRequest is the row as the HTTP function receives it. A row without
// a key of its own goes without one: the function keys it by its content,
// scoped to the person's history, so sending a file twice provisions once
// and a rehire after a deprovision still runs.
func wireRequest(r row) []byte {
	b, _ := json.Marshal(r.req)
	return b
}

// queuedRequest is the row as a queue message, with its key. Each publish
// gets a new message id, so without a key made from the row's content a
// file enqueued twice would run twice.
func queuedRequest(r row) ([]byte, string) {
	req := r.req
	if req.IdempotencyKey == "" {
		req.IdempotencyKey = "import-" + req.Fingerprint()
	}
	b, _ := json.Marshal(req)
	return b, req.IdempotencyKey
}

// singleRows makes every row a unit of its own.
func singleRows(rows []row) [][]row {
	units := make([][]row, len(rows))
	for i := range rows {
		units[i] = rows[i : i+1]
	}
	return units
}

// chunkRows splits rows, in order, into units of at most maxRows rows whose
// sizes add up to at most maxBytes; a row over maxBytes goes alone, for the
// receiver to refuse with its own message.
func chunkRows(rows []row, maxRows, maxBytes int, size func(row) int) [][]row {
	var units [][]row
	start, used := 0, 0
	for i, r := range rows {
		n := size(r)
		if i > start && (i-start == maxRows || used+n > maxBytes) {
			units = append(units, rows[start:i])
			start, used = i, 0
		}
		used += n
	}
	if start < len(rows) {
		units = append(units, rows[start:])
	}
	return units
}

// sameResult gives every row of a unit the same error.
func sameResult(unit []row, err *core.Error) []rowResult {
	results := make([]rowResult, len(unit))
	for i := range results {
		results[i].err = err
	}
	return results
}

// bulkBodyRows is how many rows go in one bulk body. The function runs a
// body as one event batch, and AAC invites at most 50 people per
// people/batch call (core/aac DefaultBatchMax), so a body of 50 fills one
// call; it is also well under the function's limits of 1,000 items and
// 1 MiB (a body is cut short of 1 MiB too, for rows with long attributes).
const bulkBodyRows = 50

// maxBulkAnswerBytes bounds how much of a 207 is read: a full body's answer
// is tens of KB, so this only stops a wrong URL that streams without end.
const maxBulkAnswerBytes = 16 << 20

type httpSender struct {
	url, secret string
	client      *http.Client
}

func (s *httpSender) units(rows []row) [][]row {
	const brackets, comma = 2, 1
	return chunkRows(rows, bulkBodyRows, core.MaxBodyBytes-brackets, func(r row) int {
		return len(wireRequest(r)) + comma
	})
}

// sendsInFlight: the function works on httpapi.BulkConcurrency rows of each
// body at once.
func (s *httpSender) sendsInFlight(concurrency int) int {
	return (concurrency + httpapi.BulkConcurrency - 1) / httpapi.BulkConcurrency
}

// bulkAnswer is one element of the function's 207 answer: the answer to
// that item alone, plus its status (httpapi's reply).
type bulkAnswer struct {
	HTTPStatus int    `json:"http_status"`
	RetryAfter int    `json:"retry_after"` // seconds
	Status     string `json:"status"`
	Error      string `json:"error"`
}

func (s *httpSender) send(ctx context.Context, unit []row) []rowResult {
	items := make([]json.RawMessage, len(unit))
	for i, r := range unit {
		items[i] = wireRequest(r)
	}
	body, _ := json.Marshal(items)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return sameResult(unit, &core.Error{Status: http.StatusBadRequest, Message: err.Error()})
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.secret)
	resp, err := s.client.Do(req)
	if refused := (*redirectRefused)(nil); errors.As(err, &refused) {
		// Resending would meet the same redirect.
		return sameResult(unit, core.Refused("onboard", s.redact(refused.Error()), nil))
	}
	if err != nil {
		return sameResult(unit, core.Unavailable("onboard", 0, err))
	}
	defer resp.Body.Close()
	answer := io.LimitReader(resp.Body, maxBulkAnswerBytes)
	if resp.StatusCode != http.StatusMultiStatus {
		return sameResult(unit, s.wholeBodyError(resp, answer))
	}
	var elements []bulkAnswer
	if err := json.NewDecoder(answer).Decode(&elements); err != nil || len(elements) != len(unit) || slices.ContainsFunc(elements, func(e bulkAnswer) bool { return e.HTTPStatus == 0 }) {
		// Resending would meet the same answer: the URL is not the onboard
		// function, or not a version that answers bulk bodies like this one.
		return sameResult(unit, &core.Error{Status: http.StatusBadGateway, Target: "onboard",
			Message: fmt.Sprintf("the 207 answer to a body of %d rows does not have one element with an http_status per row: is --via the onboard HTTP function?", len(unit))})
	}
	results := make([]rowResult, len(unit))
	for i, e := range elements {
		if e.HTTPStatus == http.StatusOK {
			results[i].status = core.Status(e.Status)
			continue
		}
		msg := e.Error
		if msg == "" {
			msg = http.StatusText(e.HTTPStatus)
		}
		results[i].err = &core.Error{Status: e.HTTPStatus, Message: s.redact(msg), RetryAfter: time.Duration(e.RetryAfter) * time.Second}
	}
	return results
}

// wholeBodyError is an answer for the body as a whole: authentication,
// max_deprovision, size, or the function itself failing.
func (s *httpSender) wholeBodyError(resp *http.Response, answer io.Reader) *core.Error {
	if resp.StatusCode < 300 {
		return &core.Error{Status: http.StatusBadGateway, Target: "onboard",
			Message: fmt.Sprintf("answered %s to a bulk body, not 207 Multi-Status: is --via the onboard HTTP function?", resp.Status)}
	}
	var body struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(answer).Decode(&body)
	msg := body.Error
	if msg == "" {
		msg = resp.Status
	}
	retryAfter, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return &core.Error{Status: resp.StatusCode, Message: s.redact(msg), RetryAfter: time.Duration(retryAfter) * time.Second}
}

// redact keeps the secret out of failures files and output when a wrong URL
// echoes the request back.
func (s *httpSender) redact(msg string) string {
	return strings.ReplaceAll(msg, s.secret, "[webhook secret]")
}

func (s *httpSender) close() {}

// pubsubSender publishes a row at a time: the client library batches
// publishes already.
type pubsubSender struct {
	client    *pubsub.Client
	publisher *pubsub.Publisher
}

func (s *pubsubSender) units(rows []row) [][]row { return singleRows(rows) }

func (s *pubsubSender) sendsInFlight(concurrency int) int { return concurrency }

func (s *pubsubSender) send(ctx context.Context, unit []row) []rowResult {
	body, key := queuedRequest(unit[0])
	if _, err := s.publisher.Publish(ctx, &pubsub.Message{Data: body, Attributes: map[string]string{"idempotency_key": key}}).Get(ctx); err != nil {
		return []rowResult{{err: core.Unavailable("pubsub", 0, err)}}
	}
	return []rowResult{{status: statusQueued}}
}

func (s *pubsubSender) close() {
	s.publisher.Stop()
	_ = s.client.Close()
}

// SendMessageBatch's limits: entries per call, and the size of their
// bodies and attributes together (256 KiB where SQS has not raised it).
const (
	sqsBatchEntries = 10
	sqsBatchBytes   = 256 << 10
)

type sqsSender struct {
	client *sqs.Client
	queue  string
}

func (s *sqsSender) units(rows []row) [][]row {
	return chunkRows(rows, sqsBatchEntries, sqsBatchBytes, func(r row) int {
		body, key := queuedRequest(r)
		return len(body) + len("idempotency_key") + len("String") + len(key)
	})
}

// sendsInFlight: queued rows are worked on by the bundle, later, so the
// bound is on calls to SQS.
func (s *sqsSender) sendsInFlight(concurrency int) int { return concurrency }

func (s *sqsSender) send(ctx context.Context, unit []row) []rowResult {
	entries := make([]sqstypes.SendMessageBatchRequestEntry, len(unit))
	for i, r := range unit {
		body, key := queuedRequest(r)
		entries[i] = sqstypes.SendMessageBatchRequestEntry{
			Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(body)),
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{
				"idempotency_key": {DataType: aws.String("String"), StringValue: aws.String(key)},
			},
		}
	}
	out, err := s.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(s.queue), Entries: entries})
	if err != nil {
		return sameResult(unit, core.Unavailable("sqs", 0, err))
	}
	// An entry SQS does not mention is resent: its key makes that safe.
	results := sameResult(unit, core.Unavailable("sqs", 0, errors.New("SendMessageBatch did not report this entry")))
	entry := func(id *string) int {
		i, err := strconv.Atoi(aws.ToString(id))
		if err != nil || i < 0 || i >= len(unit) {
			return -1
		}
		return i
	}
	for _, ok := range out.Successful {
		if i := entry(ok.Id); i >= 0 {
			results[i] = rowResult{status: statusQueued}
		}
	}
	for _, f := range out.Failed {
		i := entry(f.Id)
		if i < 0 {
			continue
		}
		why := aws.ToString(f.Code) + ": " + aws.ToString(f.Message)
		if f.SenderFault {
			results[i] = rowResult{err: core.Refused("sqs", why, nil)}
		} else {
			results[i] = rowResult{err: core.Unavailable("sqs", 0, errors.New(why))}
		}
	}
	return results
}

func (s *sqsSender) close() {}
