package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/functions/aws/lambdaapi"
	"github.com/onboard-dev/onboard/functions/gcp"
)

// localHandler serves, next to the HTTP function, the event entry points
// the clouds call, so events (testdata/events/) can be sent to make run and
// go through exactly the translation code a deployment runs:
//
//	POST /_local/pubsub  a Pub/Sub push body, answered as Pub/Sub push expects (2xx acks, 500 redelivers)
//	POST /_local/lambda  any Lambda event (SQS batch, API Gateway v1 or v2), answered with the function's result
func localHandler(instance *app.Instance, log *slog.Logger) http.Handler {
	pubsub := gcp.New(instance)
	lambda := lambdaapi.New(instance, log, 0)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_local/pubsub", func(w http.ResponseWriter, r *http.Request) {
		body, ok := readEvent(w, r)
		if !ok {
			return
		}
		// What the functions framework makes of a raw push to /projects/P/topics/T.
		e := cloudevents.NewEvent()
		e.SetID(core.NewRequestID())
		e.SetType("google.cloud.pubsub.topic.v1.messagePublished")
		e.SetSource("//pubsub.googleapis.com/projects/local/topics/local")
		if err := e.SetData(cloudevents.ApplicationJSON, json.RawMessage(body)); err != nil {
			writeLocal(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if err := pubsub.ProvisionPubSub(r.Context(), e); err != nil {
			writeLocal(w, http.StatusInternalServerError, map[string]string{"error": err.Error(), "pubsub": "nack: would be redelivered"})
			return
		}
		writeLocal(w, http.StatusOK, map[string]string{"pubsub": "ack"})
	})
	mux.HandleFunc("POST /_local/lambda", func(w http.ResponseWriter, r *http.Request) {
		body, ok := readEvent(w, r)
		if !ok {
			return
		}
		out, err := lambda.Handle(r.Context(), body)
		if err != nil {
			writeLocal(w, http.StatusInternalServerError, map[string]string{"errorMessage": err.Error()})
			return
		}
		writeLocal(w, http.StatusOK, out)
	})
	mux.Handle("/", instance)
	return mux
}

func readEvent(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	// Events wrap a request body, so they may be somewhat larger than one.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 2*core.MaxBodyBytes))
	if err != nil {
		writeLocal(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "event larger than 2 MiB"})
		return nil, false
	}
	return body, true
}

func writeLocal(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
