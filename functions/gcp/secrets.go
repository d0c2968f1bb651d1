package gcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"google.golang.org/api/option"

	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/secrets"
	"github.com/onboard-dev/onboard/core/secrets/gcpsecrets"
)

// SecretManager opens Google Cloud Secret Manager for ONBOARD_SECRETS=gcp:
// secrets live in ONBOARD_GCP_PROJECT under their setting names, at version
// "latest" unless ONBOARD_SECRET_VERSIONS pins one. opts reach the client
// (tests point it at a fake); a deployed function needs none, it
// authenticates as its service account.
func SecretManager(opts ...option.ClientOption) app.SecretBackend {
	return func(ctx context.Context, getenv func(string) string) (secrets.Source, error) {
		project := getenv("ONBOARD_GCP_PROJECT")
		if project == "" {
			return nil, errors.New("ONBOARD_GCP_PROJECT is not set: it names the project whose Secret Manager holds onboard's secrets")
		}
		versions, err := parseVersionPins(getenv("ONBOARD_SECRET_VERSIONS"))
		if err != nil {
			return nil, err
		}
		return gcpsecrets.New(ctx, gcpsecrets.Config{Project: project, Versions: versions}, opts...)
	}
}

// parseVersionPins reads ONBOARD_SECRET_VERSIONS, e.g.
// {"LOOKERSDK_CLIENT_SECRET":"3"}. Numbers are accepted as well as strings
// because that is how people write version numbers. A pin for a name onboard
// never reads is refused: it is a typo that would otherwise silently leave
// the real secret at "latest".
func parseVersionPins(raw string) (map[string]string, error) {
	if raw == "" {
		return nil, nil
	}
	const want = `a JSON object of secret name to version, e.g. {"ONBOARD_WEBHOOK_SECRET":"3"}`
	var pins map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &pins); err != nil {
		return nil, fmt.Errorf("ONBOARD_SECRET_VERSIONS must be %s: %v", want, err)
	}
	if pins == nil {
		return nil, fmt.Errorf("ONBOARD_SECRET_VERSIONS must be %s, not null", want)
	}
	versions := make(map[string]string, len(pins))
	for name, v := range pins {
		if !slices.Contains(app.SecretNames(), name) {
			return nil, fmt.Errorf("ONBOARD_SECRET_VERSIONS pins %q, which is not a secret onboard reads (%v)", name, app.SecretNames())
		}
		version, ok := pinValue(v)
		if !ok {
			return nil, fmt.Errorf("ONBOARD_SECRET_VERSIONS[%q] must be a version number or alias, as a string or a whole number", name)
		}
		versions[name] = version
	}
	return versions, nil
}

func pinValue(raw json.RawMessage) (string, bool) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, s != ""
	}
	var n uint64
	if err := json.Unmarshal(raw, &n); err == nil && n > 0 {
		return strconv.FormatUint(n, 10), true
	}
	return "", false
}
