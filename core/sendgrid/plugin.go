package sendgrid

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/onboard-dev/onboard/core"
	"github.com/onboard-dev/onboard/core/internal/httpretry"
	"github.com/onboard-dev/onboard/core/plugin"
)

// DefaultMaxRPS is SENDGRID_MAX_RPS unset: one welcome per new person
// never comes near SendGrid's limits; the cap only bounds a bulk import.
const DefaultMaxRPS = 50

// The settings the target reads.
const (
	SettingAPIKey  = "SENDGRID_API_KEY"
	SettingBaseURL = "SENDGRID_BASE_URL"
	SettingMaxRPS  = "SENDGRID_MAX_RPS"
)

// Name is SendGrid's email.provider value.
const Name = "sendgrid"

// Mailer registers SendGrid as a welcome-email provider.
var Mailer = plugin.Mailer{
	Name:     Name,
	Check:    checkEmail,
	Settings: []plugin.Setting{{Name: SettingAPIKey, Secret: true}, {Name: SettingBaseURL}, {Name: SettingMaxRPS}},
	Switch:   SettingAPIKey,
	New:      newFromSettings,
	Host:     func(get func(string) string) string { return cmp.Or(get(SettingBaseURL), DefaultBaseURL) },
}

// checkEmail refuses a legacy template id: the v3 API sends dynamic
// templates, whose ids start with d-.
func checkEmail(e core.EmailConfig) error {
	if e.TemplateID != "" && !strings.HasPrefix(e.TemplateID, "d-") {
		return fmt.Errorf("template_id: %q is not a SendGrid dynamic template id (they start with d-)", e.TemplateID)
	}
	return nil
}

func newFromSettings(_ context.Context, env plugin.Env) (core.Mailer, error) {
	if env.Get(SettingAPIKey) == "" {
		return nil, errors.New("email.provider is sendgrid but SENDGRID_API_KEY is not set")
	}
	maxRPS, err := httpretry.MaxRateSetting(env.Get, SettingMaxRPS, DefaultMaxRPS)
	if err != nil {
		return nil, err
	}
	m := &rotatingMailer{from: env.Config.Email.From, baseURL: env.Get(SettingBaseURL), maxRPS: maxRPS,
		key: func(ctx context.Context) (string, error) { return env.Secret(ctx, SettingAPIKey) }}
	if _, err := m.welcomer(context.Background()); err != nil {
		return nil, err
	}
	return m, nil
}

// rotatingMailer rebuilds its client when the API key changes, so a
// rotated key is used without a redeploy.
type rotatingMailer struct {
	from, baseURL string
	maxRPS        float64
	key           func(context.Context) (string, error)

	mu      sync.Mutex
	current *Welcomer
	usedKey string
}

func (m *rotatingMailer) welcomer(ctx context.Context) (*Welcomer, error) {
	key, err := m.key(ctx)
	if err != nil {
		return nil, core.Unavailable(Name, 0, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.current != nil && key == m.usedKey {
		return m.current, nil
	}
	client, err := New(Config{APIKey: key, BaseURL: m.baseURL, Timeout: 10 * time.Second, MaxRPS: m.maxRPS})
	if err != nil {
		return nil, err
	}
	w, err := NewWelcomer(client, m.from)
	if err != nil {
		return nil, err
	}
	m.current, m.usedKey = w, key
	return w, nil
}

// SendWelcome implements core.Mailer.
func (m *rotatingMailer) SendWelcome(ctx context.Context, w core.Welcome) (string, error) {
	sender, err := m.welcomer(ctx)
	if err != nil {
		return "", err
	}
	return sender.SendWelcome(ctx, w)
}
