package sendgridtest

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/mail"
	"reflect"
	"slices"
	"strings"
	"time"
)

// SendGrid's documented limits.
const (
	maxPersonalizations = 1000
	maxRecipients       = 1000 // to + cc + bcc across all personalizations
	maxCustomArgsBytes  = 10000
)

// Address is one mailbox as it appeared on the wire.
type Address struct{ Name, Email string }

func (a Address) String() string {
	return (&mail.Address{Name: a.Name, Address: a.Email}).String()
}

// Message is one email the fake accepted: one personalization of a request,
// resolved the way SendGrid resolves it.
type Message struct {
	// MessageID is the X-Message-Id of the request (empty in sandbox mode).
	MessageID string
	// Seq is the 1-based delivery order; it is part of the outbox file name.
	Seq        int
	ReceivedAt time.Time
	From       Address
	To, CC     []Address
	BCC        []Address
	// Subject is the personalization's subject, else the top-level one;
	// with a template, SendGrid takes the template's subject instead.
	Subject    string
	Text, HTML string
	TemplateID string
	// TemplateData is the personalization's dynamic_template_data.
	TemplateData map[string]any
	// CustomArgs merges top-level and personalization custom_args; the
	// personalization wins on conflicts, as in SendGrid's events.
	CustomArgs map[string]string
	// ClickTracking and OpenTracking report whether tracking would be on.
	// Absent settings fall back to the account default, which is on.
	ClickTracking     bool
	ClickTrackingText bool
	OpenTracking      bool
	Sandbox           bool
	// Raw is the whole request body as received.
	Raw json.RawMessage
}

// apiError is one entry of SendGrid's {"errors":[...]} body. Field and
// Help are pointers because SendGrid sends explicit nulls.
type apiError struct {
	Message string  `json:"message"`
	Field   *string `json:"field"`
	Help    *string `json:"help"`
}

func apiErr(field, msg string) apiError {
	e := apiError{Message: msg}
	if field != "" {
		e.Field = &field
	}
	return e
}

func writeErrors(w http.ResponseWriter, status int, errs ...apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Errors []apiError `json:"errors"`
	}{errs})
}

type wireAddress struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

type wireSetting struct {
	Enable     *bool `json:"enable"`
	EnableText *bool `json:"enable_text"`
}

type wirePersonalization struct {
	To                  []wireAddress  `json:"to"`
	CC                  []wireAddress  `json:"cc"`
	BCC                 []wireAddress  `json:"bcc"`
	Subject             string         `json:"subject"`
	CustomArgs          map[string]any `json:"custom_args"`
	DynamicTemplateData map[string]any `json:"dynamic_template_data"`
}

type wireContent struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type wireRequest struct {
	Personalizations []wirePersonalization `json:"personalizations"`
	From             *wireAddress          `json:"from"`
	Subject          string                `json:"subject"`
	Content          []wireContent         `json:"content"`
	TemplateID       string                `json:"template_id"`
	CustomArgs       map[string]any        `json:"custom_args"`
	MailSettings     struct {
		SandboxMode wireSetting `json:"sandbox_mode"`
	} `json:"mail_settings"`
	TrackingSettings struct {
		ClickTracking wireSetting `json:"click_tracking"`
		OpenTracking  wireSetting `json:"open_tracking"`
	} `json:"tracking_settings"`
}

func (r *wireRequest) sandbox() bool {
	e := r.MailSettings.SandboxMode.Enable
	return e != nil && *e
}

// decodeRequest returns every problem at once, as SendGrid does.
func decodeRequest(raw []byte) (*wireRequest, []apiError) {
	var r wireRequest
	if err := json.Unmarshal(raw, &r); err != nil {
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return nil, []apiError{apiErr(te.Field, fmt.Sprintf("Invalid type. Expected: %s, given: %s.", jsonKind(te.Type), te.Value))}
		}
		return nil, []apiError{apiErr("", "Bad Request")}
	}
	var errs []apiError
	add := func(field, msg string) { errs = append(errs, apiErr(field, msg)) }

	switch {
	case r.From == nil || r.From.Email == "":
		add("from.email", "The from object must be provided for every email send. It is an object that requires the email parameter, but may also contain a name parameter.")
	case !validEmail(r.From.Email):
		add("from.email", "The from email does not contain a valid address.")
	}

	switch n := len(r.Personalizations); {
	case n == 0:
		add("personalizations", "The personalizations field is required and must have at least one personalization.")
	case n > maxPersonalizations:
		add("personalizations", fmt.Sprintf("The personalizations field must have no more than %d items.", maxPersonalizations))
	}
	recipients := 0
	for i, p := range r.Personalizations {
		field := fmt.Sprintf("personalizations.%d", i)
		if len(p.To) == 0 {
			add(field+".to", "The to array is required for all personalization objects, and must have at least one email object with a valid email address.")
		}
		recipients += len(p.To) + len(p.CC) + len(p.BCC)
		validateRecipients(field, p, add)
		if len(p.DynamicTemplateData) > 0 && !strings.HasPrefix(r.TemplateID, "d-") {
			add(field+".dynamic_template_data", `dynamic_template_data can only be used with a dynamic template_id (one starting with "d-").`)
		}
		validateCustomArgs(field+".custom_args", r.CustomArgs, p.CustomArgs, add)
	}
	if recipients > maxRecipients {
		add("personalizations", fmt.Sprintf("The total number of recipients (to, cc and bcc) must be no more than %d.", maxRecipients))
	}
	if len(r.Personalizations) == 0 {
		// Still type-check top-level custom_args when no personalization
		// would have merged them.
		validateCustomArgs("custom_args", r.CustomArgs, nil, add)
	}

	if r.TemplateID == "" {
		validateContent(r.Content, add)
		if r.Subject == "" && !everyHasSubject(r.Personalizations) {
			add("subject", "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.")
		}
	}
	return &r, errs
}

