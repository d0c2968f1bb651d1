package sendgrid

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"

	sgmail "github.com/sendgrid/sendgrid-go/helpers/mail"
)

// MaxCustomArgsBytes is SendGrid's limit on custom_args, counted here as the
// sum of key and value lengths in bytes.
const MaxCustomArgsBytes = 10000

// ErrInvalidMessage is wrapped by every validation error from Send; such
// errors are permanent, so callers must not retry them.
var ErrInvalidMessage = errors.New("sendgrid: invalid message")

// Address is one mailbox. Name may be empty.
type Address struct{ Name, Email string }

// String renders the address in RFC 5322 form, quoting/encoding Name as needed.
func (a Address) String() string {
	return (&mail.Address{Name: a.Name, Address: a.Email}).String()
}

// ParseAddress parses one address such as `Data Team <data@example.com>` or
// a bare `data@example.com`. Lists are rejected: a welcome mail has one sender.
func ParseAddress(s string) (Address, error) {
	if strings.ContainsAny(s, "\r\n") {
		return Address{}, errors.New("sendgrid: address must not contain CR or LF")
	}
	a, err := mail.ParseAddress(strings.TrimSpace(s))
	if err != nil {
		return Address{}, fmt.Errorf("sendgrid: parse address: %w", err)
	}
	return Address{Name: a.Name, Email: a.Address}, nil
}

// Message is one welcome email to one recipient.
type Message struct {
	From    Address
	To      Address
	Subject string
	// Text is the plain-text body, used only when TemplateID is empty.
	Text string
	// TemplateID is a dynamic template id ("d-..."). When set, the template
	// supplies subject and body, and Subject/Text are not sent.
	TemplateID   string
	TemplateData map[string]any
	// CustomArgs are echoed in Event Webhook events; put the provisioning
	// request id here to correlate deliveries with requests.
	CustomArgs map[string]string
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidMessage}, args...)...)
}

// validateAddress deliberately never echoes the address: validation errors
// end up in logs, and addresses are personal data.
func validateAddress(field string, a Address) error {
	if a.Email == "" {
		return invalid("%s.email is required", field)
	}
	if strings.ContainsAny(a.Name+a.Email, "\r\n") {
		return invalid("%s must not contain CR or LF", field)
	}
	// Requiring the round trip to be exact rejects "Name <x@y>" or lists
	// smuggled into the Email field, which SendGrid would also refuse.
	if p, err := mail.ParseAddress(a.Email); err != nil || p.Address != a.Email {
		return invalid("%s.email is not a valid email address", field)
	}
	return nil
}

func (m Message) validate() error {
	if err := validateAddress("from", m.From); err != nil {
		return err
	}
	if err := validateAddress("to", m.To); err != nil {
		return err
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return invalid("subject must not contain CR or LF")
	}
	if m.TemplateID == "" {
		if m.Text == "" {
			return invalid("either text or template_id is required")
		}
		if m.Subject == "" {
			return invalid("subject is required when no template_id is set")
		}
		if len(m.TemplateData) > 0 {
			return invalid("template_data requires template_id")
		}
	} else if !strings.HasPrefix(m.TemplateID, "d-") || strings.ContainsAny(m.TemplateID, " \t\r\n") {
		// dynamic_template_data only works with dynamic ("d-") templates;
		// a legacy id would be accepted and then render without our data.
		return invalid(`template_id must be a dynamic template id starting with "d-"`)
	}
	size := 0
	for k, v := range m.CustomArgs {
		if k == "" {
			return invalid("custom_args keys must be non-empty")
		}
		size += len(k) + len(v)
	}
	if size > MaxCustomArgsBytes {
		return invalid("custom_args total %d bytes exceeds SendGrid's %d-byte limit", size, MaxCustomArgsBytes)
	}
	return nil
}

// requestBody validates m and renders the v3 Mail Send JSON.
func (m Message) requestBody() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	v3 := sgmail.NewV3Mail()
	v3.SetFrom(sgmail.NewEmail(m.From.Name, m.From.Email))
	p := sgmail.NewPersonalization()
	p.AddTos(sgmail.NewEmail(m.To.Name, m.To.Email))
	if m.TemplateID != "" {
		v3.SetTemplateID(m.TemplateID)
		for k, v := range m.TemplateData {
			p.SetDynamicTemplateData(k, v)
		}
	} else {
		v3.Subject = m.Subject
		v3.AddContent(sgmail.NewContent("text/plain", m.Text))
	}
	v3.AddPersonalizations(p)
	for k, v := range m.CustomArgs {
		v3.SetCustomArg(k, v)
	}
	// Click tracking rewrites links through SendGrid's redirector, which
	// breaks (or pre-consumes, via link scanners) the one-time setup link.
	// Open tracking adds a pixel we have no use for.
	v3.SetTrackingSettings(sgmail.NewTrackingSettings().
		SetClickTracking(sgmail.NewClickTrackingSetting().SetEnable(false).SetEnableText(false)).
		SetOpenTracking(sgmail.NewOpenTrackingSetting().SetEnable(false)))
	// Not mail.GetRequestBody: it logs and returns nil on a marshal error,
	// which would send an empty body instead of failing.
	body, err := json.Marshal(v3)
	if err != nil {
		return nil, invalid("template_data is not JSON-encodable: %v", err)
	}
	return body, nil
}
