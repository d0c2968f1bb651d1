package lambdaapi

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// AWSConfig is the function's AWS SDK configuration, read from getenv
// alone: Lambda always sets AWS_REGION and the execution role's
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
// config.LoadDefaultConfig would find the same values, but it links
// STS, SSO, IMDS and shared-file parsing (about 1 MB) that a Lambda never
// uses and every cold start reads; the CLI, on an admin's machine, keeps it.
//
// AWS_ENDPOINT_URL, and AWS_ENDPOINT_URL_<SERVICE> (e.g.
// AWS_ENDPOINT_URL_SECRETS_MANAGER) for one service, point the clients
// elsewhere, as they do for every AWS SDK.
func AWSConfig(_ context.Context, getenv func(string) string) (aws.Config, error) {
	for _, name := range []string{"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		if getenv(name) == "" {
			return aws.Config{}, fmt.Errorf("%s is not set: Lambda sets it for every function; outside Lambda, set AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", name)
		}
	}
	cfg := aws.Config{
		Region:        getenv("AWS_REGION"),
		Credentials:   credentials.NewStaticCredentialsProvider(getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"), getenv("AWS_SESSION_TOKEN")),
		ConfigSources: []any{serviceEndpoints(getenv)},
	}
	if endpoint := getenv("AWS_ENDPOINT_URL"); endpoint != "" {
		cfg.BaseEndpoint = aws.String(endpoint)
	}
	return cfg, nil
}

// serviceEndpoints answers the SDK clients' question for a service's own
// endpoint (AWS_ENDPOINT_URL_<SERVICE>), which they ask of every value in
// aws.Config.ConfigSources that has this method.
type serviceEndpoints func(string) string

// GetServiceBaseEndpoint names the variable as the SDK does: its service
// ID upper-cased, spaces as underscores ("Secrets Manager" →
// AWS_ENDPOINT_URL_SECRETS_MANAGER).
func (getenv serviceEndpoints) GetServiceBaseEndpoint(_ context.Context, sdkID string) (string, bool, error) {
	endpoint := getenv("AWS_ENDPOINT_URL_" + strings.ReplaceAll(strings.ToUpper(sdkID), " ", "_"))
	return endpoint, endpoint != "", nil
}
