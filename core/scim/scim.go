// Package scim is onboard's SCIM 2.0 front door (RFC 7643/7644) at
// /scim/v2: Okta and Microsoft Entra ID keep their users and groups in
// onboard's directory (in the state store), and onboard provisions each
// active user into the profile their groups map to (scim_groups), and
// deprovisions leavers, through the engine every other source uses.
//
// Schemas, filters and error bodies come from github.com/elimity-com/scim
// (its schema, filter and errors packages); the HTTP layer is onboard's:
// that library's server cannot answer 429 or 503 with Retry-After (the
// breaker's and a target's retry-later), nor honour If-Match or
// attributes/excludedAttributes, and leaves PATCH application to its caller.
package scim

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	scimerrors "github.com/elimity-com/scim/errors"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/state"
)

// BasePath is where the SCIM server answers on the HTTP function.
const BasePath = "/scim/v2"

// contentType is SCIM's media type (RFC 7644 section 3.1).
const contentType = "application/scim+json"

// Server answers SCIM requests under BasePath.
type Server struct {
	Engine *core.Engine
	Store  state.Store
	// Token reads ONBOARD_SCIM_TOKEN now (from the secret cache), so a
	// rotated token is honoured without a redeploy. "" refuses everyone.
	Token    func(context.Context) (string, error)
	Log      *slog.Logger
	Redactor *logging.Redactor
	Now      func() time.Time
}

// scimError is a failure with its SCIM answer.
type scimError struct {
	status     int
	scimType   scimerrors.ScimType
	detail     string
	retryAfter time.Duration
	cause      error // for the log only
}

func (e *scimError) Error() string {
	msg := strconv.Itoa(e.status) + " " + string(e.scimType) + ": " + e.detail
	if e.cause != nil {
		msg += ": " + e.cause.Error()
	}
	return msg
}

func (e *scimError) Unwrap() error { return e.cause }

func invalidValue(detail string) *scimError {
	return &scimError{status: http.StatusBadRequest, scimType: scimerrors.ScimTypeInvalidValue, detail: detail}
}

func notFound(kind, id string) *scimError {
	return &scimError{status: http.StatusNotFound, detail: "no " + kind + " with id " + strconv.Quote(id)}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := core.NewRequestID()
	w.Header().Set("X-Request-Id", requestID)
	log := cmp.Or(s.Log, slog.Default()).With("request_id", requestID, "trigger", "scim", "method", r.Method, "path", r.URL.Path)
	if err := s.authenticate(r); err != nil {
		var se *scimError
		if errors.As(err, &se) && se.status == http.StatusServiceUnavailable {
			s.fail(w, log, err)
			return
		}
		log.Warn("SCIM authentication failed", "reason", err.Error(), "remote", r.RemoteAddr)
		s.fail(w, log, &scimError{status: http.StatusUnauthorized, detail: "unauthorized"})
		return
	}
	ctx := withCall(r.Context(), call{requestID: requestID, log: log, base: baseURL(r)})
	status, body, err := s.route(ctx, r)
	if err != nil {
		s.fail(w, log, err)
		return
	}
	if res, ok := body.(rendered); ok && res.etag != "" {
		w.Header().Set("ETag", res.etag)
		if status == http.StatusCreated {
			w.Header().Set("Location", res.location)
		}
	}
	s.write(w, status, body)
}

// authenticate checks the bearer token against ONBOARD_SCIM_TOKEN.
func (s *Server) authenticate(r *http.Request) error {
	want, err := s.Token(r.Context())
	if err != nil {
		return &scimError{status: http.StatusServiceUnavailable, detail: "temporarily unavailable, retry later", retryAfter: core.DefaultRetryAfterUnavailable, cause: err}
	}
	if want == "" {
		return errors.New("no SCIM token configured (ONBOARD_SCIM_TOKEN); refusing every SCIM request")
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return errors.New("no bearer token")
	}
	// Hashing first makes the comparison constant-time in the length too.
	a, b := sha256.Sum256([]byte(want)), sha256.Sum256([]byte(strings.TrimSpace(token)))
	if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		return errors.New("wrong bearer token")
	}
	return nil
}

func (s *Server) route(ctx context.Context, r *http.Request) (int, any, error) {
	path := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, BasePath), "/")
	endpoint, id, hasID := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if r.Method != http.MethodGet && (endpoint == "ServiceProviderConfig" || endpoint == "ResourceTypes" || endpoint == "Schemas") {
		return 0, nil, &scimError{status: http.StatusMethodNotAllowed, detail: "use GET"}
	}
	switch endpoint {
	case "ServiceProviderConfig":
		return http.StatusOK, serviceProviderConfig(), nil
	case "ResourceTypes":
		return discovery(id, hasID, resourceTypeDocs(), "resource type")
	case "Schemas":
		return discovery(id, hasID, schemaDocs(), "schema")
	}
	rt := resourceTypeAt(endpoint)
	if rt == nil {
		return 0, nil, &scimError{status: http.StatusNotFound, detail: "no such endpoint: use /Users, /Groups, /Schemas, /ResourceTypes or /ServiceProviderConfig"}
	}
	h := handler{s: s, rt: rt, dir: &directory{store: s.Store, now: s.now}}
	switch {
	case !hasID && r.Method == http.MethodGet:
		return h.list(ctx, r.URL.Query())
	case !hasID && r.Method == http.MethodPost:
		return withBody(r, func(body map[string]any) (int, any, error) { return h.create(ctx, r, body) })
	case hasID && r.Method == http.MethodGet:
		return h.read(ctx, r, id)
	case hasID && r.Method == http.MethodPut:
		return withBody(r, func(body map[string]any) (int, any, error) { return h.replace(ctx, r, id, body) })
	case hasID && r.Method == http.MethodPatch:
		return withBody(r, func(body map[string]any) (int, any, error) { return h.patch(ctx, r, id, body) })
	case hasID && r.Method == http.MethodDelete:
		return h.delete(ctx, r, id)
	}
	return 0, nil, &scimError{status: http.StatusMethodNotAllowed, detail: "method not allowed here"}
}

