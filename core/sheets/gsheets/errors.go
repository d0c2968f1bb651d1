package gsheets

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/googleapi"

	"github.com/onboard-dev/onboard/core/internal/httpretry"
	"github.com/onboard-dev/onboard/core/logging"
)

// What went wrong, for errors.Is: each needs an admin to act, and no retry
// will do.
var (
	// ErrNotShared: the spreadsheet is not shared with onboard's account.
	ErrNotShared = errors.New("spreadsheet not shared with onboard")
	// ErrReadOnly: onboard's account may read the spreadsheet, not write it.
	ErrReadOnly = errors.New("spreadsheet shared with onboard as Viewer")
	// ErrNoSpreadsheet: no spreadsheet has this id.
	ErrNoSpreadsheet = errors.New("no such spreadsheet")
	// ErrNoTab: the spreadsheet has no tab of that name.
	ErrNoTab = errors.New("no such tab")
	// ErrCredentials: Google refused onboard's credentials.
	ErrCredentials = errors.New("Google refused the credentials")
)

// Error is a call Google answered with an error, worded for the admin who
// can fix it: what failed, on which spreadsheet, and what to do. It holds
// no credential: Google's own message is kept only with every token the
// client sent masked out of it.
type Error struct {
	Spreadsheet string
	// Status is the HTTP status; Code is Google's (PERMISSION_DENIED...),
	// "" when the answer was not Google's JSON error.
	Status     int
	Code       string
	RetryAfter time.Duration
	kind       error
	msg        string
}

func (e *Error) Error() string { return e.msg }

// Is matches the sentinel error saying what went wrong.
func (e *Error) Is(target error) bool { return e.kind != nil && target == e.kind }

// RetryStatus makes the error one the shared retry discipline reads.
func (e *Error) RetryStatus() (int, time.Duration) { return e.Status, e.RetryAfter }

// Google's messages the client tells apart.
const (
	msgNoPermission       = "The caller does not have permission"
	msgScopes             = "Request had insufficient authentication scopes."
	msgUnparsableRange    = "Unable to parse range: "
	maxMessage            = 300
	quotaWindow           = time.Minute
	codeResourceExhausted = "RESOURCE_EXHAUSTED"
)

// call says what a failed call was doing, for its error.
type call struct {
	spreadsheet string
	tab         string // "" when the call names none
	write       bool
}

// googleBody is Google's JSON error answer.
type googleBody struct {
	Error struct {
		Message string            `json:"message"`
		Status  string            `json:"status"`
		Details []json.RawMessage `json:"details"`
	} `json:"error"`
}

// answerError turns what the generated client returned into an error that
// the retry discipline can read (*Error, *httpretry.TransportError) and an
// admin can act on.
func (c *Client) answerError(op string, at call, err error) error {
	if err == nil {
		return nil
	}
	if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
		return c.tokenError(re)
	}
	if ge, ok := errors.AsType[*googleapi.Error](err); ok {
		return c.apiError(at, ge)
	}
	if _, ok := errors.AsType[*Error](err); ok {
		return err
	}
	// No usable answer: refused, reset, timed out, garbled, or the token
	// endpoint out of reach. The text names the operation, never a URL.
	return &httpretry.TransportError{Service: Name, Operation: op, Err: httpretry.StripURL(err)}
}

