package gcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/runner"
)

const pubsubTrigger = "pubsub"

// taskAttribute marks a message as a maintenance task (app.Tasks) rather
// than a request: Cloud Scheduler publishes one daily to the same topic, so
// the task reuses the push subscription's retries and dead-letter alert.
const taskAttribute = "onboard_task"

// messagePublished is the data of a google.cloud.pubsub.topic.v1.messagePublished
// CloudEvent, which is also the body of a Pub/Sub push request. Google ships
// no Go type for it (google-cloudevents-go skips Pub/Sub).
type messagePublished struct {
	Subscription string         `json:"subscription"`
	Message      *pubsubMessage `json:"message"`
}

type pubsubMessage struct {
	Data       []byte            `json:"data"` // base64 on the wire; encoding/json decodes it
	Attributes map[string]string `json:"attributes"`
	ID         string            `json:"messageId"`
	// Push bodies have long carried snake_case twins of these two; a sender
	// that only has those must still get the message id as idempotency key.
	LegacyID          string `json:"message_id"`
	PublishTime       string `json:"publishTime"`
	LegacyPublishTime string `json:"publish_time"`
}

// ProvisionPubSub runs the request in one Pub/Sub message. Eventarc triggers
// deliver it as a CloudEvent; a push subscription whose endpoint path is
// /projects/P/topics/T posts the raw envelope, which the functions framework
// turns into the same CloudEvent.
//
// A returned error makes the framework answer 500, so Pub/Sub redelivers;
// nil answers 200, which acknowledges. The core decides which is which.
//
// A message with the onboard_task attribute runs that task instead; its
// data is ignored.
//
// The framework puts a returned error's text into its answer and log, so it
// passes through the redactor: a cause may quote what an upstream echoed.
func (f *Functions) ProvisionPubSub(ctx context.Context, e cloudevents.Event) error {
	return f.instance.RedactError(f.provisionPubSub(ctx, e))
}

func (f *Functions) provisionPubSub(ctx context.Context, e cloudevents.Event) error {
	a, err := f.instance.ForRequest(ctx)
	if err != nil {
		// The instance could not start (the log says why): a configuration
		// fix and redeploy will let this message through, so keep it.
		return errors.New("onboard is not ready; the message will be redelivered (see the start-up error in the logs)")
	}
	meta := core.Meta{RequestID: core.NewRequestID(), Trigger: pubsubTrigger}
	log := a.Log.With("request_id", meta.RequestID, "trigger", pubsubTrigger, "event_id", e.ID())
	env, err := decodeMessagePublished(e)
	if err != nil {
		// No redelivery can make an unreadable envelope readable.
		log.Error("Pub/Sub event dropped: it is not a readable Pub/Sub message", "event_type", e.Type(), "reason", err.Error())
		return nil
	}
	msg := env.Message
	meta.MessageID = msg.ID
	log.Debug("Pub/Sub message received", "message_id", msg.ID, "publish_time", msg.PublishTime,
		"subscription", env.Subscription, "source", e.Source())

	if task, ok := msg.Attributes[taskAttribute]; ok {
		return runTask(ctx, a, log.With("message_id", msg.ID), task)
	}
	out := runner.HandleMessage(ctx, a.Engine, msg.Data, msg.Attributes, meta)
	if out.Retry {
		return fmt.Errorf("message %s will be redelivered: %w", msg.ID, out.Err)
	}
	return nil
}

// runTask runs a scheduled task. An unknown name is acknowledged: no
// redelivery can make it known, and a mistyped schedule must not loop until
// the dead-letter topic; its ERROR line repeats at each firing instead. A
// failed task asks for redelivery: tasks are idempotent, and after
// max_delivery_attempts the dead-letter alert tells someone.
func runTask(ctx context.Context, a *app.App, log *slog.Logger, name string) error {
	err := a.RunTask(ctx, name, log)
	if errors.Is(err, app.ErrUnknownTask) {
		return nil
	}
	return err
}

// decodeMessagePublished reads the envelope and fills the message id and
// publish time from whichever spelling carried them.
func decodeMessagePublished(e cloudevents.Event) (*messagePublished, error) {
	if len(e.Data()) == 0 {
		return nil, errors.New("the event has no data")
	}
	// Not e.DataAs: its errors quote the whole payload, personal data
	// included, into the log line.
	var env messagePublished
	if err := json.Unmarshal(e.Data(), &env); err != nil {
		return nil, err
	}
	msg := env.Message
	if msg == nil {
		return nil, errors.New(`the event data has no "message"`)
	}
	// Eventarc's event id is the message id.
	msg.ID = firstNonEmpty(core.CleanMessageID(msg.ID), core.CleanMessageID(msg.LegacyID), core.CleanMessageID(e.ID()))
	msg.PublishTime = firstNonEmpty(msg.PublishTime, msg.LegacyPublishTime)
	return &env, nil
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
