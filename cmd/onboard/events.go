package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"

	"github.com/onboard-dev/onboard/core/httpapi"

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
//
// In the cloud only the platform can deliver such events; here anyone who
// reaches the port could, so each needs the webhook credential, checked by
// auth: the one the HTTP function uses, so a signature is accepted once
// across all routes.
func localHandler(instance *app.Instance, auth *httpapi.WebhookAuth, log *slog.Logger) *http.ServeMux {
	pubsub := gcp.New(instance)
	lambda := lambdaapi.New(instance, log, 0)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_local/pubsub", authenticated(auth, log, func(w http.ResponseWriter, r *http.Request, body []byte) {
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
	}))
	mux.HandleFunc("POST /_local/lambda", authenticated(auth, log, func(w http.ResponseWriter, r *http.Request, body []byte) {
		out, err := lambda.Handle(r.Context(), body)
		if err != nil {
			writeLocal(w, http.StatusInternalServerError, map[string]string{"errorMessage": err.Error()})
			return
		}
		writeLocal(w, http.StatusOK, out)
	}))
	mux.Handle("/", instance)
	return mux
}

// authenticated reads an event and hands it on only when it carries the
// webhook credential (a bearer token, or a signature over the raw event
// body), answering 401 as the HTTP function does otherwise.
func authenticated(auth *httpapi.WebhookAuth, log *slog.Logger, next func(http.ResponseWriter, *http.Request, []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, ok := readEvent(w, r)
		if !ok {
			return
		}
		if err := auth.Verify(r.Context(), r.Header, body); err != nil {
			log.Warn("webhook authentication failed", "path", r.URL.Path, "reason", err.Error(), "remote", r.RemoteAddr)
			writeLocal(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
			return
		}
		next(w, r, body)
	}
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
