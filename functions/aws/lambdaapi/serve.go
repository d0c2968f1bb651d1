package lambdaapi

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/plugin"
	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/dynamostore"
)

// Serve is a Lambda bootstrap's main: it starts onboard with AWS's secret
// manager and state store, and the source clients the bootstrap links, then
// serves invocations until Lambda stops the process. The bootstraps differ
// only in those clients: the webhook's links none, so that it stays small,
// the sheets poller's links the Google Sheets client.
func Serve(sourceClients map[string]plugin.SourceClient) {
	redactor := &logging.Redactor{}
	log := logging.New(os.Stderr, logging.ParseLevel(os.Getenv(app.SettingLogLevel)), redactor)
	// Started before lambda.Start, so config, secrets and the Looker login
	// overlap Lambda's own start-up instead of delaying the first request.
	instance := app.Start(app.Options{
		Log:            log,
		Redactor:       redactor,
		SecretBackends: map[string]app.SecretBackend{"aws": SecretsManager},
		StoreBackends:  map[string]state.Backend{"dynamodb": dynamostore.Backend(AWSConfig)},
		// The file store cannot work here (/var/task is read-only, /tmp is
		// per instance), so without ONBOARD_STORE=dynamodb:<table> start-up
		// fails with an error asking for the table.
		DefaultStore:  "dynamodb",
		Deployed:      true,
		SourceClients: sourceClients,
	})
	lambda.Start(New(instance, log, 0).Handle)
}

// SheetsFunctionSetting names the Lambda function that polls Google Sheets;
// the template sets it on the webhook function.
const SheetsFunctionSetting = "ONBOARD_SHEETS_FUNCTION"

// SheetsElsewhere stands in for the Sheets client in a bootstrap that does
// not link it: a poll sent to this function (a hand-made schedule, an
// `aws lambda invoke`) fails naming the function that runs polls.
func SheetsElsewhere(getenv func(string) string) plugin.SourceClient {
	fn := getenv(SheetsFunctionSetting)
	if fn == "" {
		fn = "built from functions/aws/sheets"
	}
	return func(context.Context, plugin.Env) (any, error) {
		return nil, fmt.Errorf("this Lambda function does not read Google Sheets: sheet polls run in the function %s; schedule the poll there", fn)
	}
}
