// Command bootstrap is onboard's AWS Lambda function (runtime
// provided.al2023). One binary serves API Gateway HTTP and REST APIs, SQS
// queues and the targets' scheduled tasks; see package lambdaapi. Build it
// with scripts/build-aws.sh.
//
// It links no Google library: the Sheets client would add a quarter to the
// binary every cold start reads. Sheet polls run in ./sheets instead.
package main

import (
	"os"

	"github.com/onboard-dev/onboard/core/plugin"
	"github.com/onboard-dev/onboard/functions/aws/lambdaapi"
)

func main() {
	lambdaapi.Serve(map[string]plugin.SourceClient{"sheets": lambdaapi.SheetsElsewhere(os.Getenv)})
}
