package lambdaapi

import (
	"context"
	"fmt"
	"os"

	"github.com/onboard-dev/onboard/core/secrets"
	"github.com/onboard-dev/onboard/core/secrets/awssecrets"
)

// SecretsManager opens AWS Secrets Manager for ONBOARD_SECRETS=aws: one JSON
// secret named by ONBOARD_AWS_SECRET_ID, or else one secret per setting, named
// ONBOARD_AWS_SECRET_PREFIX + the setting's name (see package awssecrets for
// why the first is recommended).
//
// Region, credentials and endpoint come from the process environment, as
// every AWS SDK reads them (see AWSConfig), not from getenv, so the function
// behaves like every other AWS tool given the same settings.
func SecretsManager(ctx context.Context, getenv func(string) string) (secrets.Source, error) {
	cfg, err := AWSConfig(ctx, os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS SDK configuration: %w", err)
	}
	return awssecrets.New(cfg, awssecrets.Options{
		SecretID: getenv("ONBOARD_AWS_SECRET_ID"),
		Prefix:   getenv("ONBOARD_AWS_SECRET_PREFIX"),
	}), nil
}
