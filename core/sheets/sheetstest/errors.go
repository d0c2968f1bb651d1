package sheetstest

import (
	"fmt"
	"net/http"
)

// statusNames are the google.rpc.Code names Google's JSON errors carry,
// with the message Google sends when it has nothing more to say.
var statusNames = map[int]struct{ status, message string }{
	http.StatusBadRequest:          {"INVALID_ARGUMENT", "Request contains an invalid argument."},
	http.StatusUnauthorized:        {"UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."},
	http.StatusForbidden:           {"PERMISSION_DENIED", "The caller does not have permission"},
	http.StatusNotFound:            {"NOT_FOUND", "Requested entity was not found."},
	http.StatusConflict:            {"ABORTED", "The operation was aborted."},
	http.StatusTooManyRequests:     {"RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."},
	http.StatusInternalServerError: {"INTERNAL", "Internal error encountered."},
	http.StatusNotImplemented:      {"UNIMPLEMENTED", "Operation is not implemented, or supported, or enabled."},
	http.StatusServiceUnavailable:  {"UNAVAILABLE", "The service is currently unavailable."},
	http.StatusGatewayTimeout:      {"DEADLINE_EXCEEDED", "The request timed out."},
}

// googleError is Google's error body: {"error":{"code","message","status"}}.
func googleError(code int, message string, details ...any) answer {
	status := "UNKNOWN"
	if n, ok := statusNames[code]; ok {
		status = n.status
	}
	e := map[string]any{"code": code, "message": message, "status": status}
	if len(details) > 0 {
		e["details"] = details
	}
	return answer{status: code, body: map[string]any{"error": e}}
}

// statusError is Google's answer for a status, when a fault names no body.
func statusError(code int) answer {
	if code == http.StatusTooManyRequests {
		return quotaError(false, DefaultQuotaPerMinute)
	}
	message := http.StatusText(code)
	if n, ok := statusNames[code]; ok {
		message = n.message
	}
	return googleError(code, message)
}

// projectNumber is the made-up project the fake's service accounts are in.
const projectNumber = "123456789012"

// quotaError is the API's answer to a request over the per-user quota.
func quotaError(write bool, limit int) answer {
	kind, metric, limitName := "Read", "read_requests", "ReadRequestsPerMinutePerUser"
	if write {
		kind, metric, limitName = "Write", "write_requests", "WriteRequestsPerMinutePerUser"
	}
	return googleError(http.StatusTooManyRequests,
		fmt.Sprintf("Quota exceeded for quota metric '%s requests' and limit '%s requests per minute per user' of service 'sheets.googleapis.com' for consumer 'project_number:%s'.", kind, kind, projectNumber),
		map[string]any{
			"@type":  "type.googleapis.com/google.rpc.ErrorInfo",
			"reason": "RATE_LIMIT_EXCEEDED",
			"domain": "googleapis.com",
			"metadata": map[string]string{
				"service":           "sheets.googleapis.com",
				"consumer":          "projects/" + projectNumber,
				"quota_metric":      "sheets.googleapis.com/" + metric,
				"quota_limit":       limitName,
				"quota_limit_value": fmt.Sprint(limit),
				"quota_location":    "global",
			},
		},
		map[string]any{
			"@type": "type.googleapis.com/google.rpc.Help",
			"links": []map[string]string{{
				"description": "Request a higher quota limit.",
				"url":         "https://cloud.google.com/docs/quotas/help/request_increase",
			}},
		},
	)
}