func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s
}

func validateRecipients(field string, p wirePersonalization, add func(field, msg string)) {
	seen := map[string]string{}
	kinds := []struct {
		name string
		list []wireAddress
	}{{"to", p.To}, {"cc", p.CC}, {"bcc", p.BCC}}
	for _, kind := range kinds {
		for j, a := range kind.list {
			f := fmt.Sprintf("%s.%s.%d.email", field, kind.name, j)
			if !validEmail(a.Email) {
				add(f, "Does not contain a valid address.")
				continue
			}
			key := strings.ToLower(a.Email)
			if prev, dup := seen[key]; dup {
				add(field, fmt.Sprintf("Each email address in the personalization block should be unique between to, cc, and bcc. Found a duplicate at %s and %s.", prev, f))
			}
			seen[key] = f
		}
	}
}

// validateCustomArgs checks the merged args a personalization ends up with:
// string values only and, per SendGrid, at most 10,000 bytes in total
// (counted here as the sum of key and value lengths).
func validateCustomArgs(field string, top, own map[string]any, add func(field, msg string)) {
	size := 0
	merged := mergeArgs(top, own)
	for _, k := range slices.Sorted(maps.Keys(merged)) {
		s, ok := merged[k].(string)
		if !ok {
			add(field+"."+k, fmt.Sprintf("Invalid type. Expected: string, given: %s.", jsonValueKind(merged[k])))
			continue
		}
		size += len(k) + len(s)
	}
	if size > maxCustomArgsBytes {
		add(field, fmt.Sprintf("The custom_args parameter is limited to %d bytes; got %d.", maxCustomArgsBytes, size))
	}
}

func mergeArgs(top, own map[string]any) map[string]any {
	m := maps.Clone(top)
	if m == nil {
		m = map[string]any{}
	}
	maps.Copy(m, own)
	return m
}

func validateContent(content []wireContent, add func(field, msg string)) {
	if len(content) == 0 {
		add("content", "Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block.")
		return
	}
	for i, c := range content {
		if c.Type == "" {
			add(fmt.Sprintf("content.%d.type", i), "The content type must be a string at least one character in length.")
		}
		if c.Value == "" {
			add(fmt.Sprintf("content.%d.value", i), "The content value must be a string at least one character in length.")
		}
		if i > 0 && strings.EqualFold(c.Type, "text/plain") {
			add(fmt.Sprintf("content.%d.type", i), "If present, text/plain content must be first, followed by text/html, then any other content.")
		}
	}
}

func everyHasSubject(ps []wirePersonalization) bool {
	for _, p := range ps {
		if p.Subject == "" {
			return false
		}
	}
	return len(ps) > 0
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct, reflect.Pointer:
		return "object"
	default:
		return "number"
	}
}

func jsonValueKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		return "number"
	case []any:
		return "array"
	default:
		return "object"
	}
}

// messages resolves each personalization into the email SendGrid would send.
func (r *wireRequest) messages(id string, raw []byte, now time.Time) []Message {
	var text, html string
	for _, c := range r.Content {
		switch strings.ToLower(c.Type) {
		case "text/plain":
			text = c.Value
		case "text/html":
			html = c.Value
		}
	}
	ct := r.TrackingSettings.ClickTracking
	click := ct.Enable == nil || *ct.Enable
	out := make([]Message, 0, len(r.Personalizations))
	for _, p := range r.Personalizations {
		args := map[string]string{}
		for k, v := range mergeArgs(r.CustomArgs, p.CustomArgs) {
			args[k] = v.(string) // validated by decodeRequest
		}
		out = append(out, Message{
			MessageID:         id,
			ReceivedAt:        now,
			From:              toAddress(*r.From),
			To:                toAddresses(p.To),
			CC:                toAddresses(p.CC),
			BCC:               toAddresses(p.BCC),
			Subject:           cmp.Or(p.Subject, r.Subject),
			Text:              text,
			HTML:              html,
			TemplateID:        r.TemplateID,
			TemplateData:      p.DynamicTemplateData,
			CustomArgs:        args,
			ClickTracking:     click,
			ClickTrackingText: click && ct.EnableText != nil && *ct.EnableText,
			OpenTracking:      r.TrackingSettings.OpenTracking.Enable == nil || *r.TrackingSettings.OpenTracking.Enable,
			Sandbox:           r.sandbox(),
			Raw:               raw,
		})
	}
	return out
}

func toAddress(a wireAddress) Address { return Address{Name: a.Name, Email: a.Email} }

func toAddresses(in []wireAddress) []Address {
	if len(in) == 0 {
		return nil
	}
	out := make([]Address, len(in))
	for i, a := range in {
		out[i] = toAddress(a)
	}
	return out
}