func (c *Client) apiError(at call, ge *googleapi.Error) *Error {
	var body googleBody
	_ = json.Unmarshal([]byte(ge.Body), &body) // a body that is not Google's (a proxy's page) says nothing
	message := c.scrub(body.Error.Message)
	e := &Error{Spreadsheet: at.spreadsheet, Status: ge.Code, Code: body.Error.Status}
	e.RetryAfter = retryAfter(ge, body)
	where := "spreadsheet " + at.spreadsheet
	switch {
	case ge.Code == http.StatusForbidden && message == msgNoPermission && at.write:
		e.kind = ErrReadOnly
		e.msg = fmt.Sprintf("sheets: %s may read %s but not write it: share it with %s as Editor", c.identity(), where, c.shareWith())
	case ge.Code == http.StatusForbidden && message == msgNoPermission:
		e.kind = ErrNotShared
		e.msg = fmt.Sprintf("sheets: %s is not shared with %s: share it with %s as Editor", where, c.identity(), c.shareWith())
	case ge.Code == http.StatusForbidden && message == msgScopes:
		e.kind = ErrCredentials
		e.msg = fmt.Sprintf("sheets: the credentials of %s lack the spreadsheets scope (%s); with gcloud: gcloud auth application-default login --scopes=%s,https://www.googleapis.com/auth/cloud-platform",
			c.identity(), c.credentialSource, Scope)
	case ge.Code == http.StatusUnauthorized:
		e.kind = ErrCredentials
		e.msg = fmt.Sprintf("sheets: Google did not accept the access token of %s (401): check %s", c.identity(), c.credentialSource)
	case ge.Code == http.StatusNotFound:
		e.kind = ErrNoSpreadsheet
		e.msg = fmt.Sprintf("sheets: %s does not exist: check spreadsheet_id, the part of the sheet's address between /d/ and /edit", where)
	case ge.Code == http.StatusBadRequest && strings.Contains(message, msgUnparsableRange) && at.tab != "":
		e.kind = ErrNoTab
		e.msg = fmt.Sprintf("sheets: %s has no tab %q (renamed or deleted?): check sheet", where, at.tab)
	case ge.Code == http.StatusTooManyRequests:
		e.msg = fmt.Sprintf("sheets: %s: over the Sheets API quota, retry after %s: %s", where, e.RetryAfter, message)
	default:
		e.msg = fmt.Sprintf("sheets: %s: Google answered %d %s", where, ge.Code, http.StatusText(ge.Code))
		if body.Error.Status != "" {
			e.msg += " (" + body.Error.Status + ")"
		}
		if message != "" {
			e.msg += ": " + message
		}
	}
	return e
}

// retryAfter is how long Google asked to wait: Retry-After, else a
// RetryInfo detail, else, for the per-minute quota, until a minute passed.
func retryAfter(ge *googleapi.Error, body googleBody) time.Duration {
	if ge.Code != http.StatusTooManyRequests && ge.Code < 500 {
		return 0
	}
	if d := httpretry.ParseRetryAfter(ge.Header.Get("Retry-After"), time.Now()); d > 0 {
		return d
	}
	for _, raw := range body.Error.Details {
		var info struct {
			Type       string `json:"@type"`
			RetryDelay string `json:"retryDelay"`
		}
		if json.Unmarshal(raw, &info) == nil && info.Type == "type.googleapis.com/google.rpc.RetryInfo" {
			if d, err := time.ParseDuration(info.RetryDelay); err == nil && d > 0 {
				return d
			}
		}
	}
	// Sheets' quotas are per minute and refilled every minute; Google's
	// 429 says neither when, so the one wait sure to find room is a minute.
	if ge.Code == http.StatusTooManyRequests && body.Error.Status == codeResourceExhausted {
		return quotaWindow
	}
	return 0
}

// oauthErrorCode is the shape of an OAuth error code; anything else in
// that field is not repeated.
var oauthErrorCode = regexp.MustCompile(`^[a-z_]{1,40}$`)

// tokenError is a token exchange Google refused. Its text is fixed and
// names the setting to check: nothing of the answer but the status and
// the OAuth error code, since an answer may echo the signed assertion.
func (c *Client) tokenError(re *oauth2.RetrieveError) *Error {
	status := http.StatusBadGateway
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	e := &Error{Status: status, Code: "token"}
	if status == http.StatusTooManyRequests || status >= 500 {
		e.msg = fmt.Sprintf("sheets: Google's token endpoint answered %d %s", status, http.StatusText(status))
		return e
	}
	// x/oauth2/jwt leaves ErrorCode empty: the code is read from the body.
	var body struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(re.Body, &body)
	code := "refused"
	if oauthErrorCode.MatchString(cmp.Or(re.ErrorCode, body.Error)) {
		code = cmp.Or(re.ErrorCode, body.Error)
	}
	e.kind = ErrCredentials
	e.msg = fmt.Sprintf("sheets: Google refused the credentials of %s (%d %s): the key may have been deleted or disabled; check %s",
		c.identity(), status, code, c.credentialSource)
	return e
}

// scrub masks every access token this client was given, in any form an
// echo could carry it, and bounds the text.
func (c *Client) scrub(s string) string {
	return cut(logging.Scrub(s, c.tokens.seen()...), maxMessage)
}

// identity is the account onboard calls Google as, for messages.
func (c *Client) identity() string {
	if c.account != "" {
		return c.account
	}
	return "onboard's Google account"
}

// shareWith says whom to share a spreadsheet with.
func (c *Client) shareWith() string {
	if c.account != "" {
		return c.account
	}
	return c.anonymous
}