// withBody reads a JSON object body (numbers kept exact) and hands it on.
func withBody(r *http.Request, next func(map[string]any) (int, any, error)) (int, any, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, core.MaxBodyBytes+1))
	if err != nil {
		return 0, nil, &scimError{status: http.StatusBadRequest, scimType: scimerrors.ScimTypeInvalidSyntax, detail: "could not read the body"}
	}
	if len(data) > core.MaxBodyBytes {
		return 0, nil, &scimError{status: http.StatusRequestEntityTooLarge, detail: "body larger than 1 MiB"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var body map[string]any
	if err := dec.Decode(&body); err != nil || dec.More() {
		return 0, nil, &scimError{status: http.StatusBadRequest, scimType: scimerrors.ScimTypeInvalidSyntax, detail: "the body is not one JSON object"}
	}
	return next(body)
}

func discovery(id string, hasID bool, docs []map[string]any, what string) (int, any, error) {
	if !hasID {
		return http.StatusOK, listResponse(docs, len(docs), 1), nil
	}
	for _, d := range docs {
		if d["id"] == id {
			return http.StatusOK, d, nil
		}
	}
	return 0, nil, &scimError{status: http.StatusNotFound, detail: "no " + what + " " + strconv.Quote(id)}
}

func listResponse(resources []map[string]any, total, startIndex int) map[string]any {
	if resources == nil {
		resources = []map[string]any{}
	}
	return map[string]any{
		"schemas":      []string{"urn:ietf:params:scim:api:messages:2.0:ListResponse"},
		"totalResults": total,
		"startIndex":   startIndex,
		"itemsPerPage": len(resources),
		"Resources":    resources,
	}
}

// fail answers err as a SCIM error body. Anything that is not a
// scimError is an internal error, whose text stays in the log.
func (s *Server) fail(w http.ResponseWriter, log *slog.Logger, err error) {
	var se *scimError
	if !errors.As(err, &se) {
		se = &scimError{status: http.StatusInternalServerError, detail: "internal error", cause: err}
	}
	switch {
	case se.status >= 500:
		log.Error("SCIM request failed", "status", se.status, "error", se.Error())
	case se.status != http.StatusUnauthorized:
		log.Warn("SCIM request refused", "status", se.status, "scim_type", string(se.scimType), "detail", se.detail)
	}
	if se.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(se.retryAfter.Seconds()))))
	}
	s.write(w, se.status, scimerrors.ScimError{ScimType: se.scimType, Detail: se.detail, Status: se.status})
}

// write is the one way an answer leaves: through the redactor.
func (s *Server) write(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	if res, ok := body.(rendered); ok {
		body = res.attrs
	}
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(body)
	w.WriteHeader(status)
	_, _ = w.Write(s.Redactor.RedactJSON(buf.Bytes()))
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// call is what one SCIM request's work needs beyond its arguments.
type call struct {
	requestID string
	log       *slog.Logger
	base      string // the absolute URL of BasePath, for meta.location
}

type callKey struct{}

func withCall(ctx context.Context, c call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

func callFrom(ctx context.Context) call {
	c, _ := ctx.Value(callKey{}).(call)
	if c.log == nil {
		c.log = slog.Default()
	}
	return c
}

// baseURL is BasePath's absolute URL, for locations the IdP may follow.
// Any caller can send X-Forwarded-* headers, so the host is the
// request's own, never X-Forwarded-Host: on Lambda it is API Gateway's
// domain from the event, Cloud Functions' front routes by it (so it names
// this service), and locally it is what the caller typed. The scheme is the
// request URL's where an adapter built the request from an absolute URL
// (Lambda's: https), https over TLS, else X-Forwarded-Proto (Cloud
// Functions' front sets it) when it says http or https and nothing else,
// else http.
func baseURL(r *http.Request) string {
	scheme := "http"
	switch proto := strings.ToLower(r.Header.Get("X-Forwarded-Proto")); {
	case r.URL.Scheme == "https" || r.URL.Scheme == "http":
		scheme = r.URL.Scheme
	case r.TLS != nil:
		scheme = "https"
	case proto == "https" || proto == "http":
		scheme = proto
	}
	return (&url.URL{Scheme: scheme, Host: r.Host, Path: BasePath}).String()
}
