package sendgrid

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/internal/httpretry"
)

// Welcomer delivers onboard's welcome emails through SendGrid.
type Welcomer struct {
	Client *Client
	From   Address
}

// NewWelcomer checks the configured sender once, at start-up.
func NewWelcomer(c *Client, from string) (*Welcomer, error) {
	addr, err := ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("email.from: %w", err)
	}
	return &Welcomer{Client: c, From: addr}, nil
}

// SendWelcome implements core.Mailer.
func (w *Welcomer) SendWelcome(ctx context.Context, wel core.Welcome) (string, error) {
	name := strings.TrimSpace(wel.To.FirstName + " " + wel.To.LastName)
	id, err := w.Client.Send(ctx, Message{
		From: w.From, To: Address{Name: name, Email: wel.To.Email},
		Subject: wel.Subject, Text: wel.Text,
		TemplateID: wel.TemplateID, TemplateData: wel.TemplateData,
		CustomArgs: map[string]string{"request_id": wel.RequestID},
	})
	if err == nil {
		return id, nil
	}
	reason := err.Error()
	if notDelivered(err) {
		err = fmt.Errorf("%w: %w", core.ErrNotDelivered, err)
	}
	return "", httpretry.Answer(Name, err, func(int) string { return "SendGrid refused the welcome email: " + reason })
}

// notDelivered says whether SendGrid certainly did not take the email: it
// answered 4xx (429 included) or 503 (its API is not available), or the
// request never left whole (refused connection, cancelled before sending).
// A 500, 502, 504, a reset or a timeout after the request was written may
// come after it accepted the email.
func notDelivered(err error) bool {
	if _, ok := errors.AsType[*httpretry.PausedError](err); ok {
		return true // held back by the pace, never sent
	}
	if apiErr, ok := errors.AsType[*APIError](err); ok {
		return apiErr.StatusCode < 500 || apiErr.StatusCode == http.StatusServiceUnavailable
	}
	if terr, ok := errors.AsType[*transportError](err); ok {
		return terr.neverSent
	}
	return false
}
