//go:build !onboard_nofakes

package sendgrid

import (
	"crypto/rand"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/plugin"
	"github.com/onboard-dev/onboard/core/sendgrid/sendgridtest"
)

func init() {
	plugin.RegisterFake(Mailer.Name, func(_ *core.Config, outboxDir string) (*plugin.Fake, error) { return StartFake(outboxDir) })
}

// StartFake starts the sandbox's SendGrid, which writes every email under
// outboxDir.
func StartFake(outboxDir string) (*plugin.Fake, error) {
	apiKey := "SG.sandbox-" + rand.Text()
	srv := sendgridtest.NewServer(sendgridtest.Options{APIKey: apiKey, OutboxDir: outboxDir})
	return &plugin.Fake{
		Settings: map[string]string{SettingAPIKey: apiKey, SettingBaseURL: srv.URL},
		Server:   srv, Close: srv.Close,
		Writes: func() []string {
			var writes []string
			for _, m := range srv.Messages() {
				writes = append(writes, "POST /v3/mail/send "+m.Subject)
			}
			return writes
		},
	}, nil
}
