// Package awssecrets reads secrets from AWS Secrets Manager
// (ONBOARD_SECRETS=aws). It has two modes:
//
//   - One JSON secret (Options.SecretID set; the caller takes it from
//     ONBOARD_AWS_SECRET_ID). The secret's value is a JSON object holding
//     every key, e.g. {"LOOKERSDK_CLIENT_SECRET":"...","SENDGRID_API_KEY":"..."}.
//     This is the recommended mode: Secrets Manager bills $0.40 per secret per
//     month plus per API call, and a dozen secrets per deployment would cost a
//     dozen times that; one secret is also one IAM resource to grant the
//     function's role and one place to edit. All names are answered by one
//     GetSecretValue, which is reused for Options.MaxAge.
//   - One secret per name (Options.SecretID empty): name LOOKERSDK_CLIENT_SECRET
//     is read from the secret Options.Prefix+"LOOKERSDK_CLIENT_SECRET". Use it
//     when secrets need separate access policies or rotation lambdas.
//
// In the JSON object, string values are returned as is, other JSON values
// (numbers, booleans, objects such as PERISCOPE_SITES) as their compact JSON
// text, and null or "" count as absent, like an empty environment variable.
//
// The AWSCURRENT stage is always requested explicitly: moto otherwise keeps
// returning the previous version after a stage move, and it is the default on
// real AWS anyway. For moto or another endpoint, set BaseEndpoint on the
// aws.Config (or AWS_ENDPOINT_URL_SECRETS_MANAGER for config.LoadDefaultConfig).
package awssecrets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"golang.org/x/sync/singleflight"

	"github.com/onboard-dev/onboard/core/secrets"
)

// DefaultMaxAge is how long a fetched JSON document answers further names
// when Options.MaxAge is zero. It is short next to a typical Cache TTL
// (minutes) so it adds little staleness, yet long enough that the names a
// Cache refreshes together share one call.
const DefaultMaxAge = 30 * time.Second

// Options selects the mode; see the package comment.
type Options struct {
	// SecretID is the name or ARN of the JSON secret holding every key.
	// Empty selects one secret per name.
	SecretID string
	// Prefix is prepended to each name in one-secret-per-name mode, e.g.
	// "onboard/prod/" to keep environments apart in one account.
	Prefix string
	// MaxAge is how long one fetched JSON document answers further names:
	// zero means DefaultMaxAge, negative means every Fetch calls the API
	// (concurrent Fetches still share one call).
	MaxAge time.Duration
}

// Source is a secrets.Source backed by Secrets Manager. It is safe for
// concurrent use. It formats and logs as a placeholder because in JSON mode
// it holds the secret values.
type Source struct {
	client *secretsmanager.Client
	opts   Options

	flight singleflight.Group

	mu      sync.Mutex
	doc     map[string]string // JSON mode: absent keys are absent
	fetched time.Time
}

var _ secrets.Source = (*Source)(nil)

// New returns a Source using cfg (region, credentials, endpoint).
func New(cfg aws.Config, opts Options) *Source {
	if opts.MaxAge == 0 {
		opts.MaxAge = DefaultMaxAge
	}
	return &Source{client: secretsmanager.NewFromConfig(cfg), opts: opts}
}

// Fetch returns the value of name, or a *secrets.NotFoundError naming it when
// the secret (per-name mode) or the key (JSON mode) does not exist. A missing
// JSON secret is a failure, not an absence: every name would be affected,
// which is a deployment mistake to report rather than to treat as
// "nothing configured".
func (s *Source) Fetch(ctx context.Context, name string) (string, error) {
	if s.opts.SecretID == "" {
		v, err := s.read(ctx, s.opts.Prefix+name)
		if errors.Is(err, errNoSecret) {
			return "", &secrets.NotFoundError{Name: name}
		}
		return v, err
	}

	doc, err := s.document(ctx)
	if err != nil {
		return "", err
	}
	v, ok := doc[name]
	if !ok {
		return "", &secrets.NotFoundError{Name: name}
	}
	return v, nil
}

func (s *Source) document(ctx context.Context) (map[string]string, error) {
	s.mu.Lock()
	doc, fetched := s.doc, s.fetched
	s.mu.Unlock()
	if doc != nil && time.Since(fetched) < s.opts.MaxAge {
		return doc, nil
	}

	v, err, _ := s.flight.Do("", func() (any, error) {
		raw, err := s.read(ctx, s.opts.SecretID)
		if errors.Is(err, errNoSecret) {
			return nil, fmt.Errorf("awssecrets: JSON secret %q does not exist", s.opts.SecretID)
		}
		if err != nil {
			return nil, err
		}
		doc, err := parseDocument(raw)
		if err != nil {
			return nil, fmt.Errorf("awssecrets: secret %q: %w", s.opts.SecretID, err)
		}
		s.mu.Lock()
		s.doc, s.fetched = doc, time.Now()
		s.mu.Unlock()
		return doc, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(map[string]string), nil
}

var errNoSecret = errors.New("no such secret")

func (s *Source) read(ctx context.Context, id string) (string, error) {
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId:     aws.String(id),
		VersionStage: aws.String("AWSCURRENT"),
	})
	var rnf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &rnf):
		return "", errNoSecret
	case err != nil:
		return "", fmt.Errorf("awssecrets: reading %q: %w", id, err)
	case out.SecretString != nil:
		return *out.SecretString, nil
	default:
		return string(out.SecretBinary), nil
	}
}

// parseDocument never wraps a json error: a syntax error quotes the offending
// character, which would be part of a secret value.
func parseDocument(raw string) (map[string]string, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &fields); err != nil || fields == nil {
		return nil, errors.New("value is not a JSON object")
	}
	doc := make(map[string]string, len(fields))
	for k, v := range fields {
		var str string
		switch {
		case string(v) == "null":
			continue
		case json.Unmarshal(v, &str) == nil: // a JSON string
		default:
			var buf bytes.Buffer
			_ = json.Compact(&buf, v) // cannot fail: v was parsed above
			str = buf.String()
		}
		if str != "" {
			doc[k] = str
		}
	}
	return doc, nil
}

const redactedSource = "awssecrets.Source{<redacted>}"

// Format prints a placeholder for every verb (%v, %+v, %#v, %s, %q).
func (s *Source) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redactedSource) }

// LogValue keeps slog from reflecting over the cached document.
func (s *Source) LogValue() slog.Value { return slog.StringValue(redactedSource) }
