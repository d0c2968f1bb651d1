// Command bootstrap is onboard's AWS Lambda function (runtime
// provided.al2023). One binary serves API Gateway HTTP and REST APIs and SQS
// queues; see package lambdaapi. Build it with scripts/build-aws.sh.
package main

import (
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/onboard-dev/onboard/core/app"
	"github.com/onboard-dev/onboard/core/logging"
	"github.com/onboard-dev/onboard/core/state"
	"github.com/onboard-dev/onboard/core/state/dynamostore"
	"github.com/onboard-dev/onboard/functions/aws/lambdaapi"
)

func main() {
	redactor := &logging.Redactor{}
	log := logging.New(os.Stderr, logging.ParseLevel(os.Getenv(app.SettingLogLevel)), redactor)
	// Started before lambda.Start, so config, secrets and the Looker login
	// overlap Lambda's own start-up instead of delaying the first request.
	instance := app.Start(app.Options{
		Log:            log,
		Redactor:       redactor,
		SecretBackends: map[string]app.SecretBackend{"aws": lambdaapi.SecretsManager},
		StoreBackends:  map[string]state.Backend{"dynamodb": dynamostore.Backend(lambdaapi.AWSConfig)},
		// The file store cannot work here (/var/task is read-only, /tmp is
		// per instance), so without ONBOARD_STORE=dynamodb:<table> start-up
		// fails with an error asking for the table.
		DefaultStore: "dynamodb",
		Deployed:     true,
	})
	lambda.Start(lambdaapi.New(instance, log, 0).Handle)
}
