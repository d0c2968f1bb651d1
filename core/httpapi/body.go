package httpapi

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/onboard-dev/onboard/core"
)

// MaxBulkRequests is the most requests one bulk body may carry: larger
// imports go through the queue or `onboard import`, which split them.
const MaxBulkRequests = 1000

// BodyItem is one request of a body, or the reason it was refused.
type BodyItem struct {
	Request core.Request
	Err     error
}

// ParseBody decodes an HTTP body of the given Content-Type. A JSON array is a
// bulk body: each item is validated on its own and bulk is true. A body that
// cannot be read at all returns an error and no items.
func ParseBody(contentType string, body []byte) (items []BodyItem, bulk bool, err error) {
	if len(body) > core.MaxBodyBytes {
		return nil, false, &core.Error{Status: http.StatusRequestEntityTooLarge, Message: "body larger than 1 MiB"}
	}
	mediaType := "application/json"
	if contentType != "" {
		mt, _, perr := mime.ParseMediaType(contentType)
		if perr != nil {
			return nil, false, core.Invalid("", "unreadable Content-Type")
		}
		mediaType = mt
	}
	if mediaType == "application/x-www-form-urlencoded" && looksLikeJSON(body) {
		// curl -d sends JSON labelled as a form unless told otherwise; a form
		// body cannot start with { or [ in any useful way.
		mediaType = "application/json"
	}
	switch mediaType {
	case "application/x-www-form-urlencoded":
		req, ferr := parseForm(body)
		return []BodyItem{{Request: req, Err: ferr}}, false, nil
	case "application/json", "text/plain":
		// text/plain because Apps Script and some form tools send JSON with it.
		return parseJSON(body)
	default:
		// 400 rather than 415: PRODUCT.md answers every unreadable body with 400.
		return nil, false, core.Invalid("", "unsupported Content-Type %q: send application/json or application/x-www-form-urlencoded", mediaType)
	}
}

func looksLikeJSON(body []byte) bool {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	return len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[')
}

func parseJSON(body []byte) ([]BodyItem, bool, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, false, core.Invalid("", "empty body")
	}
	if trimmed[0] != '[' {
		req, err := core.DecodeRequest(trimmed)
		return []BodyItem{{Request: req, Err: err}}, false, nil
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(trimmed, &raws); err != nil {
		return nil, true, core.Invalid("", "malformed JSON array: %s", core.DescribeJSONError(err))
	}
	if len(raws) == 0 {
		return nil, true, core.Invalid("", "empty bulk array")
	}
	if len(raws) > MaxBulkRequests {
		return nil, true, core.Invalid("", "bulk array has %d items; at most %d are accepted", len(raws), MaxBulkRequests)
	}
	items := make([]BodyItem, len(raws))
	for i, raw := range raws {
		items[i].Request, items[i].Err = core.DecodeRequest(raw)
	}
	return items, true, nil
}

// parseForm reads a form through the request's field table; attributes come
// as attributes.KEY or attributes[KEY], the two spellings form builders produce.
func parseForm(body []byte) (core.Request, error) {
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return core.Request{}, core.Invalid("", "malformed form body")
	}
	req := core.Request{Attributes: map[string]string{}}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic: the first bad key is always the same one
	for _, k := range keys {
		vs := values[k]
		if len(vs) != 1 {
			return core.Request{}, core.Invalid(k, "given %d times; send it once", len(vs))
		}
		if req.SetField(k, vs[0]) {
			continue
		}
		if name, ok := formAttribute(k); ok {
			req.Attributes[name] = vs[0]
			continue
		}
		return core.Request{}, core.Invalid(k, "unknown field")
	}
	return req.Normalize()
}

func formAttribute(key string) (string, bool) {
	if name, ok := strings.CutPrefix(key, "attributes."); ok && name != "" {
		return name, true
	}
	if name, ok := strings.CutPrefix(key, "attributes["); ok && strings.HasSuffix(name, "]") && len(name) > 1 {
		return strings.TrimSuffix(name, "]"), true
	}
	return "", false
}
