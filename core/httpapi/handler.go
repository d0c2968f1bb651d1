// Package httpapi is onboard's HTTP face: one http.Handler that every HTTP
// trigger (Cloud Functions, Lambda behind API Gateway, make run) serves, so
// authentication, parsing and answers are the same everywhere.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/runner"
)

// BulkConcurrency bounds how many items of one bulk body run at once, so one
// big paste cannot trip a target's rate limit on its own. Clients that send
// many bodies (onboard import --via) divide their own bound by it.
const BulkConcurrency = 4

// Handler answers at "/" (provision) and "/healthz".
type Handler struct {
	Engine *core.Engine
	Auth   *WebhookAuth
	Log    *slog.Logger
	// Redactor masks every secret in every answer body: an error's text may
	// quote what an upstream echoed. Nil masks nothing (tests).
	Redactor *logging.Redactor
	// SCIM answers under /scim/v2 (core/scim), with its own credential;
	// nil leaves those paths 404.
	SCIM http.Handler
}

// scimPath is where the SCIM front door answers.
const scimPath = "/scim/v2"

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		// Answers without authentication and without touching a target, so a
		// load balancer or uptime check can call it freely.
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "use GET"})
			return
		}
		h.writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case "/":
		h.provision(w, r)
	default:
		if h.SCIM != nil && (r.URL.Path == scimPath || strings.HasPrefix(r.URL.Path, scimPath+"/")) {
			h.SCIM.ServeHTTP(w, r)
			return
		}
		h.writeJSON(w, http.StatusNotFound, errorBody{Error: "not found: POST requests to /"})
	}
}

type errorBody struct {
	Error     string                       `json:"error"`
	Field     string                       `json:"field,omitempty"`
	Targets   map[string]core.TargetResult `json:"targets,omitempty"`
	RequestID string                       `json:"request_id,omitempty"`
}

func (h *Handler) provision(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "use POST"})
		return
	}
	requestID := core.NewRequestID()
	w.Header().Set("X-Request-Id", requestID)
	log := h.logger().With("request_id", requestID)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, core.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: "body larger than 1 MiB"})
			return
		}
		h.writeJSON(w, http.StatusBadRequest, errorBody{Error: "could not read the body"})
		return
	}
	if err := h.Auth.Verify(r.Context(), r.Header, body); err != nil {
		if errors.Is(err, ErrAuthUnavailable) {
			log.Error("webhook authentication could not be checked", "error", err.Error())
			w.Header().Set("Retry-After", strconv.Itoa(int(core.DefaultRetryAfterUnavailable.Seconds())))
			h.writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "temporarily unavailable, retry later"})
			return
		}
		log.Warn("webhook authentication failed", "reason", err.Error(), "remote", r.RemoteAddr)
		h.writeJSON(w, http.StatusUnauthorized, errorBody{Error: "unauthorized"})
		return
	}
	items, bulk, err := ParseBody(r.Header.Get("Content-Type"), body)
	if err != nil {
		refusal := core.AsError(err)
		log.Warn("request rejected", "status", refusal.Status, "field", refusal.Field, "reason", refusal.Message)
		rep := errorReply(err, nil, requestID)
		h.writeJSON(w, rep.httpStatus, rep.body)
		return
	}
	meta := core.Meta{RequestID: requestID, Trigger: "http"}
	if !bulk {
		rep := h.answerAll(r.Context(), items, meta)[0]
		if rep.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(rep.retryAfter))
		}
		h.writeJSON(w, rep.httpStatus, rep.body)
		return
	}
	var valid []core.Request
	for _, it := range items {
		if it.Err == nil {
			valid = append(valid, it.Request)
		}
	}
	if err := h.Engine.Config.CheckBulk(valid, false); err != nil {
		log.Warn("bulk request refused", "reason", core.AsError(err).Message)
		rep := errorReply(err, nil, requestID)
		h.writeJSON(w, rep.httpStatus, rep.body)
		return
	}
	h.writeJSON(w, http.StatusMultiStatus, h.answerAll(r.Context(), items, meta))
}

// reply is the answer to one request. In a 207 bulk answer each element is
// the single-request body plus its own http_status (and retry_after), so a
// caller can resend exactly the items that need it.
type reply struct {
	httpStatus int
	body       any
	retryAfter int // seconds
}

// MarshalJSON flattens the body into the element, next to http_status.
func (r reply) MarshalJSON() ([]byte, error) {
	inner, err := json.Marshal(r.body)
	if err != nil {
		return nil, err
	}
	head := `{"http_status":` + strconv.Itoa(r.httpStatus)
	if r.retryAfter > 0 {
		head += `,"retry_after":` + strconv.Itoa(r.retryAfter)
	}
	if len(inner) <= 2 { // "{}"
		return []byte(head + "}"), nil
	}
	return append([]byte(head+","), inner[1:]...), nil
}

// answerAll runs the body's requests as one event batch, so targets that
// serve many people in one call (AAC) make that call once for the whole
// body, and answers each. A bulk body's items get request ids of their own.
func (h *Handler) answerAll(ctx context.Context, parsed []BodyItem, meta core.Meta) []reply {
	items := make([]runner.Item, len(parsed))
	for i, p := range parsed {
		m := meta
		if len(parsed) > 1 {
			m.RequestID = runner.ItemRequestID(meta.RequestID, i)
		}
		items[i] = runner.Item{Request: p.Request, Err: p.Err, Meta: m}
	}
	out := make([]reply, len(items))
	for i, o := range runner.Run(ctx, h.Engine, items, BulkConcurrency, nil) {
		if o.Err != nil {
			out[i] = errorReply(o.Err, o.Result.Targets, items[i].Meta.RequestID)
			continue
		}
		out[i] = reply{httpStatus: http.StatusOK, body: o.Result}
	}
	return out
}

func errorReply(err error, targets map[string]core.TargetResult, requestID string) reply {
	e := core.AsError(err)
	rep := reply{httpStatus: e.Status, body: bodyOf(e, targets, requestID)}
	if e.RetryAfter > 0 && e.Retryable() {
		rep.retryAfter = int(math.Ceil(e.RetryAfter.Seconds()))
	}
	return rep
}

func bodyOf(e *core.Error, targets map[string]core.TargetResult, requestID string) errorBody {
	msg := e.Error()
	if e.Status >= 500 && e.Status != http.StatusBadGateway && e.Status != http.StatusServiceUnavailable {
		msg = "internal error" // its cause is in the log under this request id
	}
	if e.Field != "" {
		msg = e.Message
	}
	if len(targets) == 0 {
		targets = nil
	}
	return errorBody{Error: msg, Field: e.Field, Targets: targets, RequestID: requestID}
}

// writeJSON is the one way an answer leaves: through the redactor.
func (h *Handler) writeJSON(w http.ResponseWriter, status int, body any) {
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(h.Redactor.RedactJSON(buf.Bytes()))
}

func (h *Handler) logger() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}
