package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/onboard-dev/onboard/core"
)

// statusQueued is a row handed to a deployed bundle's queue: the bundle
// runs it later, so the CLI only knows it was accepted.
const statusQueued core.Status = "queued"

// sender delivers one row somewhere other than the local engine.
type sender interface {
	send(ctx context.Context, r row) rowResult
	close()
}

// openVia parses --via: an https URL (the HTTP function), pubsub:TOPIC or
// sqs:QUEUE_URL. Each row carries its content's fingerprint as idempotency
// key, so importing the same file again is deduplicated by the bundle.
func openVia(ctx context.Context, via string) (sender, error) {
	switch {
	case strings.HasPrefix(via, "http://") || strings.HasPrefix(via, "https://"):
		secret := os.Getenv("ONBOARD_WEBHOOK_SECRET")
		if secret == "" {
			return nil, errors.New("--via " + via + ": set ONBOARD_WEBHOOK_SECRET to the deployed function's webhook secret")
		}
		return &httpSender{url: via, secret: secret, client: &http.Client{Timeout: 2 * time.Minute}}, nil
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
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("--via %s: %w", via, err)
		}
		return &sqsSender{client: sqs.NewFromConfig(cfg), queue: queue}, nil
	}
	return nil, fmt.Errorf("--via %q: use http(s)://FUNCTION_URL, pubsub:projects/P/topics/T or sqs:QUEUE_URL", via)
}

// wireRequest is the row as the bundle receives it, with its key.
func wireRequest(r row) ([]byte, string) {
	req := r.req
	if req.IdempotencyKey == "" {
		req.IdempotencyKey = "import-" + req.Fingerprint()
	}
	b, _ := json.Marshal(req)
	return b, req.IdempotencyKey
}

type httpSender struct {
	url, secret string
	client      *http.Client
}

func (s *httpSender) send(ctx context.Context, r row) rowResult {
	body, _ := wireRequest(r)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return rowResult{err: &core.Error{Status: 400, Message: err.Error()}}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.secret)
	resp, err := s.client.Do(req)
	if err != nil {
		return rowResult{err: core.Unavailable("onboard", 0, err)}
	}
	defer resp.Body.Close()
	var answer struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&answer)
	if resp.StatusCode == http.StatusOK {
		return rowResult{status: core.Status(answer.Status)}
	}
	retryAfter, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	msg := answer.Error
	if msg == "" {
		msg = resp.Status
	}
	return rowResult{err: &core.Error{Status: resp.StatusCode, Message: msg, RetryAfter: time.Duration(retryAfter) * time.Second}}
}

func (s *httpSender) close() {}

type pubsubSender struct {
	client    *pubsub.Client
	publisher *pubsub.Publisher
}

func (s *pubsubSender) send(ctx context.Context, r row) rowResult {
	body, key := wireRequest(r)
	if _, err := s.publisher.Publish(ctx, &pubsub.Message{Data: body, Attributes: map[string]string{"idempotency_key": key}}).Get(ctx); err != nil {
		return rowResult{err: core.Unavailable("pubsub", 0, err)}
	}
	return rowResult{status: statusQueued}
}

func (s *pubsubSender) close() {
	s.publisher.Stop()
	_ = s.client.Close()
}

type sqsSender struct {
	client *sqs.Client
	queue  string
}

func (s *sqsSender) send(ctx context.Context, r row) rowResult {
	body, key := wireRequest(r)
	_, err := s.client.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: aws.String(s.queue), MessageBody: aws.String(string(body)),
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"idempotency_key": {DataType: aws.String("String"), StringValue: aws.String(key)},
		},
	})
	if err != nil {
		return rowResult{err: core.Unavailable("sqs", 0, err)}
	}
	return rowResult{status: statusQueued}
}

func (s *sqsSender) close() {}
