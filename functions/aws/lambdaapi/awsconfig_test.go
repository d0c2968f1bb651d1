package lambdaapi_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/onboard-dev/onboard/functions/aws/lambdaapi"
)

// lambdaEnv is what Lambda sets for a function with a role.
func lambdaEnv() map[string]string {
	return map[string]string{
		"AWS_REGION":            "eu-west-3",
		"AWS_ACCESS_KEY_ID":     "ASIAEXAMPLEKEYID",
		"AWS_SECRET_ACCESS_KEY": "role-secret-value",
		"AWS_SESSION_TOKEN":     "role-session-token",
	}
}

func TestAWSConfigFromLambdaEnvironment(t *testing.T) {
	env := lambdaEnv()
	cfg, err := lambdaapi.AWSConfig(t.Context(), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "eu-west-3" {
		t.Errorf("Region %q, want eu-west-3", cfg.Region)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID != env["AWS_ACCESS_KEY_ID"] || creds.SecretAccessKey != env["AWS_SECRET_ACCESS_KEY"] || creds.SessionToken != env["AWS_SESSION_TOKEN"] {
		t.Errorf("credentials %s/%s/%s are not the role's from the environment", creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken)
	}
	if cfg.BaseEndpoint != nil {
		t.Errorf("BaseEndpoint %q without AWS_ENDPOINT_URL, want the SDK's own", *cfg.BaseEndpoint)
	}
}

// AWS_ENDPOINT_URL points every client elsewhere, AWS_ENDPOINT_URL_<SERVICE>
// one client only, as in every AWS SDK.
func TestAWSConfigEndpoints(t *testing.T) {
	// The SDK's clients look at the process environment themselves (a
	// service's own variable counts only beside AWS_ENDPOINT_URL if both
	// are there), so the test sets them there, as Lambda does.
	for k, v := range lambdaEnv() {
		t.Setenv(k, v)
	}
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:5000")
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "")
	if err := os.Unsetenv("AWS_ENDPOINT_URL_DYNAMODB"); err != nil {
		t.Fatal(err)
	}
	cfg, err := lambdaapi.AWSConfig(t.Context(), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(secretsmanager.NewFromConfig(cfg).Options().BaseEndpoint); got != "http://127.0.0.1:5000" {
		t.Errorf("Secrets Manager endpoint %q, want AWS_ENDPOINT_URL_SECRETS_MANAGER's", got)
	}
	if got := aws.ToString(dynamodb.NewFromConfig(cfg).Options().BaseEndpoint); got != "http://127.0.0.1:4566" {
		t.Errorf("DynamoDB endpoint %q, want AWS_ENDPOINT_URL's", got)
	}
}

func TestAWSConfigNamesWhatIsMissing(t *testing.T) {
	for _, missing := range []string{"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		t.Run(missing, func(t *testing.T) {
			env := lambdaEnv()
			delete(env, missing)
			_, err := lambdaapi.AWSConfig(t.Context(), func(k string) string { return env[k] })
			if err == nil || !strings.HasPrefix(err.Error(), missing+" is not set") {
				t.Fatalf("error %v, want one naming %s", err, missing)
			}
			for _, v := range env {
				if strings.Contains(err.Error(), v) {
					t.Errorf("the error %q holds the value %q", err, v)
				}
			}
		})
	}
	// Long-lived keys, outside Lambda, come without a session token.
	env := lambdaEnv()
	delete(env, "AWS_SESSION_TOKEN")
	if _, err := lambdaapi.AWSConfig(t.Context(), func(k string) string { return env[k] }); err != nil {
		t.Errorf("without AWS_SESSION_TOKEN: %v", err)
	}
}
