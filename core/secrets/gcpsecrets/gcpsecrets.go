// Package gcpsecrets reads secrets from Google Cloud Secret Manager
// (ONBOARD_SECRETS=gcp).
//
// The secret name is the Secret Manager secret ID: LOOKERSDK_CLIENT_SECRET
// is read from projects/<project>/secrets/LOOKERSDK_CLIENT_SECRET/versions/latest.
//
// Version pinning: Config.Versions maps a secret name to a version number or
// alias ("3", "stable") to read instead of "latest". The caller fills it from
// the ONBOARD_SECRET_VERSIONS environment variable, a JSON object such as
// {"LOOKERSDK_CLIENT_SECRET":"3"}; this package reads no environment. Pinning
// lets an operator roll a bad secret back, or stage a new version, without a
// redeploy. A pinned version that does not exist is reported as a failure,
// not as an absent secret, because it is a configuration mistake.
//
// Values are returned byte for byte. Create secrets with `printf %s` or
// `--data-file` of a file without a trailing newline: a newline is part of
// the value.
package gcpsecrets

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"regexp"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/onboard-dev/onboard/core/secrets"
)

// Config selects the project and optional version pins.
type Config struct {
	// Project is the project ID that owns the secrets (ONBOARD_GCP_PROJECT).
	Project string
	// Versions pins secret names to a version number or alias; names not
	// listed read "latest".
	Versions map[string]string
}

// Source is a secrets.Source backed by Secret Manager. It is safe for
// concurrent use.
type Source struct {
	client   *secretmanager.Client
	project  string
	versions map[string]string
}

var _ secrets.Source = (*Source)(nil)

var (
	// validID follows Secret Manager's secret ID rules; checking it keeps a
	// name from addressing a different resource path.
	validID      = boundedPattern{regexp.MustCompile(`^[A-Za-z0-9_-]+$`), 255}
	validVersion = boundedPattern{regexp.MustCompile(`^[A-Za-z0-9_-]+$`), 63}
	// validProject admits project IDs, project numbers and legacy
	// domain-scoped IDs (example.com:proj), but no path separators.
	validProject = boundedPattern{regexp.MustCompile(`^[a-z0-9][a-z0-9.:-]*$`), 100}
	castagnoli   = crc32.MakeTable(crc32.Castagnoli)
)

// boundedPattern checks a length apart from its regexp: written as a
// counted repetition ({1,255}), the three patterns compiled to thousands of
// instructions in every cold start's init (1 ms and 390 KB, the most of any
// package), though only ONBOARD_SECRETS=gcp ever uses them.
type boundedPattern struct {
	re     *regexp.Regexp
	maxLen int
}

func (p boundedPattern) MatchString(s string) bool { return len(s) <= p.maxLen && p.re.MatchString(s) }

// New dials Secret Manager. opts go to secretmanager.NewClient, e.g.
// option.WithEndpoint for tests or option.WithCredentialsFile.
func New(ctx context.Context, cfg Config, opts ...option.ClientOption) (*Source, error) {
	if !validProject.MatchString(cfg.Project) {
		return nil, fmt.Errorf("gcpsecrets: invalid project ID %q", cfg.Project)
	}
	versions := make(map[string]string, len(cfg.Versions))
	for name, v := range cfg.Versions {
		if !validID.MatchString(name) || !validVersion.MatchString(v) {
			return nil, fmt.Errorf("gcpsecrets: invalid version pin %q: %q (want a secret ID and a version number or alias)", name, v)
		}
		versions[name] = v
	}
	client, err := secretmanager.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gcpsecrets: creating client: %w", err)
	}
	return &Source{client: client, project: cfg.Project, versions: versions}, nil
}

// Fetch reads the secret's pinned or latest version.
func (s *Source) Fetch(ctx context.Context, name string) (string, error) {
	if !validID.MatchString(name) {
		return "", fmt.Errorf("gcpsecrets: invalid secret ID %q", name)
	}
	version, pinned := s.versions[name]
	if !pinned {
		version = "latest"
	}
	resource := fmt.Sprintf("projects/%s/secrets/%s/versions/%s", s.project, name, version)

	resp, err := s.client.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: resource})
	switch {
	case status.Code(err) == codes.NotFound && !pinned:
		return "", &secrets.NotFoundError{Name: name}
	case status.Code(err) == codes.NotFound:
		return "", fmt.Errorf("gcpsecrets: pinned version %s of secret %q not found", version, name)
	case err != nil:
		return "", fmt.Errorf("gcpsecrets: accessing %s: %w", resource, err)
	}

	data := resp.GetPayload().GetData()
	if want := resp.GetPayload().DataCrc32C; want != nil && int64(crc32.Checksum(data, castagnoli)) != *want {
		return "", errors.New("gcpsecrets: payload of " + resource + " failed its CRC32C check")
	}
	return string(data), nil
}

// Close releases the gRPC connection.
func (s *Source) Close() error { return s.client.Close() }
